"""Cursor acknowledgements of many polls, written by one statement.

A poll with ``after=N`` records N as its client's cursor (never backwards) and
marks the client online. It hands both to ``Acknowledgements`` at once and,
when it reads its queue, waits for the write only before it answers, so a
parked poll's write overlaps its wait; the acknowledgements of every poll that
arrives while one statement runs (or within ``LINGER`` before it) are written
together by the next. The write resolves to the clients whose rows it wrote:
revoking a token deletes its client's row (a token never changes in place), so
a poll that skips reading its queue still refuses a revoked token (see
``polls.answer``).
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
# Seconds a statement waits for more polls to join it. The answers to one wake
# come back as re-polls over a few ms: at 20 sends/s to 100 receivers this cut
# the gateway's CPU per delivery by a fifth. A poll that reads its queue parks
# without waiting for it; one that skips the read waits for it before it parks
# (the statement checks its token; its waiter is registered already, so no wake
# is missed), and one answered at once (rows found, or kept items) waits this
# much longer.
LINGER = 0.002


class Acknowledgements:
    """Group commit of cursors and ``last_seen`` for one gateway process."""

    def __init__(self, pool: asyncpg.Pool[Any], max_known: int = 200_000) -> None:
        self.pool = pool
        self.max_known = max_known
        self._pending: dict[uuid.UUID, int] = {}  # client → seq
        # resolved, when _pending is written, to the clients whose rows it wrote
        self._written: asyncio.Future[frozenset[uuid.UUID]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._known: dict[uuid.UUID, tuple[int, float]] = {}  # written here: seq, monotonic time

    def record(self, client_id: uuid.UUID, seq: int) -> asyncio.Future[frozenset[uuid.UUID]] | None:
        """Queue a poll's acknowledgement: a future resolved once it is written (to the
        clients whose row it wrote: a revoked client's row is gone), or None when this
        process wrote as much for this client within the last ``REFRESH`` s."""
        known = self._known.get(client_id)
        if known is not None and known[0] >= seq and time.monotonic() - known[1] < REFRESH:
            return None
        self._pending[client_id] = max(seq, self._pending.get(client_id, seq))
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        return self._written

    async def _write_all(self) -> None:
        await asyncio.sleep(LINGER)
        while self._pending:
            batch, self._pending = self._pending, {}
            written, self._written = self._written, None
            assert written is not None
            try:
                confirmed = await self._write(batch)
            except Exception as error:  # noqa: BLE001 - every waiting poll must hear of it
                log.warning("acknowledgements not written", clients=len(batch), error=repr(error))
                if not written.done():
                    written.set_exception(error)
                    written.exception()  # retrieved: a poll that stopped waiting is no error
                continue
            now = time.monotonic()
            if len(self._known) + len(batch) > self.max_known:
                self._known.clear()
            for client_id in confirmed:
                seq = batch[client_id]
                before = self._known.get(client_id)
                self._known[client_id] = (max(seq, before[0]) if before else seq, now)
            if not written.done():
                written.set_result(confirmed)

    async def _write(self, batch: dict[uuid.UUID, int]) -> frozenset[uuid.UUID]:
        for attempt in range(1, RETRIES + 1):
            try:
                return await store.acknowledge_many(self.pool, batch)
            except asyncpg.DeadlockDetectedError:
                if attempt == RETRIES:
                    raise
        raise AssertionError("unreachable")
