"""NATS helpers: connection, stream bootstrap, de-duplicated publish, the partition consumer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import nats
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    PubAck,
    StorageType,
    StreamConfig,
)
from prometheus_client import Counter

from libs import telemetry
from libs.events import AnyEvent, encode_event
from libs.lifecycle import sleep_unless
from libs.pull import Pull
from libs.pull import bind as bind_puller
from libs.settings import Settings
from libs.subjects import Subjects

log = structlog.get_logger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"

CONSUMED = Counter(
    "chinwag_consumer_events_consumed_total", "Events fetched from the stream", ["partition"]
)
STALE = Counter(
    "chinwag_consumer_events_stale_total",
    "Events fetched at or below the committed position (redelivered), acked without effect",
    ["partition"],
)
BATCH_FAILURES = Counter(
    "chinwag_consumer_batch_failures_total", "Batches that failed and were retried", ["partition"]
)
GAPS = Counter(
    "chinwag_consumer_delivery_gaps_total",
    "Deliveries lost in flight, noticed by a gap in the consumer sequence; the consumer "
    "restarts at the committed position",
    ["partition"],
)


def servers(url: str) -> list[str]:
    """The server URLs in ``CHINWAG_NATS_URL``: one, or several comma-separated (a cluster)."""
    return [part.strip() for part in url.split(",") if part.strip()]


async def connect(
    url: str,
    name: str,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    on_loss: Callable[[], None] | None = None,
) -> NATS:
    """A client that reconnects forever; callers see errors only while NATS is away.

    ``on_reconnect`` runs once the connection is back and its subscriptions
    are renewed: whatever was published to them in between never arrived.
    ``on_loss`` runs as soon as messages to a subscription may be lost: the link
    went down, or a subscription fell so far behind that the client dropped some.
    """

    client: NATS | None = None

    async def disconnected() -> None:
        if on_loss is not None:
            on_loss()
        if client is not None and not (client.is_closed or client.is_draining):
            log.warning("nats disconnected", connection=name)

    async def reconnected() -> None:
        log.info("nats reconnected", connection=name)
        if on_reconnect is not None:
            await on_reconnect()

    async def failed(error: Exception) -> None:
        if on_loss is not None and isinstance(error, nats.errors.SlowConsumerError):
            on_loss()
        log.warning("nats connection error", connection=name, error=repr(error))

    client = await nats.connect(
        servers(url),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        connect_timeout=5,
        allow_reconnect=True,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=failed,
    )
    return client


def stream_config(settings: Settings) -> StreamConfig:
    """The configuration the event stream must have."""
    return StreamConfig(
        name=settings.stream_name,
        subjects=[Subjects(settings.subject_prefix, settings.partitions).events_wildcard],
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        max_age=settings.stream_max_age,
        duplicate_window=settings.duplicate_window,
        discard=DiscardPolicy.OLD,
    )


async def ensure_stream(js: JetStreamContext, settings: Settings) -> None:
    """Create the event stream, or bring an existing one to the expected configuration."""
    config = stream_config(settings)
    try:
        await js.stream_info(settings.stream_name)
    except nats.js.errors.NotFoundError:
        try:
            await js.add_stream(config)
            log.info("stream created", stream=settings.stream_name)
            return
        except nats.js.errors.BadRequestError:
            pass  # another starter created it first; fall through to update
    await js.update_stream(config)


async def publish_event(
    js: JetStreamContext, subjects: Subjects, event: AnyEvent, timeout: float = 5.0
) -> PubAck:
    """Publish with the event id as ``Nats-Msg-Id`` and wait for the stream's PubAck."""
    return await publish_raw(
        js, subjects.event(event), encode_event(event), str(event.event_id), timeout
    )


async def publish_raw(
    js: JetStreamContext, subject: str, payload: bytes, msg_id: str, timeout: float = 5.0
) -> PubAck:
    """Publish already-encoded bytes with a de-duplication id, awaiting the PubAck."""
    headers = {MSG_ID_HEADER: msg_id}
    with telemetry.producing(subject, headers, message_id=msg_id, size=len(payload)):
        return await js.publish(subject, payload, timeout=timeout, headers=headers)


