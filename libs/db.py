"""PostgreSQL: the connection pool and the migration runner."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import asyncpg.pool
import msgspec
import structlog

from libs.settings import Settings

log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    # A connection, whether held directly or borrowed from a pool.
    Conn: TypeAlias = asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]
else:
    Conn = Any

# Any constant will do; it only has to be the same for every starter.
_MIGRATION_LOCK = 0x63686E77  # "chnw"
_MIGRATION_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")

_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.decode


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name,
            schema="pg_catalog",
            encoder=lambda v: _json_encode(v).decode(),
            decoder=_json_decode,
        )


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    """Release without asyncpg's reset query (a round trip per release).

    asyncpg still rolls back a transaction left open. Nothing run on a pooled
    connection leaves session state behind (no SET, LISTEN, cursors or
    session-level advisory locks; ``pg_advisory_xact_lock`` ends with its
    transaction): code that needs session state takes a connection of its own.
    """


async def create_pool(
    dsn: str, size: int = 10, name: str | None = None, synchronous_commit: str | None = None
) -> asyncpg.Pool[Any]:
    """A pool whose connections encode and decode json/jsonb with msgspec.

    ``name`` becomes the connections' ``application_name`` (pg_stat_activity
    shows which service holds what); ``synchronous_commit`` is set on each
    connection, so it applies to an external server as to the embedded one.
    """
    server_settings = {}
    if name:
        server_settings["application_name"] = name
    if synchronous_commit:
        server_settings["synchronous_commit"] = synchronous_commit
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=size,
        init=_init_connection,
        reset=_keep_session,
        command_timeout=60,
        server_settings=server_settings,
    )
    assert pool is not None
    return pool


async def service_pool(settings: Settings, service: str) -> asyncpg.Pool[Any]:
    """The pool of one chinwag service, as its settings say."""
    return await create_pool(
        settings.dsn(),
        settings.db_pool_size,
        name=f"chinwag-{service}",
        synchronous_commit=settings.database_synchronous_commit,
    )


# Failures of the server or of the connection, not of the statement: they say
# nothing about the data, and retrying later will do.
TRANSIENT: tuple[type[Exception], ...] = (
    OSError,  # TimeoutError and refused connections among them
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # a connection left in a broken state
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up, cancelled
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections …
    asyncpg.exceptions.TransactionRollbackError,  # serialization failure, deadlock
)


def store_down(error: BaseException) -> bool:
    """Whether ``error`` says the database is unreachable, busy or slow, so that the
    same statement may well pass later. One of ``TRANSIENT``'s classes is a
    statement's own doing: a value the client could not encode (asyncpg's
    client-side ``DataError``); retried as it is, it fails for ever. A statement
    cancelled by a timeout or an operator, or a client the server will not
    serve, says nothing about the data: a consumer that takes such an error
    for the event's fault would park (skip) an event that was never wrong."""
    return isinstance(error, TRANSIENT) and not isinstance(
        error, asyncpg.exceptions._base.DataError
    )


# Anything a query can fail with: the statement's fault, or the connection's.
ERRORS: tuple[type[Exception], ...] = (asyncpg.PostgresError, *TRANSIENT)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The numbered SQL files shipped in ``libs/migrations``, in order."""
    found = []
    for entry in resources.files("libs.migrations").iterdir():
        match = _MIGRATION_FILE.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers: {versions}")
    return found


async def applied_versions(conn: asyncpg.Connection[Any]) -> set[int]:
    """Versions recorded in ``schema_migrations`` (empty when it does not exist yet)."""
    exists = await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
    if not exists:
        return set()
    rows = await conn.fetch("SELECT version FROM public.schema_migrations")
    return {r["version"] for r in rows}


async def pending_migrations(conn: asyncpg.Connection[Any]) -> list[Migration]:
    """Migrations not yet applied to this database."""
    done = await applied_versions(conn)
    return [m for m in migrations() if m.version not in done]


async def migrate(dsn: str) -> list[str]:
    """Apply pending migrations, one transaction per file, under an advisory lock.

    Safe to run from several processes at once: the lock serialises them and
    each re-reads what is applied once it holds the lock. Returns the names
    of the migrations this call applied.
    """
    conn: asyncpg.Connection[Any] = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS public.schema_migrations (
                       version    integer PRIMARY KEY,
                       name       text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            for migration in await pending_migrations(conn):
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO public.schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                label = f"{migration.version:04d}_{migration.name}"
                log.info("migration applied", migration=label)
                applied.append(label)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    finally:
        await conn.close()
    return applied
