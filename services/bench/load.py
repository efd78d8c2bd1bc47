"""Scenarios 1 and 2: send→deliver latency on an open-loop schedule, and throughput.

Latency is measured at the receivers from the time the schedule *meant* to
send each message, not from when the request went out: a stall delays the
sends behind it, and their latency includes the wait (no coordinated omission).
Each sender sends in order (its next request waits for the previous answer),
so per-sender order is defined and checked. In the latency scenario every
member sends in turn, so up to N requests can be in flight and a slow answer
holds back only its own sender's next slot; in the throughput scenario the
first ``senders`` members send back to back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import nats

from libs.bus import MSG_ID_HEADER
from libs.events import MessagePosted, encode_event, utcnow
from libs.irc import fold
from libs.settings import Settings
from libs.subjects import Subjects
from services.bench.checks import END, Receiver, mark, verdict
from services.bench.client import BenchError, Member
from services.bench.options import Sizes
from services.bench.procs import Sampler, Usage
from services.bench.room import Listening, Room, RowCounter
from services.bench.stats import percentiles, rate

_START_DELAY = 0.2  # seconds between the receivers parking and the first scheduled send


@dataclass
class Load:
    """What a scenario's load needs: the room, a database pool and a sampler."""

    room: Room
    pool: asyncpg.Pool[Any]
    sampler: Sampler
    sizes: Sizes
    run: str


@dataclass
class _Phase:
    """One scenario's run of the room: its receivers, listening from parked long-polls."""

    run: str
    receivers: list[Receiver]
    listening: Listening
    usage: Usage

    def checked(self, sent: set[str], errors: list[str]) -> dict[str, Any]:
        """The verdict on what arrived, with the figures every scenario reports."""
        check = verdict(self.receivers, sent, errors + self.listening.errors)
        return {
            "deliveries": check.delivered,
            "checks": check.as_dict(),
            "processes": self.usage.as_dict(),
            "cpu_us_per_delivery": self.usage.cpu_per(check.delivered),
        }

    def last_arrival(self, default: float) -> float:
        """When the last item of this phase arrived at any receiver."""
        return max((r.last_at for r in self.receivers if r.last_at), default=default)


@asynccontextmanager
async def _listening(
    load: Load, suffix: str, counter: RowCounter | None = None
) -> AsyncIterator[_Phase]:
    """Every member long-polling for run ``suffix``, parked before the body runs, and
    ``counter`` counting; the processes sampled meanwhile. Whatever the body does,
    the listeners and the counter are stopped when it ends: a failed scenario
    leaves nothing polling on the members' lines into the next one."""
    room = load.room
    run = f"{load.run}{suffix}"
    receivers = room.receivers(run)
    listening = Listening(room, receivers, load.sizes.poll_timeout)
    base = await room.api.waiting()
    with load.sampler.measure() as usage:
        try:
            listening.start()
            await room.api.settle(base, len(room.members), deadline=60.0)
            if counter is not None:
                await counter.start()
            yield _Phase(run, receivers, listening, usage)
        finally:
            await listening.stop()
            if counter is not None:
                await counter.stop()


async def latency(load: Load) -> dict[str, Any]:
    """N members long-polling, R sends/s for D seconds: send→deliver percentiles."""
    sizes, room = load.sizes, load.room
    rejected = room.rejected
    total = max(1, round(sizes.rate * sizes.duration))
    accepts: list[float] = []
    errors: list[str] = []
    sent: set[str] = set()
    async with _listening(load, "L") as phase:
        t0 = time.monotonic() + _START_DELAY

        async def sender(index: int) -> None:
            schedule = [t0 + i / sizes.rate for i in range(index, total, len(room.members))]
            for n, intended in enumerate(schedule, 1):
                delay = intended - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    sent.add(await room.send(index, n, intended, phase.run))
                except BenchError as error:
                    errors.append(str(error))
                    return
                accepts.append(time.monotonic() - intended)

        await asyncio.gather(*(sender(i) for i in range(len(room.members))))
        sending = time.monotonic() - t0
        sent.add(await room.end(phase.run))
        drain = await phase.listening.finish(sizes.drain_timeout)
    common = phase.checked(sent, errors)
    samples = [lat for r in phase.receivers for lat in r.latencies]
    return {
        "members": len(room.members),
        "senders": min(total, len(room.members)),
        "scheduled_rate": sizes.rate,
        "sent": len(sent) - 1,
        "achieved_rate": rate(len(sent) - 1, sending),
        "rejected_429": room.rejected - rejected,
        "send_to_deliver_ms": percentiles(samples),
        "send_to_accept_ms": percentiles(accepts),
        "polls": phase.listening.polls,
        "drain_s": round(drain, 3),
        **common,
    }


