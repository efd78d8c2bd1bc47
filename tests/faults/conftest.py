"""A nats-server and a PostgreSQL of the fault runs' own: the runs kill and restart them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from libs.settings import Settings
from services.bench.cluster import Servers


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    found = Servers.embedded(Path(tmp_path_factory.mktemp("fault-servers")), Settings(), fast=True)
    found.nats.start()
    try:
        found.postgres.start()
        yield found
    finally:
        found.postgres.stop()
        found.nats.stop()
