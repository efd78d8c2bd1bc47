"""Each fault against chinwag's real processes under the workload: nothing lost, nothing twice.

The short form of the runs ``chinwag soak`` makes longer; the history of every
run is checked by ``services.bench.checks.check_history``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.bench.cluster import Servers
from services.bench.faults import FAULTS, SHORT, Fault, run_fault


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_a_fault_loses_and_repeats_nothing(
    fault: Fault, servers: Servers, workdir: Path
) -> None:
    report = await run_fault(fault, servers, workdir, SHORT)
    print(report.describe())
    assert report.acked > 0
    assert (report.lost, report.duplicated) == (0, 0), report.describe()
    assert report.ok, report.describe()
