"""Scenario 3: one message to a channel of M member clients.

Measured from just before the POST: when the message's queue rows are
committed (fanout writes them all in one transaction with the message row, so
the moment that row becomes visible is the moment the last queue row is), and
when each of the sampled long-polls, parked beforehand, has it.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp
import asyncpg

from services.bench.checks import Receiver, mark, verdict
from services.bench.client import Api, BenchError, Member, Page
from services.bench.procs import Sampler
from services.bench.seed import channel_of
from services.bench.stats import ms, percentiles

_VISIBLE = "SELECT id FROM delivery.messages WHERE id > $1 AND event_id = $2"
_NEWEST = "SELECT id FROM delivery.messages WHERE id > $1 ORDER BY id LIMIT 1"
_QUEUED = """SELECT count(*) AS rows, count(DISTINCT q.client_id) AS clients,
                    count(*) FILTER (WHERE q.seq = e.seq) AS in_place
             FROM delivery.client_queues q
             JOIN unnest($2::uuid[], $3::bigint[]) AS e(client_id, seq) USING (client_id)
             WHERE q.message_id = $1"""


async def _committed(pool: asyncpg.Pool[Any], after_id: int, deadline: float) -> tuple[float, int]:
    """Poll until a new message row is visible: (monotonic time seen, its id)."""
    end = time.monotonic() + deadline
    async with pool.acquire() as conn:
        while True:
            found = await conn.fetchval(_NEWEST, after_id)
            if found is not None:
                return time.monotonic(), int(found)
            if time.monotonic() > end:
                raise BenchError(f"no message row committed in {deadline} s")
            await asyncio.sleep(0.002)


async def big_room(
    api: Api,
    pool: asyncpg.Pool[Any],
    sampler: Sampler,
    run: str,
    founder: Member,
    members: list[Member],
    sampled: int,
) -> dict[str, Any]:
    """Seed a channel of ``members`` (+ the founder), park ``sampled`` polls, send one message."""
    channel = f"#big-{run}"
    seeding = time.monotonic()
    await channel_of(api, pool, founder, channel, members)
    seeded = time.monotonic() - seeding
    sample = random.Random(run).sample(members, sampled)
    receivers = {m.client_id: Receiver(m.nick, f"{run}B", m.seen) for m in sample}
    answers: dict[str, tuple[float, Page]] = {}
    errors: list[str] = []

    async def wait(member: Member) -> None:
        """Long-poll until the message comes (a poll that times out is made again)."""
        try:
            while True:
                page = await api.poll(member, member.seen, timeout=60, limit=10)
                if page.messages:
                    break
        except (BenchError, aiohttp.ClientError, OSError, TimeoutError) as error:
            errors.append(f"{member.nick}: {error!r}")
            return
        answers[member.client_id] = (time.monotonic(), page)

    base = await api.waiting()
    after_id = int(await pool.fetchval("SELECT coalesce(max(id), 0) FROM delivery.messages"))
    with sampler.measure() as usage:
        polls = [asyncio.create_task(wait(m)) for m in sample]
        parked = await api.settle(base, sampled, deadline=60.0)
        committed = asyncio.create_task(_committed(pool, after_id, deadline=60.0))
        t0 = time.monotonic()
        sent = await api.command(
            founder, "PRIVMSG", to=channel, body=["to everyone"], meta=mark(f"{run}B", 0, 1, t0)
        )
        visible_at, message_id = await committed
        _, pending = await asyncio.wait(polls, timeout=60.0)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    for member in sample:  # they poll no more: their connections go now, not at the run's end
        api.hang_up(member)
    founder.seen += 1
    everyone = [*members, founder]
    row = await pool.fetchrow(
        _QUEUED,
        message_id,
        [m.client_id for m in everyone],
        [m.seen + 1 if m is not founder else m.seen for m in everyone],
    )
    if await pool.fetchval(_VISIBLE, after_id, sent.id) != message_id:
        errors.append(f"the first new message row is not the one sent ({sent.id})")
    expected = len(everyone)
    if row is None or not row["rows"] == row["clients"] == row["in_place"] == expected:
        errors.append(f"queue rows of the message: {dict(row or {})}, expected {expected} each")
    for member in members:
        member.seen += 1
    waits = []
    for client_id, (at, page) in answers.items():
        receivers[client_id].accept(page.messages, at)
        waits.append(at - t0)
    if len(answers) < sampled:
        errors.append(f"{sampled - len(answers)} sampled long-polls were not answered")
    check = verdict(receivers.values(), {sent.id}, errors)
    ordered = sorted(waits)
    return {
        "members": expected,
        "seed_s": round(seeded, 3),
        "sampled": sampled,
        "park_s": round(parked, 3),
        "accept_ms": ms(sent.answered_at - t0),
        "committed_ms": ms(visible_at - t0),
        "sampled_ms": percentiles(waits),
        "all_sampled_ms": ms(ordered[-1]) if ordered else None,
        "checks": check.as_dict(),
        "processes": usage.as_dict(),
    }
