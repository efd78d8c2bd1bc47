"""Scenario 4: K idle long-polls held by one gateway process, then one message to them all.

The polls come from helper processes (``services.bench.worker``), so neither
side runs into the per-process file limit and the answers are read on more
than one core. RSS per poll is the gateway's growth from before the first poll
to all of them parked (its ``longpolls_waiting`` gauge), divided by K.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import asyncpg
import msgspec

from services.bench.checks import Receiver, mark, verdict
from services.bench.client import Api, BenchError, Item, Member
from services.bench.procs import Sampler
from services.bench.seed import channel_of
from services.bench.stats import ms, percentiles
from services.bench.worker import Job, Result

POLL_TIMEOUT = 60.0  # the longest long-poll the API allows
PARK_DEADLINE = 300.0  # seconds the gateway gets to hold every poll at once
_LINE_LIMIT = 1 << 26


class Worker:
    """One helper process holding a share of the polls."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, job: Job) -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.bench.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )
        assert process.stdin is not None
        process.stdin.write(msgspec.json.encode(job))
        await process.stdin.drain()
        process.stdin.close()
        await process.stdin.wait_closed()
        return cls(process)

    async def _line(self) -> bytes:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            await self.process.wait()
            raise BenchError(f"a load worker exited with code {self.process.returncode}")
        return line

    async def all_sent(self) -> None:
        if (await self._line()).strip() != b"sent":
            raise BenchError("a load worker said something unexpected")

    async def result(self) -> Result:
        result = msgspec.json.decode(await self._line(), type=Result)
        await self.process.wait()
        return result

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def idle(
    api: Api,
    pool: asyncpg.Pool[Any],
    sampler: Sampler,
    gateway_role: str,
    run: str,
    founder: Member,
    members: list[Member],
    procs: int,
) -> dict[str, Any]:
    """Seed a channel of ``members``, hold a long-poll for each, then send one message."""
    channel = f"#idle-{run}"
    await channel_of(api, pool, founder, channel, members)
    count = len(members)
    share = -(-count // procs)
    chunks = [members[i : i + share] for i in range(0, count, share)]
    receivers = [Receiver(m.nick, f"{run}I", m.seen) for m in members]
    base = await api.waiting()
    rss_before = sampler.rss(gateway_role)
    errors: list[str] = []
    workers: list[Worker] = []
    try:
        with sampler.measure() as usage:
            start = time.monotonic()
            for chunk in chunks:
                job = Job(api.base_url, [(m.token, m.seen) for m in chunk], POLL_TIMEOUT)
                workers.append(await Worker.start(job))
            await asyncio.gather(*(w.all_sent() for w in workers))
            await api.settle(base, count, deadline=PARK_DEADLINE)
            parked = time.monotonic() - start
            rss_after = rss_before
            for _ in range(5):
                rss_after = max(rss_after, sampler.rss(gateway_role))
                await asyncio.sleep(0.1)
            t0 = time.monotonic()
            sent = await api.command(
                founder, "PRIVMSG", to=channel, body=["wake up"], meta=mark(f"{run}I", 0, 1, t0)
            )
            results = await asyncio.wait_for(
                asyncio.gather(*(w.result() for w in workers)), POLL_TIMEOUT + 30
            )
    finally:
        for worker in workers:
            await worker.kill()
    founder.seen += 1
    waits: list[float] = []
    answers = [a for result in results for a in result.answers]
    for member, receiver, answer in zip(members, receivers, answers, strict=True):
        if answer.status != 200:
            errors.append(f"{member.nick}: poll answered {answer.status} {answer.error}")
            continue
        if answer.at < t0:
            errors.append(f"{member.nick}: poll answered before the message was sent")
        # The worker reports (seq, id) only: every item it got must be this message.
        items = [
            Item(seq=seq, id=id_, command="PRIVMSG", meta={"bench": [f"{run}I", 0, 1, t0]})
            for seq, id_ in answer.items
        ]
        receiver.accept(items, answer.at)
        member.seen = receiver.seen
        waits.append(answer.at - t0)
    check = verdict(receivers, {sent.id}, errors[:20])
    ordered = sorted(waits)
    return {
        "polls": count,
        "client_processes": len(workers),
        "park_s": round(parked, 3),
        "gateway_rss_before_mb": round(rss_before / 2**20, 1),
        "gateway_rss_after_mb": round(rss_after / 2**20, 1),
        "rss_per_poll_kb": round((rss_after - rss_before) / count / 1024, 2),
        "accept_ms": ms(sent.answered_at - t0),
        "answered_ms": percentiles(waits),
        "all_answered_ms": ms(ordered[-1]) if ordered else None,
        "client_cpu_s": round(sum(r.cpu_s for r in results), 2),
        "checks": check.as_dict(),
        "processes": usage.as_dict(),
    }
