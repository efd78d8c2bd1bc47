"""Fanout's and the gateway's background loops outlive a database that goes away."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from services.fanout.app import _trim_loop
from services.gateway.app import _prune_keys
from tests.harness import until

BROKEN = [
    asyncpg.exceptions.InternalClientError(
        "cannot switch to state 11; another operation (2) is in progress"
    ),
    asyncpg.InterfaceError("cannot perform operation: connection is closed"),
    ConnectionRefusedError(111, "Connection refused"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
]


class _FlakyPool:
    """Fails its first statement as a restarting server would, then deletes nothing."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    async def execute(self, query: str, *args: Any) -> str:
        self.calls += 1
        if self.calls == 1:
            raise self.error
        return "DELETE 0"


@pytest.mark.parametrize("error", BROKEN, ids=repr)
async def test_trimming_goes_on_after_the_database_went_away(error: Exception) -> None:
    pool = _FlakyPool(error)
    stop = asyncio.Event()
    loop = asyncio.create_task(_trim_loop(pool, stop, interval=0.01, keep=10))  # type: ignore[arg-type]

    async def tried_again() -> bool:
        if loop.done():
            loop.result()  # raises what killed it
        return pool.calls >= 3

    await until(tried_again, 5.0, "trimming to try again")
    stop.set()
    await loop


@pytest.mark.parametrize("error", BROKEN, ids=repr)
async def test_key_pruning_goes_on_after_the_database_went_away(error: Exception) -> None:
    pool = _FlakyPool(error)
    stop = asyncio.Event()
    loop = asyncio.create_task(_prune_keys(pool, 60.0, stop, interval=0.01))  # type: ignore[arg-type]

    async def tried_again() -> bool:
        if loop.done():
            loop.result()  # raises what killed it
        return pool.calls >= 3

    await until(tried_again, 5.0, "pruning to run again")
    stop.set()
    await loop  # raises if the loop died of the error
