"""``chinwag soak``: the fault runs at length, a memory soak, and what durability costs.

- faults: every fault of ``faults.FAULTS`` in its long form (several cycles),
  printed as a table: sends, acknowledged, unknown, lost, duplicated, recovery.
- memory: the checked workload plus churn (sessions coming and going, every
  kind of command) for ``--minutes``, the RSS of every process sampled; each
  service's RSS at the end must stay within ``MEMORY_BOUND`` of what it was
  once warmed up, with no error answered or logged.
- durability: the same closed-loop send load with each choice of NATS
  ``sync_interval`` and PostgreSQL ``synchronous_commit``, on fresh servers
  with fsync on, in one run; the send rates as ratios to the defaults.

Everything runs on embedded servers in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from libs.settings import Settings
from services.bench.churn import Churn
from services.bench.client import Api, session
from services.bench.cluster import Cluster, Servers, run_settings
from services.bench.faults import (
    FAULTS,
    LONG,
    FaultReport,
    exited,
    fault_named,
    run_fault,
    table,
)
from services.bench.options import SOAK_PARTS as PARTS
from services.bench.procs import Sampler
from services.bench.workload import Shape, Workload
from services.up import SERVICES

SERVERS = ("nats-server", "postgres")
SAMPLE_EVERY = 1.0  # seconds between RSS samples
# A service's RSS may grow this much past its warmed-up size (MiB, and as a share).
MEMORY_BOUND = (24.0, 0.15)
DURABILITY = (  # (sync_interval, synchronous_commit); the first is the default
    ("default", "on"),
    ("default", "off"),
    ("always", "on"),
    ("always", "off"),
)


def say(text: str) -> None:
    print(text, flush=True)


async def soak(args: argparse.Namespace) -> int:
    """Run the chosen parts; 0 when every check held."""
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        say(f"chinwag soak: unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
        return 2
    base = Path(tempfile.mkdtemp(prefix="chinwag-soak-"))
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    ok = True
    try:
        if "faults" in parts:
            names = [f.name for f in FAULTS] if args.faults == "all" else args.faults.split(",")
            reports = await fault_table(base, [n.strip() for n in names])
            results["faults"] = [asdict(r) for r in reports]
            ok &= all(r.ok for r in reports)
        if "memory" in parts:
            memory = await memory_soak(base, args.minutes)
            results["memory"] = asdict(memory)
            ok &= memory.ok
        if "durability" in parts:
            costs = await durability(base, args.seconds, args.rounds)
            results["durability"] = costs
    finally:
        shutil.rmtree(base, ignore_errors=True)
    args.out.write_text(json.dumps(results, indent=2))
    say(f"results written to {args.out}; {'all checks held' if ok else 'CHECKS FAILED'}")
    return 0 if ok else 1


async def fault_table(base: Path, names: list[str]) -> list[FaultReport]:
    """Every fault in its long form, on one pair of servers; prints the table."""
    servers = Servers.embedded(base / "fault-servers", Settings(), fast=True)
    await servers.start()
    reports = []
    try:
        for name in names:
            fault = fault_named(name)
            say(f"fault {name}: {fault.what} ({LONG.cycles} times)")
            report = await run_fault(fault, servers, base / "faults", LONG)
            say("  " + report.describe().replace("\n", "\n  "))
            reports.append(report)
    finally:
        await servers.stop()
    say("")
    say(table(reports))
    say("")
    return reports


@dataclass
class Memory:
    """What the memory soak found."""

    minutes: float
    samples: dict[str, list[float]]  # role → RSS in MiB, every SAMPLE_EVERY seconds
    growth: dict[str, float]  # service → MiB from warmed up to the end
    sends: int
    churn_cycles: int
    churn_requests: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def memory_soak(base: Path, minutes: float) -> Memory:
    """The workload and churn for ``minutes``, RSS sampled; growth and errors checked."""
    servers = Servers.embedded(base / "memory-servers", Settings(), fast=True)
    await servers.start()
    sampler = Sampler()
    samples: dict[str, list[float]] = {role: [] for role in (*SERVICES, *SERVERS)}
    problems: list[str] = []
    try:
        settings = run_settings(await servers.new_database(), servers.nats.url, log_level="warning")
        cluster = Cluster(servers, settings, base / "memory")
        await cluster.start()
        run = uuid.uuid4().hex[:6]
        shape = Shape(interval=0.05)
        workload = Workload(run, cluster.gateway_urls, shape)
        try:
            async with session(shape.poll_timeout + 10, connect_timeout=5) as http:
                await workload.setup(http)
                workload.listen()
                churn = Churn(run, Api(cluster.gateway_urls[0], http))
                stop = asyncio.Event()
                load = asyncio.gather(workload.send_until(stop), churn.run_until(stop))
                say(f"memory soak: {minutes:g} minutes of checked sends and churn")
                end = time.monotonic() + minutes * 60
                while time.monotonic() < end:
                    rss = sampler.rss_by_role()  # one listing of the processes per sample
                    for role in samples:
                        samples[role].append(round(rss.get(role, 0) / 2**20, 1))
                    await asyncio.wait({load}, timeout=SAMPLE_EVERY)
                    if load.done():
                        load.result()
                        problems.append("the load stopped early")
                        break
                stop.set()
                await load
                if not await workload.drain(60.0):
                    problems.append("deliveries still missing after 60 s")
            verdict = workload.verdict()
            problems.extend(verdict.problems)
            problems.extend(f"churn: {n} x {what}" for what, n in churn.failures.items())
            if workload.statuses:
                problems.append(f"sends not answered 200: {dict(workload.statuses)}")
            problems.extend(exited(cluster))
        finally:
            await workload.close()
            await cluster.close()
        problems.extend(
            f"logged an error: {line[:300]}" for line in cluster.log_lines("error")[:10]
        )
    finally:
        await servers.stop()
    growth = {}
    for role in SERVICES:
        found = _growth(samples[role])
        if found is None:
            continue
        baseline, growth[role] = found
        allowed = max(MEMORY_BOUND[0], baseline * MEMORY_BOUND[1])
        if growth[role] > allowed:
            problems.append(
                f"{role} grew {growth[role]} MiB after warming up (bound {allowed:.0f} MiB)"
            )
    memory = Memory(
        minutes, samples, growth, len(workload.ops), churn.cycles, churn.requests, problems
    )
    say(memory_table(memory))
    return memory


def _growth(series: list[float]) -> tuple[float, float] | None:
    """A process's warmed-up RSS and how much it grew by the end, in MiB.

    Each is the least RSS over its window (the second quarter of the run, and
    the last quarter), so a passing spike (a password hash takes 64 MiB for a
    moment) is not taken for growth, while memory that stays is.
    """
    quarter = len(series) // 4
    if quarter < 1:
        return None
    baseline = min(series[quarter : 2 * quarter])
    return baseline, round(min(series[-quarter:]) - baseline, 1)


def memory_table(memory: Memory) -> str:
    rows = [("process", "warm MiB", "end MiB", "peak MiB", "growth MiB")]
    for role, series in memory.samples.items():
        found = _growth(series)
        if found is None:
            continue
        baseline, growth = found
        rows.append(
            (
                role,
                f"{baseline:.0f}",
                f"{baseline + growth:.0f}",
                f"{max(series):.0f}",
                f"{growth:+.1f}" if role in memory.growth else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append(
        f"{memory.sends} checked sends, {memory.churn_cycles} churn cycles "
        f"({memory.churn_requests} requests); "
        + ("no problem" if memory.ok else "; ".join(memory.problems[:10]))
    )
    return "\n".join(lines)


async def durability(base: Path, seconds: float, rounds: int) -> dict[str, Any]:
    """Acknowledged sends per second with each durability choice; ratios to the default."""
    rates: dict[str, list[float]] = {_label(*choice): [] for choice in DURABILITY}
    for round_ in range(rounds):
        for sync_interval, commit in DURABILITY:
            label = _label(sync_interval, commit)
            rate = await _send_rate(
                base / f"durability-{round_}-{label}", sync_interval, commit, seconds
            )
            rates[label].append(rate)
            say(f"durability {label}: {rate:.0f} acknowledged sends/s")
    default = statistics.median(rates[_label(*DURABILITY[0])])
    summary = {
        label: {
            "sends_per_s": [round(r, 1) for r in found],
            "median": round(statistics.median(found), 1),
            "ratio_to_default": round(statistics.median(found) / default, 2) if default else None,
        }
        for label, found in rates.items()
    }
    say("")
    say("sync_interval / synchronous_commit   sends/s (median)   ratio to the default")
    for label, found in summary.items():
        say(f"{label:<37}{found['median']:>9.0f}          {found['ratio_to_default']:.2f}")
    return summary


def _label(sync_interval: str, commit: str) -> str:
    return f"{sync_interval} / {commit}"


async def _send_rate(base: Path, sync_interval: str, commit: str, seconds: float) -> float:
    """Acknowledged sends per second from 16 closed-loop senders, on fresh durable servers."""
    choice = Settings(nats_sync_interval=sync_interval, database_synchronous_commit=commit)
    servers = Servers.embedded(base, choice)
    await servers.start()
    try:
        settings = run_settings(
            await servers.new_database(),
            servers.nats.url,
            nats_sync_interval=sync_interval,
            database_synchronous_commit=commit,
            log_level="warning",
        )
        cluster = Cluster(servers, settings, base / "services")
        await cluster.start()
        shape = Shape(users=16, two_clients=0, channels=1, interval=0.0)
        workload = Workload(uuid.uuid4().hex[:6], cluster.gateway_urls, shape)
        try:
            async with session(30) as http:
                await workload.setup(http)
                workload.listen()
                stop = asyncio.Event()
                sending = asyncio.create_task(workload.send_until(stop))
                await asyncio.wait({sending}, timeout=2.0)  # warm up
                start = time.monotonic()
                await asyncio.wait({sending}, timeout=seconds)
                end = time.monotonic()
                stop.set()
                await sending
                await workload.drain(60.0)
        finally:
            await cluster.close()
        done = [
            op
            for op in workload.ops
            if op.outcome == "acked" and op.answered is not None and start <= op.answered < end
        ]
        if not workload.verdict().ok:
            raise RuntimeError(f"durability run {sync_interval}/{commit}: delivery check failed")
        return len(done) / (end - start)
    finally:
        await servers.stop()
