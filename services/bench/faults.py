"""Fault runs: a fault injected into chinwag's real processes under the workload, then checked.

Each run starts the services on ``Servers`` of their own, builds the
workload's users and channels, sends and long-polls; ``cycles`` times it
injects the fault, lets it last, and repairs it; then it stops sending, waits
until every acknowledged send has reached every recipient client, and checks
the history (``checks.check_history``). Recovery time runs from the repair
(the restart issued, SIGCONT sent, the link restored) until every send made
before it and acknowledged is delivered everywhere and a send made after it
is acknowledged and delivered too.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from services.bench.client import session
from services.bench.cluster import Cluster, Servers, run_settings
from services.bench.workload import Shape, Workload, outcomes, recovery

Action = Callable[[Cluster, Workload], Awaitable[None]]

# A fanout transaction under way: between the statements of a batch, or in its big write.
_MID_BATCH = """SELECT count(*) FROM pg_stat_activity
                WHERE application_name = 'chinwag-fanout' AND datname = current_database()
                  AND (state = 'idle in transaction'
                       OR (state = 'active' AND query LIKE '%WITH ev AS%'))"""


@dataclass(frozen=True)
class Timing:
    """How long a run's phases last, in seconds."""

    before: float = 1.5  # traffic before each injection
    during: float = 2.0  # how long the fault lasts (unless the fault says otherwise)
    after: float = 1.5  # traffic after the last repair
    cycles: int = 1  # injections per run
    drain: float = 60.0  # the longest wait for the last deliveries


SHORT = Timing(before=1.0, during=1.5, after=2.5)
LONG = Timing(before=5.0, during=5.0, after=6.0, cycles=3, drain=120.0)


@dataclass(frozen=True)
class Fault:
    """A fault: how to inject it, how to repair it, and what the run needs for it."""

    name: str
    what: str
    inject: Action
    repair: Action
    gateways: int = 1
    fanouts: int = 1
    proxied: tuple[str, ...] = ()  # services whose NATS link goes through a proxy
    settings: Mapping[str, Any] = field(default_factory=dict)
    during: float | None = None


async def mid_batch(cluster: Cluster, deadline: float = 10.0) -> bool:
    """Wait until fanout is inside a batch's transaction; False if none was seen in time."""
    conn = await asyncpg.connect(cluster.settings.dsn())
    try:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if await conn.fetchval(_MID_BATCH):
                return True
            await asyncio.sleep(0.002)
        return False
    finally:
        await conn.close()


async def _kill_fanout(cluster: Cluster, workload: Workload) -> None:
    await mid_batch(cluster)
    await cluster.service("fanout").kill()


async def _restart_fanout(cluster: Cluster, workload: Workload) -> None:
    await cluster.restart("fanout")


async def _kill_one_fanout(cluster: Cluster, workload: Workload) -> None:
    await mid_batch(cluster)
    await cluster.service("fanout.0").kill()


async def _restart_one_fanout(cluster: Cluster, workload: Workload) -> None:
    await cluster.restart("fanout.0")


async def _kill_gateway(cluster: Cluster, workload: Workload) -> None:
    # Mid-request: while one of the workload's sends is with that gateway.
    await workload.in_flight(cluster.gateway_urls[0])
    await cluster.service("gateway.0").kill()


async def _restart_gateway(cluster: Cluster, workload: Workload) -> None:
    await cluster.restart("gateway.0")


async def _pause_fanout(cluster: Cluster, workload: Workload) -> None:
    await mid_batch(cluster)
    cluster.service("fanout").pause()


async def _resume_fanout(cluster: Cluster, workload: Workload) -> None:
    cluster.service("fanout").resume()


async def _kill_nats(cluster: Cluster, workload: Workload) -> None:
    await cluster.servers.kill_nats()


async def _start_nats(cluster: Cluster, workload: Workload) -> None:
    await cluster.servers.start_nats()


async def _kill_postgres(cluster: Cluster, workload: Workload) -> None:
    await cluster.servers.kill_postgres()


async def _start_postgres(cluster: Cluster, workload: Workload) -> None:
    await cluster.servers.start_postgres()


