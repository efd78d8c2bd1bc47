"""A nats-server and a PostgreSQL of the fault runs' own: the runs kill and restart them.

They and the runs' logs live outside pytest's basetemp: another pytest run on
the machine may prune old basetemps while this session still uses them.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.settings import Settings
from services.bench.cluster import Servers


@pytest.fixture(scope="session")
def fault_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="chinwag-faults-", ignore_cleanup_errors=True) as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def servers(fault_dir: Path) -> Iterator[Servers]:
    found = Servers.embedded(fault_dir / "servers", Settings(), fast=True)
    found.nats.start()
    try:
        found.postgres.start()
        yield found
    finally:
        found.postgres.stop()
        found.nats.stop()


@pytest.fixture
def workdir(fault_dir: Path) -> Path:
    """Where one run's services log."""
    return fault_dir / uuid.uuid4().hex[:8]
