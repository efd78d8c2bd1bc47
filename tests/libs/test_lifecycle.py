"""The stop sequence: finish within the grace period, or be cancelled; and the heap
frozen once a service process has started."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from libs.lifecycle import supervise


async def test_a_service_that_finishes_its_work_exits_cleanly() -> None:
    stop = asyncio.Event()
    finished: list[str] = []

    async def service(stop: asyncio.Event) -> None:
        await stop.wait()
        finished.append("acked")

    running = asyncio.create_task(supervise(service(stop), stop, grace=30))
    stop.set()
    assert await asyncio.wait_for(running, 10) == 0
    assert finished == ["acked"]


async def test_a_service_that_overstays_its_grace_is_cancelled() -> None:
    stop = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck(stop: asyncio.Event) -> None:
        try:
            await asyncio.Event().wait()  # ignores stop
        except asyncio.CancelledError:
            cancelled.set()
            raise

    running = asyncio.create_task(supervise(stuck(stop), stop, grace=0.05))
    stop.set()
    assert await asyncio.wait_for(running, 10) == 1
    assert cancelled.is_set()


async def test_a_second_signal_cuts_the_grace_period_short() -> None:
    stop, hurry = asyncio.Event(), asyncio.Event()

    async def stuck(stop: asyncio.Event) -> None:
        await asyncio.Event().wait()

    running = asyncio.create_task(supervise(stuck(stop), stop, grace=3600, hurry=hurry))
    stop.set()
    hurry.set()
    assert await asyncio.wait_for(running, 10) == 1  # not an hour


async def test_a_service_that_fails_raises_its_error() -> None:
    async def broken(stop: asyncio.Event) -> None:
        raise RuntimeError("pool gone")

    stop = asyncio.Event()
    with pytest.raises(RuntimeError, match="pool gone"):
        await supervise(broken(stop), stop, grace=1)


_FREEZING = """
import gc
from libs import lifecycle
lifecycle.started()
print(gc.get_freeze_count())  # where services share a process: nothing frozen
lifecycle.freeze_when_started()
imported = gc.get_freeze_count()
app = [[n] for n in range(1000)]  # what a service makes as it starts
lifecycle.started()
print(imported > 0, gc.get_freeze_count() >= imported + 1000)
"""


def test_a_service_process_freezes_its_heap_once_started() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FREEZING], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["0", "True", "True"]