def _cut(label: str) -> tuple[Action, Action]:
    async def cut(cluster: Cluster, workload: Workload) -> None:
        await cluster.proxies[label].cut()

    async def restore(cluster: Cluster, workload: Workload) -> None:
        await cluster.proxies[label].open()

    return cut, restore


ACK_WAIT = 1.0  # the consumer's ack wait in the SIGSTOP run: the pause outlasts it
LEASE_TTL = 2.0  # fanout's partition leases in every run

FAULTS: tuple[Fault, ...] = (
    Fault("kill-fanout", "kill -9 of fanout inside a batch", _kill_fanout, _restart_fanout),
    Fault(
        "kill-one-fanout",
        f"kill -9 of one of two fanout workers; the other takes its partitions over once "
        f"their leases ({LEASE_TTL:g} s) run out, and hands them back at its restart",
        _kill_one_fanout,
        _restart_one_fanout,
        fanouts=2,
        during=2 * LEASE_TTL,
    ),
    Fault(
        "kill-gateway",
        "kill -9 of one of two gateways; clients retry on the other",
        _kill_gateway,
        _restart_gateway,
        gateways=2,
    ),
    Fault(
        "stop-fanout",
        f"SIGSTOP of fanout inside a batch for 2.5 x its ack wait ({ACK_WAIT:g} s), then SIGCONT",
        _pause_fanout,
        _resume_fanout,
        settings={"ack_wait": ACK_WAIT},
        during=2.5 * ACK_WAIT,
    ),
    Fault("restart-nats", "kill -9 of nats-server, then start", _kill_nats, _start_nats),
    Fault("restart-postgres", "kill -9 of PostgreSQL, then start", _kill_postgres, _start_postgres),
    Fault(
        "cut-fanout", "network cut between fanout and NATS", *_cut("fanout"), proxied=("fanout",)
    ),
    Fault(
        "cut-gateway",
        "network cut between gateway and NATS",
        *_cut("gateway"),
        proxied=("gateway",),
    ),
)


def fault_named(name: str) -> Fault:
    for fault in FAULTS:
        if fault.name == name:
            return fault
    raise KeyError(name)


@dataclass
class FaultReport:
    """What one fault run found."""

    fault: str
    sends: int
    acked: int
    failed: int
    unknown: int
    unknown_delivered: int
    lost: int
    duplicated: int
    out_of_order: int
    recovery: float | None  # the slowest recovery of the run's cycles, seconds
    problems: list[str]
    statuses: dict[str, int]  # answers other than 200, and why attempts went unanswered
    send_seconds: tuple[float, float]  # acknowledged sends: median and slowest answer
    slowest_delivery: float  # seconds from an answer to the last recipient's receipt

    @property
    def ok(self) -> bool:
        return not self.problems and self.recovery is not None

    def describe(self) -> str:
        recovered = "never" if self.recovery is None else f"{self.recovery:.2f} s"
        lines = [
            f"{self.fault}: {self.sends} sends, {self.acked} acknowledged, {self.failed} failed, "
            f"{self.unknown} unknown ({self.unknown_delivered} delivered); lost {self.lost}, "
            f"duplicated {self.duplicated}, out of order {self.out_of_order}; "
            f"recovery {recovered}; not 200: {self.statuses}; answered in "
            f"{self.send_seconds[0] * 1000:.0f} ms (median), "
            f"{self.send_seconds[1]:.2f} s (slowest); slowest delivery "
            f"{self.slowest_delivery:.2f} s",
            *self.problems[:20],
        ]
        return "\n".join(lines)


