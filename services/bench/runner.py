"""Runs the scenarios against a running system, and ``chinwag bench`` around them.

``run_scenarios`` needs only URLs: the gateway's, PostgreSQL's and NATS's.
``bench`` starts the system the way ``chinwag up`` does (embedded servers in a
temporary data directory unless ``CHINWAG_DATABASE_URL`` / ``CHINWAG_NATS_URL``
are set, then ``services.up.up`` with every service a process of its own).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import asyncpg
import nats.errors
import psutil
from pydantic import SecretStr

from libs import lifecycle
from libs.embedded import EmbeddedServerError, free_port
from libs.settings import Settings
from services.bench import report as reporting
from services.bench.bigroom import big_room
from services.bench.ceilings import ceilings
from services.bench.checks import DeliveryError
from services.bench.client import Api, BenchError, Member
from services.bench.idle import idle
from services.bench.load import Load, fanout_only, latency, throughput
from services.bench.options import Sizes, sizes_from
from services.bench.procs import Sampler
from services.bench.room import Room, settled
from services.bench.seed import last_seqs, population

Say = Callable[[str], None]
T = TypeVar("T")

# What a scenario may fail with; anything else is a bug in the harness and propagates.
_FAILURES = (
    BenchError,
    DeliveryError,
    asyncpg.PostgresError,
    aiohttp.ClientError,
    nats.errors.Error,
    OSError,
    TimeoutError,
)

_REPORTED_SETTINGS = ("partitions", "fanout_batch", "db_pool_size", "command_rate", "command_burst")

# The benchmark measures the pipeline, not the per-client command rate limit.
_UNLIMITED = {"command_rate": 1e9, "command_burst": 10**9}


@dataclass(frozen=True)
class Target:
    """A running chinwag and how to reach its parts."""

    base_url: str
    database_url: str
    nats_url: str
    settings: Settings
    own_role: str = "loadgen"  # how this process is reported
    gateway_role: str = "gateway"  # the process role whose RSS is the gateway's


def _say(text: str) -> None:
    print(f"bench | {text}", flush=True)


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }


def _all_ok(scenarios: dict[str, Any]) -> bool:
    """Whether every scenario (and nested phase) completed and passed its checks."""
    for data in scenarios.values():
        for part in (data, data.get("fanout_only")):
            if part is None:
                continue
            if "error" in part or not part.get("checks", {"ok": True}).get("ok"):
                return False
    return True


@dataclass
class _Run:
    """One run of the chosen scenarios, in order, against one target."""

    target: Target
    sizes: Sizes
    api: Api
    pool: asyncpg.Pool[Any]
    say: Say
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    scenarios: dict[str, Any] = field(default_factory=dict)
    sampler: Sampler = field(init=False)

    def __post_init__(self) -> None:
        self.sampler = Sampler(own_role=self.target.own_role)

    async def scenario(self, name: str, work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        """Run one scenario; a failure is recorded as its result, not raised."""
        lifecycle.started()  # its own collections would stall what it measures
        start = time.monotonic()
        try:
            result = await work
        except _FAILURES as error:
            result = {"error": f"{type(error).__name__}: {error}"}
            self.say(f"{name}: FAILED: {result['error']}")
            return result
        checks = result.get("checks", {"ok": True})
        outcome = "checks ok" if checks.get("ok") else f"CHECKS FAILED: {checks.get('problems')}"
        self.say(f"{name}: done in {time.monotonic() - start:.1f} s, {outcome}")
        return result

    async def prepare(self, what: str, work: Awaitable[T], needed_by: set[str]) -> T | None:
        """Make what scenarios need; on failure, those scenarios fail with the reason."""
        try:
            return await work
        except _FAILURES as error:
            reason = f"{what}: {type(error).__name__}: {error}"
            self.say(f"FAILED {reason}")
            for name in needed_by & set(self.sizes.scenarios):
                self.scenarios[name] = {"error": reason}
            return None

    async def all(self) -> None:
        sizes, chosen = self.sizes, set(self.sizes.scenarios)
        room: Room | None = None
        if chosen & {"latency", "throughput", "ceilings"}:
            self.say(f"making a room of {sizes.members} members through the API")
            room = await self.prepare(
                "making the room",
                Room.open(self.api, self.run, sizes.members, sizes.senders),
                {"latency", "throughput", "ceilings"},
            )
        if room is not None:
            await self.room_scenarios(room, chosen)
        people: list[Member] = []
        if chosen & {"bigroom", "idle"}:
            count = max(
                sizes.big_room if "bigroom" in chosen else 0, sizes.idle if "idle" in chosen else 0
            )
            made = await self.prepare(
                f"making {count} sessions",
                self.population(count),
                {"bigroom", "idle"},
            )
            if made is not None:
                people, founder = made
                await self.crowd_scenarios(people, founder, chosen)
        if "ceilings" in chosen and room is not None:
            self.say("ceilings: PostgreSQL, JetStream, bare ASGI")
            await last_seqs(self.pool, room.members)  # the empty poll reads from the end
            waited = await settled(self.pool, sizes.drain_timeout)
            self.scenarios["ceilings"] = await self.scenario(
                "ceilings",
                ceilings(
                    self.api,
                    self.target.database_url,
                    self.target.nats_url,
                    room.members,
                    self.sampler,
                    sizes.ceiling_duration,
                    sizes.http_concurrency,
                ),
            )
            self.scenarios["ceilings"]["settled_s"] = waited

    async def room_scenarios(self, room: Room, chosen: set[str]) -> None:
        sizes = self.sizes
        load = Load(room, self.pool, self.sampler, sizes, self.run)
        if "latency" in chosen:
            self.say(
                f"latency: {sizes.members} members, {sizes.rate:g} sends/s for {sizes.duration:g} s"
            )
            self.scenarios["latency"] = await self.scenario("latency", latency(load))
        if "throughput" in chosen:
            self.say(f"throughput: {sizes.senders} senders flat out for {sizes.duration:g} s")
            result = await self.scenario("throughput", throughput(load))
            waited = await settled(self.pool, sizes.drain_timeout)
            self.say(f"throughput: {sizes.fanout_events} events straight into the stream")
            result["fanout_only"] = await self.scenario(
                "fanout_only", fanout_only(load, self.target.settings, self.target.nats_url)
            )
            result["fanout_only"]["settled_s"] = waited
            self.scenarios["throughput"] = result

    async def population(self, count: int) -> tuple[list[Member], Member]:
        people, took = await population(self.api, self.pool, self.run, count, self.sizes.seed)
        self.say(f"{count} sessions made ({self.sizes.seed}) in {took:.1f} s")
        return people, await self.api.create_session(f"f{self.run}")

    def _made(self, result: dict[str, Any]) -> dict[str, Any]:
        """Say how the crowd was made (it is not what a user would have done)."""
        if "error" not in result:
            result["sessions_made_by"] = "POST /session" if self.sizes.seed == "api" else "bulk SQL"
            result["membership_made_by"] = "bulk SQL after a real JOIN by the founder"
        return result

    async def crowd_scenarios(
        self, people: list[Member], founder: Member, chosen: set[str]
    ) -> None:
        sizes = self.sizes
        if "bigroom" in chosen:
            self.say(f"big room: one message to {sizes.big_room} members")
            self.scenarios["bigroom"] = self._made(
                await self.scenario(
                    "bigroom",
                    big_room(
                        self.api,
                        self.pool,
                        self.sampler,
                        self.run,
                        founder,
                        people[: sizes.big_room],
                        sizes.sampled,
                    ),
                )
            )
        if "idle" in chosen:
            self.say(f"idle: {sizes.idle} long-polls on one gateway")
            self.scenarios["idle"] = self._made(
                await self.scenario(
                    "idle",
                    idle(
                        self.api,
                        self.pool,
                        self.sampler,
                        self.target.gateway_role,
                        self.run,
                        founder,
                        people[: sizes.idle],
                        sizes.idle_procs,
                    ),
                )
            )


async def run_scenarios(target: Target, sizes: Sizes, say: Say = _say) -> reporting.Report:
    """Run the chosen scenarios in order; the report (``ok`` is False on any failure)."""
    report: reporting.Report = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "sizes": sizes.as_dict(),
        "target": {"base_url": target.base_url},
        "settings": {name: getattr(target.settings, name, None) for name in _REPORTED_SETTINGS},
    }
    pool = await asyncpg.create_pool(target.database_url, min_size=1, max_size=4)
    assert pool is not None
    try:
        async with Api.open(target.base_url) as api:
            await api.wait_ready()
            run = _Run(target, sizes, api, pool, say)
            await run.all()
            report["client"] = {"poll_retries": api.poll_retries}
    finally:
        await pool.close()
    report["run"] = run.run
    report["scenarios"] = run.scenarios
    report["ratios"] = reporting.ratios(run.scenarios)
    report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report["ok"] = _all_ok(run.scenarios)
    return report


def bench_settings(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with the per-client command limit lifted and quiet services."""
    update: dict[str, Any] = {
        k: v for k, v in _UNLIMITED.items() if k in type(settings).model_fields
    }
    update["log_level"] = "warning"
    return settings.model_copy(update={**update, **changes})


