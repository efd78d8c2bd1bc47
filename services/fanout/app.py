"""The fanout worker: projects the event stream into messages and per-client queues."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
import nats.errors
import structlog
from nats.aio.client import Client as NATS

from libs import bus, db, lifecycle, ops, telemetry
from libs.bus import AfterAck, Delivery, PartitionConsumer, PositionConflict, Unavailable
from libs.db import Conn
from libs.events import AnyEvent, MessageDeleted, MessageEdited, MessagePosted, decode_event
from libs.items import HEARTBEAT, WAKE_CHUNK, WAKE_ITEM_BYTES, WAKE_ITEMS, Wake, with_pos
from libs.lifecycle import sleep_unless
from libs.settings import Settings
from libs.subjects import Subjects
from services.fanout import extras, metrics, store
from services.fanout.handlers import StoredItem, segments, stored_item
from services.fanout.ownership import open_ownership

log = structlog.get_logger(__name__)

_wake_encoder = msgspec.json.Encoder()


class DeliveryProjection:
    """Writes each event's item once and one queue row per recipient client."""

    def __init__(self, pool: asyncpg.Pool[Any], nc: NATS, settings: Settings) -> None:
        self.pool = pool
        self.nc = nc
        self.stream = settings.stream_name
        self.wake_subject = Subjects(settings.subject_prefix, settings.partitions).wake
        self._recheck: asyncio.Task[None] | None = None  # asked for, not yet published
        self.origin = uuid.uuid4().hex[:12]  # this process, as its wakes name it
        self._published = 0  # wake messages numbered so far

    async def position(self, partition: int) -> int:
        return await store.read_position(self.pool, self.stream, partition)

    async def apply(self, partition: int, after: int, batch: Sequence[Delivery]) -> AfterAck | None:
        try:
            return await self._apply(partition, after, batch)
        except db.TRANSIENT as error:
            if not db.store_down(error):
                raise  # the batch's own fault: retried, then parked
            raise Unavailable(repr(error)) from error  # the store is down: retried, never parked

    async def _apply(
        self, partition: int, after: int, batch: Sequence[Delivery]
    ) -> AfterAck | None:
        started = time.perf_counter()
        events: list[AnyEvent] = []
        undecodable: list[tuple[Delivery, str]] = []
        for delivery in batch:
            try:
                events.append(decode_event(delivery.data))
            except msgspec.DecodeError as error:
                undecodable.append((delivery, repr(error)))
        claim = store.Claim(self.stream, partition, after, batch[-1].stream_seq)
        items = None if undecodable else _plain_items(events)
        done = None if items is None else await self._apply_plain(items, claim)
        if done is None:
            done = await self._apply_any(claim, events, undecodable)
        metrics.record_batch(
            partition,
            size=len(batch),
            processed=done.processed,
            redelivered=done.redelivered,
            parked=len(undecodable),
            queue_rows=done.queue_rows,
            seconds=time.perf_counter() - started,
        )
        return done.wake

    async def _apply_plain(self, items: list[StoredItem], claim: store.Claim) -> _Applied | None:
        """A batch of plain channel messages (``_plain_items``) as one statement, no
        transaction around it: the whole batch, or nothing (None) when the position
        is not where the batch starts (another owner's, or none yet); the batch is
        then applied as any other, which tells the two apart."""
        async with self.pool.acquire() as conn:
            written = await store.write_items(conn, items, len(items) <= WAKE_ITEMS, claim)
        if not written.claimed:
            return None
        carried = None if written.picks is None else _Carried.of([(items, written)])
        return _Applied(
            processed=len(written.written),
            redelivered=len(items) - len(written.written),
            queue_rows=written.rows,
            wake=self._waking(written.last_seqs, carried),
        )

    async def _apply_any(
        self,
        claim: store.Claim,
        events: list[AnyEvent],
        undecodable: list[tuple[Delivery, str]],
    ) -> _Applied:
        """Any batch, in one transaction under the partition's position lock."""
        partition = claim.partition
        woken: dict[str, int] = {}
        parts: list[tuple[list[StoredItem], store.Written]] = []
        queue_rows = 0
        async with self.pool.acquire() as conn, conn.transaction():
            position, done = await store.lock_position_and_find(
                conn, self.stream, partition, [e.event_id for e in events]
            )
            if position != claim.after:
                # Another owner committed here, and may have died before its wakes.
                await self.publish_recheck()
                raise PositionConflict(partition)
            for delivery, reason in undecodable:
                await _park_in(conn, self.stream, delivery, reason)
            fresh = await extras.admit(conn, [e for e in events if e.event_id not in done])
            cut = segments(fresh)
            # Edits and deletes rewrite items (delivery.messages) after they are written:
            # a wake carries items only when the batch leaves them as written, and one
            # that rewrites tells every gateway its kept items are stale. Reactions and
            # pins live in tables of their own, which no queue item is read from.
            rewrote = any(isinstance(e, MessageEdited | MessageDeleted) for e in fresh)
            carry = sum(len(segment.items) for segment in cut) <= WAKE_ITEMS and not rewrote
            # The first statement writing items moves the position, else one of its own.
            unclaimed: store.Claim | None = claim
            for segment in cut:
                await store.apply_changes(conn, segment.before)
                written = await store.write_items(conn, segment.items, carry, unclaimed)
                if segment.items:
                    if unclaimed is not None and not written.claimed:
                        raise PositionConflict(partition)  # not while we hold its lock
                    unclaimed = None
                woken.update(written.last_seqs)
                queue_rows += written.rows
                parts.append((segment.items, written))
                await store.apply_changes(conn, segment.after)
            await extras.project(conn, fresh)
            if unclaimed is not None:
                await store.save_position(conn, self.stream, partition, claim.to)
        return _Applied(
            processed=len(fresh),
            redelivered=len(done),  # not the changes dropped as changing nothing
            queue_rows=queue_rows,
            wake=self._waking(woken, _Carried.of(parts) if carry else None, rewrote),
        )

    def _waking(
        self, woken: dict[str, int], carried: _Carried | None, rewrote: bool = False
    ) -> AfterAck | None:
        """What publishes a committed batch's wakes, when it has any."""
        if not woken and not rewrote:
            return None

        async def wake() -> None:
            await self.publish_wakes(woken, carried, rewrote)

        return wake

    async def park(self, partition: int, delivery: Delivery, error: str) -> None:
        log.error("event parked as poison", seq=delivery.stream_seq, error=error)
        metrics.PARKED.labels(str(partition)).inc()
        await store.park(
            self.pool,
            self.stream,
            partition,
            delivery.stream_seq,
            delivery.subject,
            delivery.data,
            error,
        )

    async def heartbeat(self, stop: asyncio.Event) -> None:
        """A wake of no clients each ``HEARTBEAT`` s: gateways trust what wakes told
        them only while they hear wakes (see ``services.gateway.longpoll``)."""
        while not stop.is_set():
            try:
                await self._publish(Wake([]), traced=False)  # a span a second would be noise
            except nats.errors.Error as error:
                log.warning("heartbeat not published", error=repr(error))
            await sleep_unless(stop, HEARTBEAT)

    def ask_recheck(self) -> None:
        """Publish a recheck once the partitions taken together have each asked for
        one: every recheck makes every parked poll on every gateway read its queue."""
        if self._recheck is None or self._recheck.done():
            self._recheck = asyncio.create_task(self.publish_recheck())

    async def publish_recheck(self) -> None:
        """Ask every gateway to read its parked polls' queues again (see ``Wake``).

        When the link is down this fails, and the reconnect publishes it again."""
        try:
            await self._publish(Wake([], recheck=True))
        except nats.errors.Error as error:
            log.warning("recheck not published", error=repr(error))

    async def publish_wakes(
        self, woken: dict[str, int], carried: _Carried | None = None, rewrote: bool = False
    ) -> None:
        pairs = list(woken.items())
        if carried is not None and carried.size > WAKE_ITEM_BYTES:
            carried = None
        items = [msgspec.Raw(item) for item in carried.items] if carried is not None else []
        chunks = [pairs[start : start + WAKE_CHUNK] for start in range(0, len(pairs), WAKE_CHUNK)]
        if rewrote and not chunks:
            chunks = [[]]  # every gateway hears of a rewrite, were it to wake no client
        for chunk in chunks:
            picks = [carried.picks.get(c, []) for c, _ in chunk] if carried is not None else []
            await self._publish(Wake(clients=chunk, items=items, picks=picks, rewrote=rewrote))

    async def _publish(self, wake: Wake, traced: bool = True) -> None:
        """Number ``wake`` and publish it. Nothing awaits between the two, so the
        numbers go out in order on this connection; one that fails to go out leaves
        a gap the gateways see."""
        self._published += 1
        wake.origin, wake.number = self.origin, self._published
        data = _wake_encoder.encode(wake)
        if traced:
            await telemetry.publish(self.nc, self.wake_subject, data)
        else:
            await self.nc.publish(self.wake_subject, data)


