"""Which partitions this fanout worker consumes: leases in NATS key-value, renewed on a tick.

Each worker *prefers* some partitions (its ordinal's share, or a configured
list) and says so on every tick under ``want.<p>``. It consumes a partition
only while it holds the lease ``partition.<p>``, renewed every third of the
term. On each tick it

- takes each preferred partition whose lease is free; at start also one
  held by its own previous incarnation (same worker name: a restarted pod);
- takes any other partition whose lease is free and that no live worker
  wants, once it has run a full term (so at a joint start everyone first
  gets their own): this is how a dead worker's partitions move;
- gives such a partition back as soon as a live worker wants it;
- stops consuming a partition whose lease it could not renew for two thirds
  of the term, since another worker may take it once the term ends.

Two consumers of one partition, should it ever come to that, cannot skip or
double an event: the position stored in PostgreSQL decides (see
``libs.bus.PartitionConsumer``). The leases make that the rare exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from prometheus_client import Counter, Gauge

from libs.leases import Holder, Leases, TransportError, bucket_name
from libs.lifecycle import sleep_unless
from libs.settings import Settings

log = structlog.get_logger(__name__)

FENCE = 2 / 3  # of the term: a lease unrenewed this long may soon be another's

OWNED = Gauge("chinwag_fanout_partitions_owned", "Partitions this fanout worker consumes")
CHANGES = Counter(
    "chinwag_fanout_partition_changes_total",
    "Partition ownership changes on this worker: acquired, taken_over, released, lost, fenced",
    ["change"],
)

Consume = Callable[[int, asyncio.Event], Coroutine[Any, Any, None]]


def lease_key(partition: int) -> str:
    return f"partition.{partition}"


def want_key(partition: int) -> str:
    return f"want.{partition}"


@dataclass
class _Held:
    revision: int
    renewed: float  # clock() when the last successful write of the lease was sent
    stop: asyncio.Event
    task: asyncio.Task[None]


class Ownership:
    """Runs one consumer per partition whose lease this worker holds."""

    def __init__(
        self,
        leases: Leases,
        preferred: Sequence[int],
        partitions: int,
        ttl: float,
        consume: Consume,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.leases = leases
        self.me: Holder = leases.me
        self.preferred = frozenset(preferred)
        self.partitions = partitions
        self.ttl = ttl
        self.consume = consume
        self.clock = clock
        self.held: dict[int, _Held] = {}

    @property
    def owned(self) -> list[int]:
        """The partitions consumed right now."""
        return sorted(self.held)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop``; then stop every consumer and give every lease back."""
        started = self.clock()
        first = True
        try:
            while not stop.is_set():
                settled = self.clock() - started >= self.ttl
                try:
                    await asyncio.wait_for(self.tick(first, settled), self.ttl / 3)
                    first = False
                except (*TransportError, TimeoutError) as error:
                    log.warning("partition leases unreachable", error=repr(error))
                await self._fence()
                await sleep_unless(stop, self.ttl / 3)
        finally:
            await self._shutdown()

    async def tick(self, first: bool = False, settled: bool = True) -> None:
        """One round: announce, renew, give back, take."""
        for p in sorted(self.preferred):
            await self.leases.announce(want_key(p))
        for p, held in list(self.held.items()):
            if held.task.done():
                log.error("partition consumer ended", partition=p, error=_failure(held.task))
                await self._give_back(p)
                continue
            sent = self.clock()
            revision = await self.leases.renew(lease_key(p), held.revision)
            if revision is None:
                log.warning("partition lease lost", partition=p)
                CHANGES.labels("lost").inc()
                await self._stop(p)
                continue
            held.revision, held.renewed = revision, sent
        for p in sorted(self.held.keys() - self.preferred):
            if await self._wanted_elsewhere(p):
                log.info("partition handed back", partition=p)
                await self._give_back(p)
        for p in range(self.partitions):
            if p not in self.held:
                await self._try_take(p, first, settled)

    async def _try_take(self, p: int, first: bool, settled: bool) -> None:
        if p not in self.preferred and (not settled or await self._wanted_elsewhere(p)):
            return
        sent = self.clock()
        revision = await self.leases.acquire(lease_key(p))
        change = "acquired"
        if revision is None:
            lease = await self.leases.read(lease_key(p))
            if lease is None:
                return
            mine = lease.holder == self.me  # an earlier tick took it but did not finish
            predecessor = (
                first
                and p in self.preferred
                and lease.holder.worker == self.me.worker
                and lease.holder.incarnation != self.me.incarnation
            )
            if not (mine or predecessor):
                return
            revision = await self.leases.take_over(lease_key(p), lease.revision)
            change = "taken_over"
            if revision is None:
                return
        log.info("partition owned", partition=p, change=change)
        CHANGES.labels(change).inc()
        stop = asyncio.Event()
        task = asyncio.create_task(self.consume(p, stop), name=f"partition-{p}")
        self.held[p] = _Held(revision, sent, stop, task)
        OWNED.set(len(self.held))

    async def _wanted_elsewhere(self, p: int) -> bool:
        want = await self.leases.read(want_key(p))
        return want is not None and want.holder != self.me

    async def _stop(self, p: int) -> _Held:
        held = self.held.pop(p)
        OWNED.set(len(self.held))
        held.stop.set()
        with contextlib.suppress(Exception):  # its failure was logged where it happened
            await held.task
        return held

    async def _give_back(self, p: int) -> None:
        """Stop consuming first, then free the lease: never two consumers by our doing."""
        held = await self._stop(p)
        CHANGES.labels("released").inc()
        await self.leases.release(lease_key(p), held.revision)

    async def _fence(self) -> None:
        now = self.clock()
        for p, held in list(self.held.items()):
            if now - held.renewed >= self.ttl * FENCE:
                log.warning("partition lease not renewed in time; consumer stopped", partition=p)
                CHANGES.labels("fenced").inc()
                await self._stop(p)

    async def _shutdown(self) -> None:
        held = {p: self.held[p] for p in self.held}
        for h in held.values():
            h.stop.set()
        for p in list(held):
            await self._stop(p)
        try:
            for p, h in held.items():
                await self.leases.release(lease_key(p), h.revision)
                CHANGES.labels("released").inc()
            for p in sorted(self.preferred):
                want = await self.leases.read(want_key(p))
                if want is not None and want.holder == self.me:
                    await self.leases.release(want_key(p), want.revision)
        except TransportError as error:
            log.warning("leases not released; they lapse after their term", error=repr(error))


def _failure(task: asyncio.Task[None]) -> str:
    if task.cancelled():
        return "cancelled"
    error = task.exception()
    return repr(error) if error else "returned"


def worker_name(settings: Settings) -> str:
    """A name that a restarted worker shares with its previous incarnation (host and ordinal)."""
    return f"{socket.gethostname()}/{settings.fanout_ordinal}"


async def open_ownership(nc: NATS, settings: Settings, consume: Consume) -> Ownership:
    """The ownership of ``settings``' fanout worker, its lease bucket opened."""
    ttl = settings.fanout_lease_ttl
    # Each lease call must give up well within the term, so the fence still acts in time.
    js = nc.jetstream(timeout=min(5.0, ttl / 4))
    me = Holder(worker_name(settings), uuid.uuid4().hex)
    bucket = bucket_name(settings.stream_name, "fanout")
    leases = await Leases.open(js, bucket, ttl, settings.stream_replicas, me)
    return Ownership(leases, settings.owned_partitions, settings.partitions, ttl, consume)