async def throughput(load: Load) -> dict[str, Any]:
    """The same room, every sender as fast as the gateway accepts for D seconds."""
    sizes, room = load.sizes, load.room
    rejected = room.rejected
    counter = RowCounter(room, load.pool)
    errors: list[str] = []
    sent: set[str] = set()
    async with _listening(load, "T", counter) as phase:
        t0 = time.monotonic()
        stop_at = t0 + sizes.duration

        async def sender(index: int) -> None:
            n = 0
            while time.monotonic() < stop_at:
                n += 1
                try:
                    sent.add(await room.send(index, n, time.monotonic(), phase.run))
                except BenchError as error:
                    errors.append(str(error))
                    return

        await asyncio.gather(*(sender(i) for i in range(len(room.senders))))
        sending = time.monotonic() - t0
        accepted = len(sent)
        sent.add(await room.end(phase.run))
        drain = await phase.listening.finish(sizes.drain_timeout)
        rows_done = await counter.finish(len(sent) * len(room.members), 5.0, errors)
    common = phase.checked(sent, errors)
    last = phase.last_arrival(t0)
    return {
        "members": len(room.members),
        "senders": len(room.senders),
        "accepted": accepted,
        "accepted_per_s": rate(accepted, sending),
        "rejected_429": room.rejected - rejected,
        "deliveries_per_s": rate(common["deliveries"], last - t0),
        "queue_rows": counter.written,
        "queue_rows_per_s": rate(counter.written, (rows_done or time.monotonic()) - t0),
        "polls": phase.listening.polls,
        "polls_per_s": rate(phase.listening.polls, last - t0),
        "send_to_deliver_ms": percentiles([x for r in phase.receivers for x in r.latencies]),
        "drain_s": round(drain, 3),
        **common,
    }


def _direct(run: str, author: Member, to: str, sender: int, count: int) -> list[MessagePosted]:
    """``count`` messages of ``author`` to channel ``to`` and the end marker, as the
    gateway would publish them, marked as sender ``sender``'s of ``run``."""
    return [
        MessagePosted(
            event_id=uuid.uuid4(),
            ts=utcnow(),
            command="PRIVMSG",
            sender_id=uuid.UUID(author.session_id),
            sender=author.nick,
            to=to,
            channel=fold(to),
            body=[f"direct:{n}"],
            meta=mark(run, sender, END if n > count else n, 0.0),
        )
        for n in range(1, count + 2)  # the last one is the end marker
    ]


async def fanout_only(load: Load, settings: Settings, nats_url: str) -> dict[str, Any]:
    """Events published straight to the stream (pipelined): fanout's own rate into queues.

    The gateway is out of the send path, so the queue rows per second are what
    the projection sustains with a backlog to work through; the members still
    long-poll and check every item.
    """
    sizes, room = load.sizes, load.room
    sender_index = len(room.members)  # no member's index: an order of its own
    author = room.members[0]
    subjects = Subjects(settings.subject_prefix, settings.partitions)
    counter = RowCounter(room, load.pool, every=0.02)
    errors: list[str] = []
    nc = await nats.connect(nats_url, name="chinwag-bench")
    try:
        js = nc.jetstream(publish_async_max_pending=100)
        async with _listening(load, "F", counter) as phase:
            events = _direct(phase.run, author, room.channel, sender_index, sizes.fanout_events)
            sent = {str(e.event_id) for e in events}
            t0 = time.monotonic()
            acks = [
                await js.publish_async(
                    subjects.event(e), encode_event(e), headers={MSG_ID_HEADER: str(e.event_id)}
                )
                for e in events
            ]
            outcomes = await asyncio.gather(*acks, return_exceptions=True)
            published = time.monotonic() - t0
            errors += [repr(o) for o in outcomes if isinstance(o, BaseException)][:5]
            rows = len(events) * len(room.members)
            rows_done = await counter.finish(rows, sizes.drain_timeout, errors)
            await phase.listening.finish(sizes.drain_timeout)
    finally:
        await nc.close()
    common = phase.checked(sent, errors)
    return {
        "events": len(events),
        "published_per_s": rate(len(events), published),
        "queue_rows": counter.written,
        "queue_rows_per_s": rate(counter.written, (rows_done or time.monotonic()) - t0),
        "deliveries_per_s": rate(common["deliveries"], phase.last_arrival(t0) - t0),
        **common,
    }