async def run_fault(
    fault: Fault,
    servers: Servers,
    workdir: Path,
    timing: Timing = SHORT,
    shape: Shape | None = None,
) -> FaultReport:
    """Run the workload on a fresh database and stream, inject ``fault``, check the history."""
    database_url = await servers.new_database()
    settings = run_settings(
        database_url,
        servers.nats.url,
        fanout_batch=16,
        # Shorter than the defaults (10 s, 5 s), so that a run sees a key's lease
        # taken over and a lost publish retried within seconds.
        idempotency_lease=2.0,
        request_timeout=2.0,
        # Partition leases fenced within the run's seconds, not after the default 10 s.
        **{"fanout_lease_ttl": LEASE_TTL, **fault.settings},
    )
    cluster = Cluster(
        servers, settings, workdir / fault.name, fault.gateways, fault.fanouts, fault.proxied
    )
    run = uuid.uuid4().hex[:6]
    shape = shape or Shape()
    workload = Workload(run, [], shape)
    repairs: list[float] = []
    problems: list[str] = []
    try:
        await cluster.start()
        workload.gateways = cluster.gateway_urls
        async with session(shape.poll_timeout + 10, connect_timeout=5) as http:
            await workload.setup(http)
            workload.listen()
            stop = asyncio.Event()
            sending = asyncio.create_task(workload.send_until(stop))
            try:
                for _ in range(timing.cycles):
                    await _traffic(timing.before, sending)
                    await fault.inject(cluster, workload)
                    await _traffic(fault.during or timing.during, sending)
                    repairs.append(time.monotonic())
                    await fault.repair(cluster, workload)
                await _traffic(timing.after, sending)
            finally:
                stop.set()
                await sending
            if not await workload.drain(timing.drain):
                problems.append(f"deliveries still missing after {timing.drain:g} s")
        problems.extend(exited(cluster))
    finally:
        await workload.close()
        await cluster.close()
    problems.extend(f"logged an error: {line[:300]}" for line in cluster.log_lines("error")[:10])
    if workload.statuses.get("500"):
        problems.append(f"{workload.statuses['500']} answers were 500: a bug, not a fault")
    verdict = workload.verdict()
    problems.extend(verdict.problems)
    counts = outcomes(workload.ops)
    unknown_keys = {op.key for op in workload.ops if op.outcome == "unknown"}
    delivered = set().union(*(r.ids for r in workload.receivers.values()))
    recoveries = [recovery(workload, at) for at in repairs]
    return FaultReport(
        fault=fault.name,
        sends=len(workload.ops),
        acked=counts["acked"],
        failed=counts["failed"],
        unknown=counts["unknown"],
        unknown_delivered=len(unknown_keys & delivered),
        lost=verdict.lost,
        duplicated=verdict.duplicated,
        out_of_order=verdict.out_of_order,
        recovery=_slowest(recoveries),
        problems=problems,
        statuses=dict(workload.statuses),
        send_seconds=_answer_times(workload),
        slowest_delivery=_slowest_delivery(workload),
    )


def _answer_times(workload: Workload) -> tuple[float, float]:
    took = sorted(
        op.answered - op.started
        for op in workload.ops
        if op.outcome == "acked" and op.answered is not None
    )
    return (took[len(took) // 2], took[-1]) if took else (0.0, 0.0)


def _slowest_delivery(workload: Workload) -> float:
    took = [
        done - op.answered
        for op in workload.ops
        if op.outcome == "acked"
        and op.answered is not None
        and (done := workload.delivered_at(op)) is not None
    ]
    return max(0.0, *took) if took else 0.0


def _slowest(recoveries: list[float | None]) -> float | None:
    found = [r for r in recoveries if r is not None]
    if not found or len(found) < len(recoveries):
        return None
    return max(found)


async def _traffic(seconds: float, sending: asyncio.Task[None]) -> None:
    """Let the workload run for ``seconds``; a sender that failed ends the run."""
    await asyncio.wait({sending}, timeout=seconds)
    if sending.done():
        sending.result()
        raise RuntimeError("the senders stopped before the run did")


def exited(cluster: Cluster) -> list[str]:
    """Services that exited on their own during the run."""
    return [
        f"{s.label} exited on its own with code {s.process.returncode}"
        for s in cluster.services.values()
        if s.process is not None and s.process.returncode is not None
    ]


def table(reports: Sequence[FaultReport]) -> str:
    """The fault table: one row per run."""
    header = (
        "fault",
        "sent",
        "acked",
        "unknown",
        "lost",
        "duplicated",
        "recovery",
        "slowest delivery",
    )
    rows = [
        (
            r.fault,
            str(r.sends),
            str(r.acked),
            f"{r.unknown} ({r.unknown_delivered} delivered)",
            str(r.lost),
            str(r.duplicated),
            "never" if r.recovery is None else f"{r.recovery:.2f} s",
            f"{r.slowest_delivery:.2f} s",
        )
        for r in reports
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        for row in (header, *rows)
    ]
    return "\n".join(line.rstrip() for line in lines)