async def bench(settings: Settings, args: argparse.Namespace) -> int:
    """``chinwag bench``: start the system, run the scenarios, print and write the report."""
    try:
        sizes = sizes_from(args)
    except ValueError as error:
        print(f"chinwag bench: {error}", file=sys.stderr)
        return 2
    from services import up as composing

    port = args.port or free_port()
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="chinwag-bench-")) if temporary else args.data_dir
    try:
        async with AsyncExitStack() as stack:
            console = composing._Console(["bench"])
            try:
                database_url, nats_url = await composing._backends(
                    settings, data_dir, stack, console
                )
            except (EmbeddedServerError, OSError) as error:
                print(f"chinwag bench: {error}", file=sys.stderr)
                return 1
            settings = bench_settings(
                settings, database_url=SecretStr(database_url), nats_url=nats_url, http_port=port
            )
            stop = asyncio.Event()
            system = asyncio.create_task(composing.up(settings, data_dir, port, {}, stop))
            try:
                target = Target(f"http://127.0.0.1:{port}", database_url, nats_url, settings)
                work = asyncio.create_task(run_scenarios(target, sizes))
                await asyncio.wait({system, work}, return_when=asyncio.FIRST_COMPLETED)
                if not work.done():
                    work.cancel()
                    await asyncio.gather(work, return_exceptions=True)
                    print("chinwag bench: the system stopped before the end", file=sys.stderr)
                    return 1
                result = work.result()
            except BenchError as error:
                print(f"chinwag bench: {error}", file=sys.stderr)
                return 1
            finally:
                stop.set()
                await system
    finally:
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
    result["command"] = shlex.join(["chinwag", *sys.argv[1:]])
    print()
    print(reporting.table(result))
    reporting.write(result, args.out)
    print(f"\nresults written to {args.out}")
    return 0 if result["ok"] else 1
