"""A fanout worker's wake messages: numbered in order, and one recheck for the
partitions it takes at once."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import msgspec
import nats.errors
from nats.aio.client import Client as NATS

from libs.items import Wake
from libs.settings import Settings
from services.fanout.app import DeliveryProjection


class _Bus:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []
        self.down = False

    async def publish(self, subject: str, payload: bytes, **_: Any) -> None:
        if self.down:
            raise nats.errors.ConnectionClosedError
        self.published.append((subject, payload))


def _projection(bus: _Bus) -> DeliveryProjection:
    return DeliveryProjection(cast(Any, None), cast(NATS, bus), Settings())


async def test_the_partitions_taken_together_share_one_recheck() -> None:
    bus = _Bus()
    projection = _projection(bus)
    for _ in range(16):  # as consume() does for each partition it takes
        projection.ask_recheck()
    await asyncio.sleep(0)  # one turn of the loop: the publish runs
    assert [msgspec.json.decode(p, type=Wake).recheck for _, p in bus.published] == [True]
    projection.ask_recheck()  # a partition taken later asks again
    await asyncio.sleep(0)
    assert len(bus.published) == 2
    assert {subject for subject, _ in bus.published} == {projection.wake_subject}


async def test_every_wake_message_of_a_worker_is_numbered_in_order() -> None:
    bus = _Bus()
    projection = _projection(bus)
    await projection.publish_recheck()
    await projection.publish_wakes({"c1": 3, "c2": 5})
    bus.down = True
    await projection.publish_recheck()  # lost: its number is not heard
    bus.down = False
    await projection.publish_wakes({}, rewrote=True)
    wakes = [msgspec.json.decode(p, type=Wake) for _, p in bus.published]
    assert [(w.origin, w.number) for w in wakes] == [(projection.origin, n) for n in (1, 2, 4)]
    assert _projection(_Bus()).origin != projection.origin  # another process counts apart
