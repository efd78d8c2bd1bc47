"""``chinwag doctor``: a healthy system passes; each broken component fails with its fix."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from libs import bus
from libs.db import migrate, migrations
from libs.embedded import free_port, nats_server_binary
from libs.settings import Settings
from services import doctor
from services.doctor import Check
from services.up import settings_env
from tests import harness
from tests.harness import System, until
from tests.infra import Infra

ROOT = Path(__file__).resolve().parents[1]
NAMES = [
    "config",
    "database",
    "migrations",
    "clock",
    "nats",
    "jetstream",
    "stream",
    "consumers",
    "partitions",
]


def by_name(checks: list[Check]) -> dict[str, Check]:
    assert [c.name for c in checks] == NAMES
    return {c.name: c for c in checks}


async def test_a_healthy_system_passes_every_check_also_from_the_command_line(
    system: System,
) -> None:
    checks: list[Check] = []

    async def consumers_created() -> bool:
        checks[:] = await doctor.diagnose(system.settings)
        return by_name(checks)["consumers"].status == "ok"

    await until(consumers_created, 20, "fanout's consumers")
    assert {c.name: c.status for c in checks} == dict.fromkeys(NAMES, "ok"), checks
    assert not doctor.failed(checks)
    assert all(c.fix is None for c in checks)
    assert "fanout-0 … fanout-3 present" in by_name(checks)["consumers"].detail

    env = {k: v for k, v in os.environ.items() if not k.startswith("CHINWAG_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "doctor",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        env={**env, **settings_env(system.settings)},
        cwd=ROOT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, out.decode()
    report = json.loads(out)
    assert report["ok"] is True
    assert [(c["name"], c["status"]) for c in report["checks"]] == [(n, "ok") for n in NAMES]
    assert set(report["checks"][0]) == {"name", "status", "detail", "fix"}


async def test_a_wrong_database_url_fails_with_its_fix(infra: Infra) -> None:
    secret = uuid.uuid4().hex
    url = f"postgresql://chinwag:{secret}@127.0.0.1:{free_port()}/chinwag"
    checks = by_name(await doctor.diagnose(harness.test_settings(infra.nats_url, url), timeout=2))
    database = checks["database"]
    assert database.status == "fail"
    assert "connection refused" in database.detail
    assert database.fix is not None and "CHINWAG_DATABASE_URL" in database.fix
    assert checks["migrations"].status == checks["clock"].status == "skip"
    assert checks["nats"].status == checks["jetstream"].status == "ok"
    # A stream no service has created yet is reported, with how to create it.
    assert checks["stream"].status == "fail"
    assert "does not exist" in checks["stream"].detail
    report = doctor.render(list(checks.values())) + doctor.to_json(list(checks.values()))
    assert secret not in report
    assert "FAIL  database" in report


async def test_nats_down_fails_with_its_fix(database_url: str) -> None:
    settings = harness.test_settings(f"nats://127.0.0.1:{free_port()}", database_url)
    checks = by_name(await doctor.diagnose(settings, timeout=2))
    assert checks["database"].status == checks["migrations"].status == "ok"
    assert checks["nats"].status == "fail"
    assert checks["nats"].fix is not None and "-js" in checks["nats"].fix
    assert [checks[n].status for n in NAMES[5:]] == ["skip"] * 4
    line = doctor.render(list(checks.values())).splitlines()[NAMES.index("nats")]
    assert line.startswith("FAIL  nats") and "fix: start nats-server" in line


async def test_nats_without_jetstream_fails_with_its_fix(database_url: str) -> None:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        str(nats_server_binary()),
        "-a",
        "127.0.0.1",
        "-p",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await until(lambda: _listening(port), 10, "nats-server listening")
        settings = harness.test_settings(f"nats://127.0.0.1:{port}", database_url)
        checks = by_name(await doctor.diagnose(settings, timeout=2))
    finally:
        server.terminate()
        await server.wait()
    assert checks["nats"].status == "ok"
    assert checks["jetstream"].status == "fail"
    assert checks["jetstream"].fix is not None and "-js" in checks["jetstream"].fix


async def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
async def empty_database(infra: Infra) -> AsyncIterator[str]:
    """A database with no migrations applied."""
    name = f"empty_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(infra.postgres_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    head, _, _ = infra.postgres_url.partition("?")
    yield f"{head.rpartition('/')[0]}/{name}"
    conn = await asyncpg.connect(infra.postgres_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


async def test_pending_migrations_are_named_and_migrate_fixes_them(
    infra: Infra, empty_database: str
) -> None:
    settings = harness.test_settings(infra.nats_url, empty_database)
    checks = by_name(await doctor.diagnose(settings, timeout=2))
    pending = checks["migrations"]
    assert pending.status == "fail"
    for migration in migrations():
        assert f"{migration.version:04d}_{migration.name}" in pending.detail
    assert pending.fix == "run `chinwag migrate`"

    await migrate(empty_database)
    checks = by_name(await doctor.diagnose(settings, timeout=2))
    assert checks["migrations"].status == "ok"


async def test_a_stream_with_wrong_settings_fails_naming_each_difference(
    infra: Infra, database_url: str
) -> None:
    settings = harness.test_settings(infra.nats_url, database_url)
    wrong = dataclasses.replace(
        bus.stream_config(settings),
        subjects=[f"{settings.subject_prefix}.other.>"],
        duplicate_window=30.0,
    )
    nc = await bus.connect(settings.nats(), "test")
    try:
        js = nc.jetstream()
        await js.add_stream(wrong)
        try:
            checks = by_name(await doctor.diagnose(settings, timeout=2))
        finally:
            await js.delete_stream(settings.stream_name)
    finally:
        await nc.close()
    stream = checks["stream"]
    assert stream.status == "fail"
    assert "duplicate_window is 30 s, expected 120 s" in stream.detail
    assert f"subjects is {settings.subject_prefix}.other.>" in stream.detail
    assert stream.fix is not None
    assert "CHINWAG_DUPLICATE_WINDOW" in stream.fix and "CHINWAG_SUBJECT_PREFIX" in stream.fix
    # Fanout has never run against this stream: a warning, not a failure.
    assert checks["consumers"].status == "warn"
    assert checks["partitions"].status == "skip"


async def _healthy(system: System) -> None:
    async def consumers_created() -> bool:
        return by_name(await doctor.diagnose(system.settings))["consumers"].status == "ok"

    await until(consumers_created, 20, "fanout's consumers")


async def test_partitions_no_worker_pulls_fail_with_their_fix(system: System) -> None:
    await _healthy(system)
    await system.stop("fanout")  # its durable consumers stay behind, pulled by nobody
    checks = by_name(await doctor.diagnose(system.settings, timeout=2))
    assert checks["consumers"].status == "ok"
    partitions = checks["partitions"]
    assert partitions.status == "fail"
    assert "no fanout worker is pulling partition(s) 0, 1, 2, 3" in partitions.detail
    assert partitions.fix is not None and "CHINWAG_FANOUT_PARTITIONS" in partitions.fix


async def test_a_consumer_configured_otherwise_fails_naming_the_difference(
    system: System,
) -> None:
    await _healthy(system)
    await system.stop("fanout")
    settings = system.settings
    nc = await bus.connect(settings.nats(), "test")
    try:
        js = nc.jetstream()
        config = (await js.consumer_info(settings.stream_name, "fanout-2")).config
        await js.delete_consumer(settings.stream_name, "fanout-2")
        await js.add_consumer(settings.stream_name, dataclasses.replace(config, ack_wait=5.0))
        checks = by_name(await doctor.diagnose(settings, timeout=2))
    finally:
        await nc.close()
    consumers = checks["consumers"]
    assert consumers.status == "fail"
    assert consumers.detail == "fanout-2 ack_wait is 5 s, expected 30 s"
    assert consumers.fix is not None and "CHINWAG_ACK_WAIT" in consumers.fix
    assert checks["partitions"].status == "skip"


async def test_invalid_settings_fail_the_config_check_without_their_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHINWAG_PARTITIONS", "0")
    monkeypatch.setenv("CHINWAG_STREAM_REPLICAS", "many")
    checks = by_name(await doctor.diagnose())
    config = checks["config"]
    assert config.status == "fail"
    assert "CHINWAG_PARTITIONS" in config.detail and "CHINWAG_STREAM_REPLICAS" in config.detail
    assert "many" not in config.detail
    assert all(checks[n].status == "skip" for n in NAMES[1:])


def test_warnings_alone_do_not_fail() -> None:
    checks = [Check("clock", "warn", "2.0 s behind", "use NTP"), Check("nats", "ok", "up")]
    assert not doctor.failed(checks)
    assert json.loads(doctor.to_json(checks))["ok"] is True
    assert doctor.failed([*checks, Check("stream", "fail", "missing", "start a service")])


def test_stream_comparison_accepts_the_expected_configuration() -> None:
    settings = Settings(stream_name="S", subject_prefix="p")
    assert doctor.compare_stream(settings, bus.stream_config(settings)).status == "ok"


async def test_the_one_missing_migration_is_named(infra: Infra, database_url: str) -> None:
    latest = migrations()[-1]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "DELETE FROM public.schema_migrations WHERE version = $1", latest.version
        )
    finally:
        await conn.close()
    checks = by_name(await doctor.diagnose(harness.test_settings(infra.nats_url, database_url)))
    pending = checks["migrations"]
    assert pending.status == "fail"
    assert pending.detail == f"1 pending: {latest.version:04d}_{latest.name}"
    assert pending.fix == "run `chinwag migrate`"
    assert doctor.failed(list(checks.values()))
