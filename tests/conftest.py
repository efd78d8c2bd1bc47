"""Fixtures: real NATS and PostgreSQL for the session, a fresh database per test."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import pytest
from hypothesis import settings

from libs.db import migrate
from tests.harness import System, open_system, test_settings
from tests.infra import Infra, provide

# Property tests draw the same examples on every run: a failure reproduces, and the
# suite's time does not wander.
settings.register_profile("chinwag", derandomize=True, database=None, deadline=None)
settings.load_profile("chinwag")

TEMPLATE = "chinwag_template"


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    # Not under pytest's basetemp: another pytest run on the machine may prune old
    # basetemps while this session's servers still keep their data there.
    with tempfile.TemporaryDirectory(prefix="chinwag-test-", ignore_cleanup_errors=True) as tmp:
        base = Path(os.environ.get("CHINWAG_TEST_DIR") or tmp)
        with provide(base) as found:
            asyncio.run(_make_template(found.postgres_url))
            yield found


def _url_for(admin_url: str, database: str) -> str:
    head, _, tail = admin_url.rpartition("/")
    query = ""
    if "?" in tail:
        tail, query = tail.split("?", 1)
        query = "?" + query
    return f"{head}/{database}{query}"


async def _make_template(admin_url: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await conn.close()
    await migrate(_url_for(admin_url, TEMPLATE))


@pytest.fixture
async def database_url(infra: Infra) -> AsyncIterator[str]:
    """A database of its own for one test, already migrated."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(infra.postgres_url)
    try:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await conn.close()
    yield _url_for(infra.postgres_url, name)
    conn = await asyncpg.connect(infra.postgres_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


@pytest.fixture
async def system(infra: Infra, database_url: str) -> AsyncIterator[System]:
    """All four services running in-process against the real NATS and PostgreSQL."""
    async with AsyncExitStack() as stack:
        yield await open_system(stack, test_settings(infra.nats_url, database_url))
