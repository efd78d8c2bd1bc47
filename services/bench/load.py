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
from dataclasses import dataclass
from typing import Any

import asyncpg
import nats

from libs.bus import MSG_ID_HEADER
from libs.events import MessagePosted, encode_event, utcnow
from libs.irc import fold
from libs.settings import Settings
from libs.subjects import Subjects
from services.bench.checks import END, mark, verdict
from services.bench.client import BenchError
from services.bench.options import Sizes
from services.bench.procs import Sampler
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


async def _parked(load: Load, base: int | None) -> None:
    """Wait until every member's long-poll is parked."""
    await load.room.api.settle(base, len(load.room.members), deadline=60.0)


async def latency(load: Load) -> dict[str, Any]:
    """N members long-polling, R sends/s for D seconds: send→deliver percentiles."""
    sizes, room = load.sizes, load.room
    run = f"{load.run}L"
    rejected = room.rejected
    receivers = room.receivers(run)
    listening = Listening(room, receivers, sizes.poll_timeout)
    total = max(1, round(sizes.rate * sizes.duration))
    accepts: list[float] = []
    errors: list[str] = []
    sent: set[str] = set()
    base = await room.api.waiting()
    with load.sampler.measure() as usage:
        listening.start()
        await _parked(load, base)
        t0 = time.monotonic() + _START_DELAY

        async def sender(index: int) -> None:
            schedule = [t0 + i / sizes.rate for i in range(index, total, len(room.members))]
            for n, intended in enumerate(schedule, 1):
                delay = intended - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    sent.add(await room.send(index, n, intended, run))
                except BenchError as error:
                    errors.append(str(error))
                    return
                accepts.append(time.monotonic() - intended)

        await asyncio.gather(*(sender(i) for i in range(len(room.members))))
        sending = time.monotonic() - t0
        sent.add(await room.end(run))
        drain = await listening.finish(sizes.drain_timeout)
    check = verdict(receivers, sent, errors + listening.errors)
    samples = [lat for r in receivers for lat in r.latencies]
    return {
        "members": len(room.members),
        "senders": min(total, len(room.members)),
        "scheduled_rate": sizes.rate,
        "sent": len(sent) - 1,
        "achieved_rate": rate(len(sent) - 1, sending),
        "rejected_429": room.rejected - rejected,
        "deliveries": check.delivered,
        "send_to_deliver_ms": percentiles(samples),
        "send_to_accept_ms": percentiles(accepts),
        "polls": listening.polls,
        "drain_s": round(drain, 3),
        "checks": check.as_dict(),
        "processes": usage.as_dict(),
        "cpu_us_per_delivery": usage.cpu_per(check.delivered),
    }


async def throughput(load: Load) -> dict[str, Any]:
    """The same room, every sender as fast as the gateway accepts for D seconds."""
    sizes, room = load.sizes, load.room
    run = f"{load.run}T"
    rejected = room.rejected
    receivers = room.receivers(run)
    listening = Listening(room, receivers, sizes.poll_timeout)
    counter = RowCounter(room, load.pool)
    errors: list[str] = []
    sent: set[str] = set()
    base = await room.api.waiting()
    with load.sampler.measure() as usage:
        listening.start()
        await _parked(load, base)
        rows_before = await counter.start()
        t0 = time.monotonic()
        stop_at = t0 + sizes.duration

        async def sender(index: int) -> None:
            n = 0
            while time.monotonic() < stop_at:
                n += 1
                try:
                    sent.add(await room.send(index, n, time.monotonic(), run))
                except BenchError as error:
                    errors.append(str(error))
                    return

        await asyncio.gather(*(sender(i) for i in range(len(room.senders))))
        sending = time.monotonic() - t0
        accepted = len(sent)
        sent.add(await room.end(run))
        drain = await listening.finish(sizes.drain_timeout)
        rows_expected = rows_before + len(sent) * len(room.members)
        rows_done = await counter.wait_for(rows_expected, deadline=5.0)
        await counter.stop()
    rows = counter.samples[-1][1] - rows_before
    if rows_done is None:
        errors.append(f"queue rows: {rows} written, {rows_expected - rows_before} expected")
    check = verdict(receivers, sent, errors + listening.errors)
    last = max((r.last_at for r in receivers if r.last_at), default=t0)
    return {
        "members": len(room.members),
        "senders": len(room.senders),
        "accepted": accepted,
        "accepted_per_s": rate(accepted, sending),
        "rejected_429": room.rejected - rejected,
        "deliveries": check.delivered,
        "deliveries_per_s": rate(check.delivered, last - t0),
        "queue_rows": rows,
        "queue_rows_per_s": rate(rows, (rows_done or time.monotonic()) - t0),
        "polls": listening.polls,
        "polls_per_s": rate(listening.polls, last - t0),
        "send_to_deliver_ms": percentiles([x for r in receivers for x in r.latencies]),
        "drain_s": round(drain, 3),
        "checks": check.as_dict(),
        "processes": usage.as_dict(),
        "cpu_us_per_delivery": usage.cpu_per(check.delivered),
    }


async def fanout_only(load: Load, settings: Settings, nats_url: str) -> dict[str, Any]:
    """Events published straight to the stream (pipelined): fanout's own rate into queues.

    The gateway is out of the send path, so the queue rows per second are what
    the projection sustains with a backlog to work through; the members still
    long-poll and check every item.
    """
    sizes, room = load.sizes, load.room
    run = f"{load.run}F"
    sender_index = len(room.members)  # no member's index: an order of its own
    author = room.members[0]
    channel = fold(room.channel)
    subjects = Subjects(settings.subject_prefix, settings.partitions)
    receivers = room.receivers(run)
    listening = Listening(room, receivers, sizes.poll_timeout)
    counter = RowCounter(room, load.pool, every=0.02)
    events = [
        MessagePosted(
            event_id=uuid.uuid4(),
            ts=utcnow(),
            command="PRIVMSG",
            sender_id=uuid.UUID(author.session_id),
            sender=author.nick,
            to=room.channel,
            channel=channel,
            body=[f"direct:{n}"],
            meta=mark(run, sender_index, END if n > sizes.fanout_events else n, 0.0),
        )
        for n in range(1, sizes.fanout_events + 2)  # the last one is the end marker
    ]
    sent = {str(e.event_id) for e in events}
    base = await room.api.waiting()
    errors: list[str] = []
    nc = await nats.connect(nats_url, name="chinwag-bench")
    try:
        js = nc.jetstream(publish_async_max_pending=100)
        with load.sampler.measure() as usage:
            listening.start()
            await _parked(load, base)
            rows_before = await counter.start()
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
            rows_expected = rows_before + len(events) * len(room.members)
            rows_done = await counter.wait_for(rows_expected, deadline=sizes.drain_timeout)
            await counter.stop()
            await listening.finish(sizes.drain_timeout)
    finally:
        await nc.close()
    rows = counter.samples[-1][1] - rows_before
    if rows_done is None:
        errors.append(f"queue rows: {rows} written, {rows_expected - rows_before} expected")
    check = verdict(receivers, sent, errors + listening.errors)
    last = max((r.last_at for r in receivers if r.last_at), default=t0)
    return {
        "events": len(events),
        "published_per_s": rate(len(events), published),
        "queue_rows": rows,
        "queue_rows_per_s": rate(rows, (rows_done or time.monotonic()) - t0),
        "deliveries": check.delivered,
        "deliveries_per_s": rate(check.delivered, last - t0),
        "checks": check.as_dict(),
        "processes": usage.as_dict(),
        "cpu_us_per_delivery": usage.cpu_per(check.delivered),
    }
