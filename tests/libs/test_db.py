"""The migration runner against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from libs import db
from libs.db import migrate, migrations, pending_migrations
from tests.conftest import _url_for
from tests.infra import Infra


@pytest.fixture
async def empty_database(infra: Infra) -> AsyncIterator[str]:
    name = f"empty_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(infra.postgres_url)
    await conn.execute(f"CREATE DATABASE {name}")
    await conn.close()
    yield _url_for(infra.postgres_url, name)
    conn = await asyncpg.connect(infra.postgres_url)
    await conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
    await conn.close()


def test_migration_files_are_numbered_without_gaps() -> None:
    found = migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1))


async def test_concurrent_starters_apply_each_migration_once(empty_database: str) -> None:
    results = await asyncio.gather(*(migrate(empty_database) for _ in range(4)))
    applied = [name for result in results for name in result]
    assert sorted(applied) == sorted(f"{m.version:04d}_{m.name}" for m in migrations())
    assert await migrate(empty_database) == []
    conn = await asyncpg.connect(empty_database)
    try:
        assert await pending_migrations(conn) == []
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == [m.version for m in migrations()]
    finally:
        await conn.close()


def test_a_statement_s_own_failure_is_not_taken_for_a_store_that_is_down() -> None:
    down = [
        ConnectionRefusedError(),
        TimeoutError(),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        # slow or stopped, not wrong: parking the event would lose it
        asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.exceptions.ClientConfigurationError("unsupported sslmode"),
        asyncpg.exceptions.UnsupportedServerFeatureError("server does not support it"),
    ]
    own = [
        asyncpg.exceptions._base.DataError("invalid input for query argument $1"),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        ValueError("not a database error"),
    ]
    assert [db.store_down(e) for e in down] == [True] * len(down)
    assert [db.store_down(e) for e in own] == [False] * len(own)