@dataclass
class _Applied:
    """What applying a batch did, for its metrics, and what publishes its wakes."""

    processed: int
    redelivered: int
    queue_rows: int
    wake: AfterAck | None


class _Carried:
    """The items of a small batch, encoded as queue items, and which clients got which."""

    def __init__(self) -> None:
        self.items: list[bytes] = []
        self.picks: dict[str, list[int]] = {}
        self.size = 0

    @classmethod
    def of(cls, parts: list[tuple[list[StoredItem], store.Written]]) -> _Carried:
        """The items of each ``write_items`` call, with what it wrote, in order."""
        carried = cls()
        for items, written in parts:
            carried.add(items, written)
        return carried

    def add(self, items: list[StoredItem], written: store.Written) -> None:
        """``items`` as given to ``write_items``, of which it wrote ``written``."""
        offset = len(self.items)
        index = {ord_: n for n, ord_ in enumerate(written.written)}  # given → carried
        mine = [items[ord_] for ord_ in written.written]
        for item, pos in zip(mine, written.positions, strict=True):
            encoded = with_pos(pos, item.wire)
            self.items.append(encoded)
            self.size += len(encoded)
        for client, ords in (written.picks or {}).items():
            self.picks.setdefault(client, []).extend(offset + index[o] for o in ords)


