"""The benchmark harness at tiny sizes, so that it cannot rot: it runs, checks, reports.

Nothing about timing is asserted: only that every scenario completes, every
delivery check passes and the report carries every figure.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from pathlib import Path

from services.bench.options import Sizes
from services.bench.report import figures, table, write
from services.bench.runner import Target, bench_settings, run_scenarios
from tests import harness
from tests.harness import open_system
from tests.infra import Infra

TINY = Sizes(
    members=3,
    senders=2,
    rate=20.0,
    duration=0.5,
    fanout_events=20,
    big_room=20,
    sampled=5,
    idle=50,
    idle_procs=1,
    ceiling_duration=0.2,
    http_concurrency=4,
    poll_timeout=5.0,
    drain_timeout=15.0,
)


async def test_every_scenario_runs_and_every_delivery_checks_out(
    infra: Infra, database_url: str, tmp_path: Path
) -> None:
    settings = bench_settings(harness.test_settings(infra.nats_url, database_url))
    async with AsyncExitStack() as stack:
        system = await open_system(stack, settings)
        target = Target(
            base_url=system.base_url,
            database_url=database_url,
            nats_url=infra.nats_url,
            settings=settings,
            own_role="loadgen+services",  # the services run in this process here
            gateway_role="loadgen+services",
        )
        report = await run_scenarios(target, TINY, say=lambda _: None)

    failures = {
        name: data.get("error") or data.get("checks")
        for name, data in report["scenarios"].items()
        if "error" in data or not data.get("checks", {}).get("ok", True)
    }
    assert not failures, failures
    assert report["ok"], table(report)
    assert set(report["scenarios"]) == set(TINY.scenarios)
    assert report["scenarios"]["throughput"]["fanout_only"]["checks"]["ok"]

    found = figures(report)
    missing = [path for path, value in found.items() if value is None]
    assert not missing, missing
    assert len(found) >= 30

    out = tmp_path / "bench.json"
    write(report, out)
    assert json.loads(out.read_text())["ok"] is True
    assert "throughput" in table(report)
