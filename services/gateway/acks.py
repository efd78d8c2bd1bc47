"""Cursor acknowledgements of many polls, written by one statement.

A poll with ``after=N`` records N as its client's cursor (never backwards) and
marks the client online. It hands both to ``Acknowledgements`` at once and
waits for the write only before it answers, so a parked poll's write overlaps
its wait; the acknowledgements of every poll that arrives while one statement
runs are written together by the next.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import structlog

from services.gateway import store

log = structlog.get_logger(__name__)

REFRESH = 10.0  # seconds after which a poll that moves no cursor marks its client online again
RETRIES = 3  # attempts at a statement that lost a deadlock


class Acknowledgements:
    """Group commit of cursors and ``last_seen`` for one gateway process."""

    def __init__(self, pool: asyncpg.Pool[Any], max_known: int = 200_000) -> None:
        self.pool = pool
        self.max_known = max_known
        self._pending: dict[uuid.UUID, int] = {}
        self._written: asyncio.Future[None] | None = None  # resolved when _pending is written
        self._writer: asyncio.Task[None] | None = None
        self._known: dict[uuid.UUID, tuple[int, float]] = {}  # written here: seq, monotonic time

    def record(self, client_id: uuid.UUID, seq: int) -> asyncio.Future[None] | None:
        """Queue a poll's acknowledgement: a future resolved once it is written, or None
        when this process wrote as much for this client within the last ``REFRESH`` s."""
        known = self._known.get(client_id)
        if known is not None and known[0] >= seq and time.monotonic() - known[1] < REFRESH:
            return None
        if seq > self._pending.get(client_id, -1):
            self._pending[client_id] = seq
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        return self._written

    async def _write_all(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            written, self._written = self._written, None
            assert written is not None
            try:
                await self._write(batch)
            except Exception as error:  # noqa: BLE001 - every waiting poll must hear of it
                log.warning("acknowledgements not written", clients=len(batch), error=repr(error))
                if not written.done():
                    written.set_exception(error)
                    written.exception()  # retrieved: a poll that stopped waiting is no error
                continue
            now = time.monotonic()
            if len(self._known) + len(batch) > self.max_known:
                self._known.clear()
            for client_id, seq in batch.items():
                before = self._known.get(client_id)
                self._known[client_id] = (max(seq, before[0]) if before else seq, now)
            if not written.done():
                written.set_result(None)

    async def _write(self, batch: dict[uuid.UUID, int]) -> None:
        for attempt in range(1, RETRIES + 1):
            try:
                await store.acknowledge_many(self.pool, batch)
                return
            except asyncpg.DeadlockDetectedError:
                if attempt == RETRIES:
                    raise