def _plain_items(events: list[AnyEvent]) -> list[StoredItem] | None:
    """The items of a batch of channel messages alone, none a reply: items to write
    and nothing else (no membership, nothing beyond IRC: ``extras.admit`` and
    ``extras.project`` leave such a batch alone). None for any other batch."""
    items = []
    for event in events:
        if not isinstance(event, MessagePosted) or event.peer_id is not None:
            return None
        if extras.reply_parent(event.meta) is not None:
            return None
        item = stored_item(event)
        if item is None:
            return None
        items.append(item)
    return items


async def _park_in(conn: Conn, stream: str, delivery: Delivery, error: str) -> None:
    log.error("undecodable event parked", seq=delivery.stream_seq, error=error)
    await conn.execute(
        """INSERT INTO delivery.poison (stream, stream_seq, subject, payload, error)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
        stream,
        delivery.stream_seq,
        delivery.subject,
        delivery.data,
        error,
    )


async def _trim_loop(
    pool: asyncpg.Pool[Any], stop: asyncio.Event, interval: float, keep: int
) -> None:
    """Retention, as bounded background work: acknowledged queue rows, then old history."""
    while not stop.is_set():
        try:
            while await store.trim_acknowledged(pool) > 0 and not stop.is_set():
                pass
            while await store.trim_history(pool, keep) > 0 and not stop.is_set():
                pass
            while await extras.sweep(pool) > 0 and not stop.is_set():
                pass
        except db.ERRORS as error:
            log.warning("trim failed", error=repr(error))
        await sleep_unless(stop, interval)


async def run(settings: Settings, stop: asyncio.Event, trim_interval: float = 5.0) -> None:
    """Consume every owned partition until ``stop`` is set."""
    async with AsyncExitStack() as stack:
        pool = await db.service_pool(settings, "fanout")
        stack.push_async_callback(pool.close)
        reconnects = 0
        projection: DeliveryProjection | None = None

        async def reconnected() -> None:
            nonlocal reconnects
            reconnects += 1
            if projection is not None:  # wakes published while the link was down are gone
                await projection.publish_recheck()

        nc = await bus.connect(settings.nats(), "chinwag-fanout", reconnected)
        stack.push_async_callback(nc.drain)
        js = nc.jetstream()
        await bus.ensure_stream(js, settings)
        await stack.enter_async_context(ops.probe_server(settings, pool, nc))
        subjects = Subjects(settings.subject_prefix, settings.partitions)
        live = projection = DeliveryProjection(pool, nc, settings)

        async def consume(partition: int, until: asyncio.Event) -> None:
            # An owner before this one may have committed items and died before its wakes.
            live.ask_recheck()
            await PartitionConsumer(
                js=js,
                stream=settings.stream_name,
                partition=partition,
                filter_subject=subjects.partition_filter(partition),
                durable=f"fanout-{partition}",
                projection=projection,
                batch=settings.fanout_batch,
                ack_wait=settings.ack_wait,
                max_attempts=settings.max_deliver_attempts,
                reconnects=lambda: reconnects,
            ).run(until)

        ownership = await open_ownership(nc, settings, consume)
        log.info("fanout started", prefers=settings.owned_partitions, worker=ownership.me.worker)
        lifecycle.started()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(ownership.run(stop))
            tasks.create_task(live.heartbeat(stop))
            tasks.create_task(_trim_loop(pool, stop, trim_interval, settings.max_history))
            tasks.create_task(
                metrics.watch_lag(js, settings.stream_name, lambda: ownership.owned, stop)
            )
        log.info("fanout stopped")
