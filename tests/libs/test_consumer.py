"""The partition consumer against an in-memory stream that loses deliveries on demand.

What a real nats-server does only under faults (a delivery lost across a
reconnect, a cancellation swallowed inside the client library, the store
going away) is made to happen here deterministically.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from libs.bus import AfterAck, Delivery, PartitionConsumer, PositionConflict, Unavailable
from tests.harness import until


@dataclass
class _Seq:
    stream: int
    consumer: int


@dataclass
class _Meta:
    sequence: _Seq


@dataclass
class _Msg:
    metadata: _Meta
    subject: str
    data: bytes
    acked: list[int]
    headers: dict[str, str] | None = None

    async def ack(self) -> None:
        self.acked.append(self.metadata.sequence.stream)


@dataclass
class _Sub:
    stream: list[int]
    start: int
    lose: set[int]  # stream seqs whose first delivery never arrives
    acked: list[int]
    swallow_cancel: list[int]  # cancellations still to swallow (shared by the subscriptions)
    consumer_seq: int = 0
    fetches: int = 0

    async def fetch(self, size: int, timeout: float) -> list[_Msg]:
        self.fetches += 1
        pending = [s for s in self.stream if s >= self.start][:size]
        if not pending:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if not self.swallow_cancel[0]:
                    raise
                # As Python 3.11's wait_for does when a message lands at the same moment.
                self.swallow_cancel[0] -= 1
            return []  # as Puller.fetch answers when its request expires empty
        out = []
        for seq in pending:
            self.consumer_seq += 1
            self.start = seq + 1
            if seq in self.lose:
                self.lose.discard(seq)  # delivered, but lost on the way
                continue
            out.append(_Msg(_Meta(_Seq(seq, self.consumer_seq)), "s", b"", self.acked))
        return out

    async def unsubscribe(self) -> None:
        pass


@dataclass
class _JetStream:
    stream: list[int]
    lose: set[int] = field(default_factory=set)
    acked: list[int] = field(default_factory=list)
    swallow_cancel: list[int] = field(default_factory=lambda: [0])
    subs: list[_Sub] = field(default_factory=list)
    _start: int = 1

    async def delete_consumer(self, stream: str, durable: str) -> None:
        pass

    async def add_consumer(self, stream: str, config: Any) -> None:
        self._start = config.opt_start_seq

    async def pull_subscribe_bind(self, durable: str, stream: str) -> _Sub:
        sub = _Sub(self.stream, self._start, self.lose, self.acked, self.swallow_cancel)
        self.subs.append(sub)
        return sub


@dataclass
class _Projection:
    stored: int = 0
    applied: list[int] = field(default_factory=list)
    parked: list[int] = field(default_factory=list)
    unavailable: int = 0  # the next applies that find the store down

    async def position(self, partition: int) -> int:
        return self.stored

    async def apply(self, partition: int, after: int, batch: Sequence[Delivery]) -> AfterAck | None:
        if after != self.stored:
            raise PositionConflict(partition)
        if self.unavailable:
            self.unavailable -= 1
            raise Unavailable("connection refused")
        self.applied.extend(d.stream_seq for d in batch)
        self.stored = batch[-1].stream_seq
        return None

    async def park(self, partition: int, delivery: Delivery, error: str) -> None:
        self.parked.append(delivery.stream_seq)
        self.stored = delivery.stream_seq


async def _bind(js: Any, stream: str, durable: str) -> Any:
    return await js.pull_subscribe_bind(durable, stream)


def _consumer(js: _JetStream, projection: _Projection, batch: int = 4) -> PartitionConsumer:
    return PartitionConsumer(
        js=js,  # type: ignore[arg-type]
        stream="S",
        partition=0,
        filter_subject="s",
        durable="fanout-0",
        projection=projection,
        batch=batch,
        max_attempts=3,
        retry_delay=0.001,
        puller=_bind,
    )


async def _run_until(consumer: PartitionConsumer, done: Any, what: str) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await until(done, 5.0, what)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5.0)


async def test_a_delivery_lost_in_flight_is_not_skipped() -> None:
    # Stream seqs of this partition are not contiguous (others interleave).
    js = _JetStream(stream=[2, 5, 6, 9, 11], lose={5})
    projection = _Projection()

    async def all_applied() -> bool:
        return projection.stored == 11

    await _run_until(_consumer(js, projection), all_applied, "every event applied")
    assert projection.applied == [2, 5, 6, 9, 11]
    assert len(js.subs) == 2  # the gap made it start again from the stored position


async def test_a_store_that_is_down_never_gets_an_event_parked() -> None:
    js = _JetStream(stream=[1, 2, 3])
    projection = _Projection(unavailable=10)  # far more than max_attempts

    async def all_applied() -> bool:
        return projection.stored == 3

    await _run_until(_consumer(js, projection), all_applied, "every event applied")
    assert projection.parked == []
    assert projection.applied == [1, 2, 3]


async def test_an_event_that_keeps_failing_is_parked() -> None:
    class Failing(_Projection):
        async def apply(
            self, partition: int, after: int, batch: Sequence[Delivery]
        ) -> AfterAck | None:
            if any(d.stream_seq == 2 for d in batch):
                raise ValueError("cannot be stored")
            return await super().apply(partition, after, batch)

    js = _JetStream(stream=[1, 2, 3])
    projection = Failing()

    async def moved_on() -> bool:
        return projection.stored == 3

    await _run_until(_consumer(js, projection), moved_on, "the partition to move on")
    assert (projection.applied, projection.parked) == ([1, 3], [2])


async def test_a_cancellation_swallowed_inside_fetch_still_stops_the_consumer() -> None:
    js = _JetStream(stream=[1], swallow_cancel=[1])
    projection = _Projection()
    task = asyncio.create_task(_consumer(js, projection).run(asyncio.Event()))
    await until(lambda: _fetched_twice(js), 5.0, "the consumer to wait for more")
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5.0)
    assert task in done, "the consumer kept running after it was cancelled"
    with pytest.raises(asyncio.CancelledError), contextlib.suppress(TimeoutError):
        await task


async def _fetched_twice(js: _JetStream) -> bool:
    return bool(js.subs) and js.subs[-1].fetches >= 2


async def test_a_delivery_lost_with_nothing_after_it_is_recovered_after_a_reconnect() -> None:
    # The last delivery is lost: no later one comes to show the gap.
    js = _JetStream(stream=[1, 2, 3], lose={3})
    projection = _Projection()
    reconnects = 0
    consumer = _consumer(js, projection)
    consumer.reconnects = lambda: reconnects
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await until(lambda: _stored(projection, 2), 5.0, "the events before the lost one")
        reconnects += 1
        await until(lambda: _stored(projection, 3), 5.0, "the lost event, after the reconnect")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5.0)
    assert projection.applied == [1, 2, 3]


async def _stored(projection: _Projection, seq: int) -> bool:
    return projection.stored == seq
