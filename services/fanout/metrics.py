"""Fanout's Prometheus metrics: counted once per batch, never per recipient."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import nats.errors
import nats.js.errors
import structlog
from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge, Histogram

from libs.lifecycle import sleep_unless

log = structlog.get_logger(__name__)

LAG_INTERVAL = 5.0  # seconds between consumer lag refreshes

PROCESSED = Counter(
    "chinwag_fanout_events_processed_total", "Events projected for the first time", ["partition"]
)
REDELIVERED = Counter(
    "chinwag_fanout_events_redelivered_total",
    "Events skipped because their item already exists (redelivered or republished)",
    ["partition"],
)
PARKED = Counter(
    "chinwag_fanout_events_parked_total",
    "Events recorded in delivery.poison instead of projected",
    ["partition"],
)
BATCH_SIZE = Histogram(
    "chinwag_fanout_batch_size",
    "Events per fanout transaction",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10_000),
)
TRANSACTION_SECONDS = Histogram(
    "chinwag_fanout_transaction_seconds",
    "Time from opening a batch's transaction to its commit",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
QUEUE_ROWS = Counter(
    "chinwag_fanout_queue_rows_total", "Rows written to client queues", ["partition"]
)
PENDING = Gauge(
    "chinwag_fanout_consumer_pending",
    "Events in the stream not yet delivered to the partition's consumer",
    ["partition"],
)
ACK_PENDING = Gauge(
    "chinwag_fanout_consumer_ack_pending",
    "Events delivered to the partition's consumer and not yet acknowledged",
    ["partition"],
)


async def watch_lag(
    js: JetStreamContext,
    stream: str,
    partitions: Callable[[], Sequence[int]],
    stop: asyncio.Event,
    interval: float | None = None,
) -> None:
    """Refresh the lag gauges of the partitions consumed now every ``interval`` seconds.

    A partition that moved to another worker loses its gauges here, so a sum
    over workers counts each partition once.
    """
    interval = LAG_INTERVAL if interval is None else interval
    shown: set[int] = set()
    while not stop.is_set():
        owned = list(partitions())
        for gone in shown - set(owned):
            with contextlib.suppress(KeyError):
                PENDING.remove(str(gone))
                ACK_PENDING.remove(str(gone))
        shown = set(owned)
        for partition in owned:
            try:
                info = await js.consumer_info(stream, f"fanout-{partition}", timeout=2.0)
            except nats.js.errors.NotFoundError:
                continue  # being re-created at the committed position
            except (nats.errors.Error, OSError, TimeoutError) as error:
                log.debug("consumer info failed", partition=partition, error=repr(error))
                continue
            PENDING.labels(str(partition)).set(info.num_pending or 0)
            ACK_PENDING.labels(str(partition)).set(info.num_ack_pending or 0)
        await sleep_unless(stop, interval)


def record_batch(
    partition: int,
    *,
    size: int,
    processed: int,
    redelivered: int,
    parked: int,
    queue_rows: int,
    seconds: float,
) -> None:
    """Count one committed batch."""
    label = str(partition)
    BATCH_SIZE.observe(size)
    TRANSACTION_SECONDS.observe(seconds)
    PROCESSED.labels(label).inc(processed)
    if redelivered:
        REDELIVERED.labels(label).inc(redelivered)
    if parked:
        PARKED.labels(label).inc(parked)
    QUEUE_ROWS.labels(label).inc(queue_rows)
