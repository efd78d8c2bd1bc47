"""The room of the latency and throughput scenarios: members, senders and receivers.

Members are made through the API (``POST /session``, then ``JOIN``), so the
room is exactly what users would have built. Every member long-polls and
checks what it gets; the first ``senders`` of them also send.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import asyncpg

from services.bench.checks import END, Receiver, mark
from services.bench.client import Api, BenchError, Member, Rejected

T = TypeVar("T")

_ROWS = """SELECT coalesce(sum(last_seq), 0)::bigint FROM delivery.client_seq
           WHERE client_id = ANY($1::uuid[])"""


# Work a previous scenario left to the database: queue rows fanout's trimmer is
# still to delete (its own condition), or autovacuum at work on what it left.
_BUSY = """SELECT EXISTS (
    SELECT 1 FROM delivery.client_queues q LEFT JOIN identity.clients c ON c.id = q.client_id
    WHERE c.id IS NULL OR q.seq <= c.acked_seq
) OR EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'autovacuum worker')"""


async def settled(pool: asyncpg.Pool[Any], deadline: float, every: float = 0.1) -> float:
    """Seconds until the database has done what earlier scenarios left it to do.

    A scenario's queue rows are deleted in the background once read (fanout trims
    every few seconds), and autovacuum follows: a scenario measured against the
    PostgreSQL ceiling, and the ceiling itself, start once both are done, not
    while a previous scenario's hundreds of thousands of rows are being deleted
    and vacuumed. Gives up after ``deadline`` seconds.
    """
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        if not await pool.fetchval(_BUSY):
            break
        await asyncio.sleep(every)  # sampled, as ``RowCounter`` samples
    return round(time.monotonic() - started, 3)


async def bounded(limit: int, calls: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run ``calls`` with at most ``limit`` at a time; results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))


@dataclass
class Room:
    """A channel and its members, all made through the API."""

    api: Api
    channel: str
    members: list[Member]
    senders: list[Member]
    rejected: int = 0  # sends answered 429 and retried (the benchmark lifts the limit)

    @classmethod
    async def open(cls, api: Api, run: str, size: int, senders: int) -> Room:
        channel = f"#bench-{run}"

        def create(i: int) -> Callable[[], Awaitable[Member]]:
            return lambda: api.create_session(f"r{run}x{i}")

        members = await bounded(16, [create(i) for i in range(size)])
        await api.command(members[0], "JOIN", to=channel)  # creates the channel

        def join(member: Member) -> Callable[[], Awaitable[Any]]:
            return lambda: api.command(member, "JOIN", to=channel)

        await bounded(8, [join(m) for m in members[1:]])
        return cls(api, channel, members, members[:senders])

    def receivers(self, run: str) -> list[Receiver]:
        return [Receiver(m.nick, run, m.seen) for m in self.members]

    async def send(self, sender: int, n: int, intended: float, run: str) -> str:
        """Member ``sender``'s PRIVMSG number ``n``; retried after a 429 (not accepted then)."""
        member = self.members[sender]
        while True:
            try:
                sent = await self.api.command(
                    member,
                    "PRIVMSG",
                    to=self.channel,
                    body=[f"{sender}:{n}"],
                    meta=mark(run, sender, n, intended),
                )
            except Rejected as rejected:
                self.rejected += 1
                await asyncio.sleep(min(rejected.retry_after, 0.05))
                continue
            return sent.id

    async def end(self, run: str) -> str:
        """The end marker: the last message of a scenario, from sender 0."""
        return await self.send(0, END, time.monotonic(), run)

    async def queued_rows(self, pool: asyncpg.Pool[Any]) -> int:
        """Queue rows ever written for the members (their last seqs summed)."""
        return int(await pool.fetchval(_ROWS, [m.client_id for m in self.members]))


@dataclass
class Listening:
    """Members long-polling into their receivers until each has the end marker."""

    room: Room
    receivers: list[Receiver]
    timeout: float
    polls: int = 0
    errors: list[str] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        for member, receiver in zip(self.room.members, self.receivers, strict=True):
            self.tasks.append(asyncio.create_task(self._listen(member, receiver)))

    async def _listen(self, member: Member, receiver: Receiver) -> None:
        api = self.room.api
        while not receiver.ended:
            try:
                page = await api.poll(member, receiver.seen, self.timeout)
            except (BenchError, aiohttp.ClientError, OSError, TimeoutError) as error:
                self.errors.append(f"{member.nick}: {error!r}")
                return
            at = time.monotonic()
            self.polls += 1
            receiver.accept(page.messages, at)
            member.seen = receiver.seen

    async def finish(self, deadline: float) -> float:
        """Wait until every receiver has the end marker (or the deadline); seconds waited."""
        start = time.monotonic()
        if self.tasks:
            _, pending = await asyncio.wait(self.tasks, timeout=deadline)
            if pending:
                self.errors.append(
                    f"{len(pending)} receivers had no end marker after {deadline:g} s"
                )
            await self.stop()
        waited = time.monotonic() - start
        await self._last_look()
        return waited

    async def stop(self) -> None:
        """Stop every listener; what one of them failed with is an error of the run."""
        for task in self.tasks:
            task.cancel()
        outcomes = await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        self.errors.extend(
            f"a listener failed: {outcome!r}"
            for outcome in outcomes
            if isinstance(outcome, Exception)  # not the cancellations stop() made
        )

    async def _last_look(self) -> None:
        """One more read of each queue that had the end marker: anything after it (a
        duplicate, a stray) is a problem its receiver reports."""
        for member, receiver in zip(self.room.members, self.receivers, strict=True):
            if not receiver.ended:
                continue
            try:
                page = await self.room.api.poll(member, receiver.seen, 0)
            except (BenchError, aiohttp.ClientError, OSError, TimeoutError) as error:
                self.errors.append(f"{member.nick}: last look: {error!r}")
                continue
            receiver.accept(page.messages, time.monotonic())
            member.seen = receiver.seen  # the next run's receivers start past it


@dataclass
class RowCounter:
    """Samples the queue rows written for the room, to time when the last one committed."""

    room: Room
    pool: asyncpg.Pool[Any]
    every: float = 0.05
    samples: list[tuple[float, int]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        base = await self.room.queued_rows(self.pool)
        self.samples.append((time.monotonic(), base))
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.samples.append((time.monotonic(), await self.room.queued_rows(self.pool)))

    async def wait_for(self, total: int, deadline: float) -> float | None:
        """The monotonic time the count first reached ``total`` (None: not by the deadline)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            for at, count in self.samples:
                if count >= total:
                    return at
            await asyncio.sleep(self.every)
        return None

    async def finish(self, rows: int, deadline: float, errors: list[str]) -> float | None:
        """Wait until ``rows`` more than at the start are written, then stop sampling.

        The time the count got there; None, with the shortfall added to
        ``errors``, when it did not by the deadline.
        """
        done = await self.wait_for(self.samples[0][1] + rows, deadline)
        await self.stop()
        if done is None:
            errors.append(f"queue rows: {self.written} written, {rows} expected")
        return done

    @property
    def written(self) -> int:
        """Rows written between the start and the last sample."""
        return self.samples[-1][1] - self.samples[0][1]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