@dataclass(frozen=True)
class Delivery:
    """One message of the stream as a consumer sees it."""

    stream_seq: int
    subject: str
    data: bytes
    headers: Mapping[str, str] | None = None  # the publisher's, with its trace context


AfterAck = Callable[[], Awaitable[None]]


class PositionConflict(Exception):
    """The stored position is not where this batch starts: another consumer moved it."""


class Unavailable(Exception):
    """The projection's store cannot be reached; the events are not at fault."""


class Projection(Protocol):
    """What a partition consumer drives: a projection that tracks its own position."""

    async def position(self, partition: int) -> int:
        """The last stream sequence this projection committed for a partition (0: none)."""
        ...

    async def apply(self, partition: int, after: int, batch: Sequence[Delivery]) -> AfterAck | None:
        """Project a batch that directly follows position ``after``, atomically (in one
        transaction, or one statement).

        Records the new position with it; raises ``PositionConflict``
        when the stored position is not ``after``, any other error to retry.
        """
        ...

    async def park(self, partition: int, delivery: Delivery, error: str) -> None:
        """Record a poison event and move the position past it."""
        ...


@dataclass
class PartitionConsumer:
    """Consumes one partition of the stream, in stream order, into a projection.

    The projection's position lives in PostgreSQL, written in the same
    transaction as the projection. At start, and after any failure, the durable
    consumer is re-created to start just after that position, so events reach
    the projection strictly in order and a redelivery of something already
    committed is recognised and acked without effect. A batch is applied only
    if the stored position is still where the batch starts, so even two
    consumers of one partition (a mistake, or a hand-over) cannot skip an
    event: the loser re-reads from the stored position. Deliveries lost in
    flight (a NATS reconnect) show as a gap in the consumer sequence, and the
    consumer is re-created rather than letting the position pass them. A batch
    that fails is retried one event at a time; an event that fails
    ``max_attempts`` times in a row is parked by the projection, never silently
    dropped. A projection that raises ``Unavailable`` (its store is down) is
    retried for as long as it takes, without counting against the events.
    """

    js: JetStreamContext
    stream: str
    partition: int
    filter_subject: str
    durable: str
    projection: Projection
    batch: int = 256
    ack_wait: float = 30.0
    max_attempts: int = 5
    retry_delay: float = 0.2
    # How to pull from the durable consumer (a seam for tests without a server).
    puller: Callable[[JetStreamContext, str, str], Awaitable[Pull]] = bind_puller
    reconnects: Callable[[], int] | None = None  # how often the connection came back so far

    def __post_init__(self) -> None:
        self.projection = telemetry.traced(self.projection, self.durable)

    async def run(self, stop: asyncio.Event) -> None:
        attempts = 0  # failures in a row of the batch at the committed position
        while not stop.is_set():
            try:
                position = await self.projection.position(self.partition)
                sub = await self._subscribe(position)
            except Exception as error:  # noqa: BLE001 - any failure here is retried
                log.warning("consumer setup failed", partition=self.partition, error=repr(error))
                await sleep_unless(stop, self.retry_delay)
                continue
            try:
                attempts = await self._consume(sub, position, attempts, stop)
            except (nats.errors.Error, OSError) as error:
                log.warning("consumer interrupted", partition=self.partition, error=repr(error))
                await sleep_unless(stop, self.retry_delay)
            finally:
                await _quietly(sub.unsubscribe())

    async def _consume(
        self,
        sub: Pull,
        position: int,
        attempts: int,
        stop: asyncio.Event,
    ) -> int:
        """Apply batches from a fresh consumer until something calls for a new one.

        Returns the failures in a row of the batch at the committed position.
        """
        label = str(self.partition)
        size = 1 if attempts else self.batch
        expected = 1  # a fresh consumer numbers its deliveries 1, 2, 3, …
        connection = self._reconnects()
        while not stop.is_set():
            msgs = await sub.fetch(size, timeout=1.0)
            _raise_if_cancelled()
            if self._reconnects() != connection:
                # Deliveries may have been lost on the old connection, and no later one
                # might come to show the gap: start again from the committed position.
                log.info("consumer restarts after a reconnect", partition=self.partition)
                return attempts
            if not msgs:
                continue
            if _gap(msgs, expected):
                # A delivery never reached us (lost in flight across a reconnect):
                # what follows must not move the position past it.
                GAPS.labels(label).inc()
                log.warning("delivery gap", partition=self.partition, expected=expected)
                return attempts
            expected = msgs[-1].metadata.sequence.consumer + 1
            fresh = [
                Delivery(m.metadata.sequence.stream, m.subject, m.data, m.headers)
                for m in msgs
                if m.metadata.sequence.stream > position
            ]
            CONSUMED.labels(label).inc(len(msgs))
            STALE.labels(label).inc(len(msgs) - len(fresh))
            after_ack: AfterAck | None = None
            if fresh:
                try:
                    after_ack = await self.projection.apply(self.partition, position, fresh)
                except PositionConflict:
                    log.info("position moved elsewhere", partition=self.partition)
                    return 0  # re-create the consumer at the stored position
                except Unavailable as error:
                    # The store is down, not the events at fault: retry, never park.
                    log.warning(
                        "projection unavailable", partition=self.partition, error=str(error)
                    )
                    await sleep_unless(stop, self.retry_delay)
                    return attempts
                except Exception as error:  # noqa: BLE001 - retried, then parked
                    return await self._failed(fresh, attempts + 1, error, stop)
                position = fresh[-1].stream_seq
                attempts = 0
                size = self.batch
            for m in msgs:
                await m.ack()
            if after_ack is not None:
                await after_ack()
        return attempts

    def _reconnects(self) -> int:
        return self.reconnects() if self.reconnects is not None else 0

    async def _failed(
        self, fresh: list[Delivery], attempts: int, error: Exception, stop: asyncio.Event
    ) -> int:
        """A batch failed: retry it one event at a time, and park an event failing too often."""
        BATCH_FAILURES.labels(str(self.partition)).inc()
        log.warning(
            "batch failed",
            partition=self.partition,
            first_seq=fresh[0].stream_seq,
            size=len(fresh),
            attempt=attempts,
            error=repr(error),
        )
        if len(fresh) == 1 and attempts >= self.max_attempts:
            try:
                await self.projection.park(self.partition, fresh[0], repr(error))
                attempts = 0
            except Exception as park_error:  # noqa: BLE001 - parking is retried as well
                log.warning("parking failed", partition=self.partition, error=repr(park_error))
        await sleep_unless(stop, self.retry_delay * min(attempts, 10))
        return attempts

    async def _subscribe(self, position: int) -> Pull:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self.js.delete_consumer(self.stream, self.durable)
        await self.js.add_consumer(
            self.stream,
            consumer_config(
                self.durable, self.filter_subject, position + 1, self.ack_wait, self.batch
            ),
        )
        return await self.puller(self.js, self.stream, self.durable)


def consumer_config(
    durable: str, filter_subject: str, start_seq: int, ack_wait: float, batch: int
) -> ConsumerConfig:
    """The durable pull consumer a ``PartitionConsumer`` creates (``chinwag doctor``
    compares the live ones with it)."""
    return ConsumerConfig(
        durable_name=durable,
        filter_subject=filter_subject,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=start_seq,
        ack_wait=ack_wait,
        max_ack_pending=batch * 4,
    )


def _gap(msgs: Sequence[Any], expected: int) -> bool:
    """Whether the consumer sequence of these deliveries skips a number."""
    return any(m.metadata.sequence.consumer != expected + i for i, m in enumerate(msgs))


def _raise_if_cancelled() -> None:
    """Honour a cancellation that a library call swallowed.

    Python 3.11's ``asyncio.wait_for`` (inside nats-py's ``next_msg``) returns the
    result instead of raising when the cancellation and the result arrive
    together; the task must still stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception as error:  # noqa: BLE001 - cleanup must not mask the real error
        log.debug("cleanup failed", error=repr(error))
