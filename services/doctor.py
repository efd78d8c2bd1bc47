"""``chinwag doctor``: check a deployment from the outside, and say how to fix what is wrong.

Reads the same ``CHINWAG_*`` settings as the services, then checks the
configuration, PostgreSQL (reachable, migrated, clock), NATS (reachable,
JetStream enabled) and the event stream with fanout's consumers. Every network
call gives up after ``timeout`` seconds, so a dead host cannot hang it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import asyncpg
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from pydantic import ValidationError

from libs.bus import consumer_config, servers, stream_config
from libs.db import Migration, applied_versions, migrations, pending_migrations
from libs.settings import Settings
from libs.subjects import Subjects

TIMEOUT = 3.0  # seconds any one network call may take
PULL_RECHECK = 1.5  # seconds before looking again at a partition nobody seemed to pull
CLOCK_SKEW = 1.0  # seconds of skew against PostgreSQL before warning

Status = Literal["ok", "warn", "fail", "skip"]

_LABELS: dict[Status, str] = {"ok": "ok", "warn": "warn", "fail": "FAIL", "skip": "skip"}


@dataclass(frozen=True)
class Check:
    """The outcome of one check, and how to fix it when it is not ok."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


def _skipped(names: Sequence[str], needs: str) -> list[Check]:
    return [Check(name, "skip", f"needs {needs}") for name in names]


async def diagnose(settings: Settings | None = None, timeout: float = TIMEOUT) -> list[Check]:
    """Every check, in order; ``settings`` come from the environment unless given."""
    if settings is None:
        try:
            settings = Settings()
        except ValidationError as error:
            return [
                _invalid(error),
                *_skipped(DATABASE_CHECKS + NATS_CHECKS, "a valid configuration"),
            ]
    config = Check(
        "config",
        "ok",
        f"{settings.partitions} partitions, stream {settings.stream_name}, "
        f"subject prefix {settings.subject_prefix}",
    )
    database, bus = await asyncio.gather(
        check_database(settings, timeout), check_nats(settings, timeout)
    )
    return [config, *database, *bus]


def _invalid(error: ValidationError) -> Check:
    names = []
    problems = []
    for problem in error.errors():
        name = "CHINWAG_" + "_".join(str(part) for part in problem["loc"]).upper()
        names.append(name)
        problems.append(f"{name}: {problem['msg']}")  # never the value: it may be a secret
    return Check(
        "config",
        "fail",
        "; ".join(problems),
        f"correct {', '.join(dict.fromkeys(names))} (the README lists every setting)",
    )


def _where(url: str) -> str:
    """``host:port/path`` of a URL, without its user or password."""
    try:
        parts = urlsplit(url)
        host = f"{parts.hostname or 'localhost'}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "the configured address"
    return host + (parts.path if parts.path not in ("", "/") else "")


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError | nats.errors.TimeoutError):
        return "no answer in time"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is it running?)"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


DATABASE_CHECKS = ("database", "migrations", "clock")


async def check_database(settings: Settings, timeout: float = TIMEOUT) -> list[Check]:
    """PostgreSQL reachable, every migration applied, and its clock close to ours."""
    if settings.database_url is None:
        return [
            Check(
                "database",
                "fail",
                "CHINWAG_DATABASE_URL is not set",
                "set CHINWAG_DATABASE_URL to postgresql://user:password@host:5432/database "
                "(`chinwag up` prints the URL of its embedded PostgreSQL)",
            ),
            *_skipped(DATABASE_CHECKS[1:], "the database"),
        ]
    dsn = settings.database_url.get_secret_value()
    where = _where(dsn)
    try:
        conn: asyncpg.Connection[Any] = await asyncio.wait_for(
            asyncpg.connect(dsn, timeout=timeout), timeout + 1
        )
    except asyncpg.InvalidAuthorizationSpecificationError as error:
        failed = Check(
            "database",
            "fail",
            f"{where} refused the login: {error}",
            "check the user and password in CHINWAG_DATABASE_URL",
        )
        return [failed, *_skipped(DATABASE_CHECKS[1:], "the database")]
    except asyncpg.InvalidCatalogNameError as error:
        failed = Check(
            "database",
            "fail",
            f"{where}: {error}",
            "create the database (createdb), then run `chinwag migrate`; "
            "or correct CHINWAG_DATABASE_URL",
        )
        return [failed, *_skipped(DATABASE_CHECKS[1:], "the database")]
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        failed = Check(
            "database",
            "fail",
            f"cannot connect to {where}: {_reason(error)}",
            f"start PostgreSQL at {where}, or correct CHINWAG_DATABASE_URL",
        )
        return [failed, *_skipped(DATABASE_CHECKS[1:], "the database")]
    try:
        version = await conn.fetchval("SHOW server_version", timeout=timeout)
        checks = [Check("database", "ok", f"PostgreSQL {version} at {where}")]
        checks.append(await _check_migrations(conn, timeout))
        checks.append(await _check_clock(conn, timeout))
        return checks
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        failed = Check(
            "database",
            "fail",
            f"{where} stopped answering: {_reason(error)}",
            "check PostgreSQL's log and load",
        )
        return [failed, *_skipped(DATABASE_CHECKS[1:], "the database")]
    finally:
        try:
            await conn.close(timeout=timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            conn.terminate()


def _label(migration: Migration) -> str:
    return f"{migration.version:04d}_{migration.name}"


async def _check_migrations(conn: asyncpg.Connection[Any], timeout: float) -> Check:
    pending = await asyncio.wait_for(pending_migrations(conn), timeout)
    if pending:
        return Check(
            "migrations",
            "fail",
            f"{len(pending)} pending: {', '.join(_label(m) for m in pending)}",
            "run `chinwag migrate`",
        )
    known = migrations()
    unknown = sorted(
        await asyncio.wait_for(applied_versions(conn), timeout) - {m.version for m in known}
    )
    if unknown:
        return Check(
            "migrations",
            "warn",
            f"the database has migrations this release does not know: "
            f"{', '.join(map(str, unknown))}",
            "run the release that applied them (or a newer one)",
        )
    return Check("migrations", "ok", f"all {len(known)} applied, latest {_label(known[-1])}")


async def _check_clock(conn: asyncpg.Connection[Any], timeout: float) -> Check:
    before = time.time()
    theirs = await conn.fetchval("SELECT clock_timestamp()", timeout=timeout)
    after = time.time()
    skew = theirs.timestamp() - (before + after) / 2
    if abs(skew) > CLOCK_SKEW:
        side = "behind" if skew > 0 else "ahead of"
        return Check(
            "clock",
            "warn",
            f"this host's clock is {abs(skew):.1f} s {side} PostgreSQL's",
            "synchronise the clocks of this host and the database host (NTP: chrony, "
            "systemd-timesyncd)",
        )
    return Check("clock", "ok", f"within {abs(skew) * 1000:.0f} ms of PostgreSQL's")


NATS_CHECKS = ("nats", "jetstream", "stream", "consumers", "partitions")


async def check_nats(settings: Settings, timeout: float = TIMEOUT) -> list[Check]:
    """NATS reachable, JetStream enabled, the stream as configured, fanout's consumers there."""
    if settings.nats_url is None:
        return [
            Check(
                "nats",
                "fail",
                "CHINWAG_NATS_URL is not set",
                "set CHINWAG_NATS_URL to nats://host:4222 "
                "(`chinwag up` prints the URL of its embedded nats-server)",
            ),
            *_skipped(NATS_CHECKS[1:], "NATS"),
        ]
    where = ", ".join(_where(u) for u in servers(settings.nats_url))
    seen: list[Exception] = []

    async def on_error(error: Exception) -> None:
        seen.append(error)

    try:
        nc: NATS = await asyncio.wait_for(
            nats.connect(
                servers(settings.nats_url),
                name="chinwag-doctor",
                connect_timeout=timeout,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                error_cb=on_error,
            ),
            2 * timeout + 1,
        )
    except (nats.errors.Error, OSError, TimeoutError) as error:
        cause = seen[-1] if seen else error
        fix = f"start nats-server with JetStream (nats-server -js) at {where}, or correct "
        fix += "CHINWAG_NATS_URL"
        if isinstance(cause, nats.errors.AuthorizationError):
            fix = "check the credentials in CHINWAG_NATS_URL"
        failed = Check("nats", "fail", f"cannot connect to {where}: {_reason(cause)}", fix)
        return [failed, *_skipped(NATS_CHECKS[1:], "NATS")]
    try:
        version = nc.connected_server_version
        checks = [
            Check("nats", "ok", f"nats-server {version.major}.{version.minor}.{version.patch}")
        ]
        checks += await _check_jetstream(nc, settings, where, timeout)
        return checks
    finally:
        with contextlib.suppress(nats.errors.Error, OSError, TimeoutError):
            await asyncio.wait_for(nc.close(), timeout)


async def _check_jetstream(nc: NATS, settings: Settings, where: str, timeout: float) -> list[Check]:
    js = nc.jetstream(timeout=timeout)
    try:
        account = await asyncio.wait_for(js.account_info(), timeout + 1)
    except (nats.js.errors.ServiceUnavailableError, nats.errors.NoRespondersError):
        failed = Check(
            "jetstream",
            "fail",
            f"JetStream is not enabled on {where}",
            "start nats-server with -js (or a `jetstream {}` block in its configuration)",
        )
        return [failed, *_skipped(NATS_CHECKS[2:], "JetStream")]
    except (nats.errors.Error, OSError, TimeoutError) as error:
        failed = Check(
            "jetstream",
            "fail",
            f"JetStream on {where} did not answer: {_reason(error)}",
            "check nats-server's log; in a cluster, that a JetStream meta leader is elected",
        )
        return [failed, *_skipped(NATS_CHECKS[2:], "JetStream")]
    checks = [
        Check(
            "jetstream",
            "ok",
            f"enabled: {account.streams} streams, {account.consumers} consumers",
        )
    ]
    try:
        info = await asyncio.wait_for(js.stream_info(settings.stream_name), timeout + 1)
    except nats.js.errors.NotFoundError:
        checks.append(
            Check(
                "stream",
                "fail",
                f"stream {settings.stream_name} does not exist",
                "start a chinwag service (gateway, fanout and presence create it), or check "
                "CHINWAG_STREAM_NAME",
            )
        )
        return [*checks, *_skipped(NATS_CHECKS[3:], "the stream")]
    except (nats.errors.Error, OSError, TimeoutError) as error:
        checks.append(
            Check(
                "stream",
                "fail",
                f"stream info failed: {_reason(error)}",
                "check nats-server's log and load; in a cluster, that the stream has a leader",
            )
        )
        return [*checks, *_skipped(NATS_CHECKS[3:], "the stream")]
    checks.append(compare_stream(settings, info.config, info.state.messages))
    return checks + await _check_consumers(js, settings, timeout)


# Each stream field chinwag sets, with the setting that decides it.
_STREAM_FIELDS = {
    "subjects": "CHINWAG_SUBJECT_PREFIX",
    "num_replicas": "CHINWAG_STREAM_REPLICAS",
    "duplicate_window": "CHINWAG_DUPLICATE_WINDOW",
    "max_age": "CHINWAG_STREAM_MAX_AGE",
    "storage": None,
}


def _same(have: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(have, int | float):
        return math.isclose(have, want, rel_tol=1e-9)
    if isinstance(want, list) and isinstance(have, list):
        return sorted(have) == sorted(want)
    return bool(have == want)


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    if isinstance(value, float):
        return f"{value:g} s"
    return str(getattr(value, "value", value))


def compare_stream(settings: Settings, config: Any, messages: int = 0) -> Check:
    """The stream's configuration against ``libs.bus.stream_config``."""
    expected = stream_config(settings)
    wrong = [
        name for name in _STREAM_FIELDS if not _same(getattr(config, name), getattr(expected, name))
    ]
    if not wrong:
        return Check(
            "stream",
            "ok",
            f"{settings.stream_name}: {messages} events, subjects {_show(expected.subjects)}, "
            f"{expected.num_replicas} replica(s), {_show(expected.storage)} storage",
        )
    detail = "; ".join(
        f"{name} is {_show(getattr(config, name))}, expected {_show(getattr(expected, name))}"
        for name in wrong
    )
    if "storage" in wrong:
        fix = (
            "storage cannot change in place: once fanout has caught up (consumers pending 0), "
            "remove the stream (nats stream rm) and start a chinwag service to create it anew"
        )
    else:
        settings_names = ", ".join(
            str(_STREAM_FIELDS[name]) for name in wrong if _STREAM_FIELDS[name]
        )
        fix = (
            "start a chinwag service: it updates the stream to the configured values; "
            f"or, if the stream is right, correct {settings_names}"
        )
    return Check("stream", "fail", f"{settings.stream_name}: {detail}", fix)


async def _consumer_infos(js: Any, settings: Settings, timeout: float) -> list[Any]:
    """Each partition's ``fanout-<p>`` consumer info, None where it does not exist."""

    async def info(partition: int) -> Any:
        try:
            return await asyncio.wait_for(
                js.consumer_info(settings.stream_name, f"fanout-{partition}", timeout=timeout),
                timeout + 1,
            )
        except nats.js.errors.NotFoundError:
            return None

    return list(await asyncio.gather(*(info(p) for p in range(settings.partitions))))


async def _check_consumers(js: Any, settings: Settings, timeout: float) -> list[Check]:
    """``consumers`` (present, configured as fanout makes them) and ``partitions`` (pulled)."""
    try:
        found = await _consumer_infos(js, settings, timeout)
    except (nats.errors.Error, OSError, TimeoutError) as error:
        failed = Check(
            "consumers",
            "fail",
            f"consumer info failed: {_reason(error)}",
            "check nats-server's log and load; in a cluster, that the stream has a leader",
        )
        return [failed, *_skipped(NATS_CHECKS[4:], "the consumers")]
    consumers = compare_consumers(settings, found)
    if consumers.status != "ok":
        return [consumers, *_skipped(NATS_CHECKS[4:], "the consumers")]
    return [consumers, await _check_partitions(js, settings, found, timeout)]


# The fields of fanout's consumers that its settings decide (the start sequence moves).
_CONSUMER_FIELDS = ("filter_subject", "ack_policy", "deliver_policy", "ack_wait", "max_ack_pending")


def _consumer_differences(settings: Settings, partition: int, config: Any) -> list[str]:
    """How a consumer's configuration differs from what ``PartitionConsumer`` creates."""
    subjects = Subjects(settings.subject_prefix, settings.partitions)
    expected = consumer_config(
        f"fanout-{partition}",
        subjects.partition_filter(partition),
        1,
        settings.ack_wait,
        settings.fanout_batch,
    )
    return [
        f"fanout-{partition} {name} is {_show(getattr(config, name))}, "
        f"expected {_show(getattr(expected, name))}"
        for name in _CONSUMER_FIELDS
        if not _same(getattr(config, name), getattr(expected, name))
    ]


def compare_consumers(settings: Settings, found: Sequence[Any]) -> Check:
    """Fanout's consumers: one per partition, each configured as fanout creates it."""
    partitions = range(settings.partitions)
    missing = [p for p, i in zip(partitions, found, strict=True) if i is None]
    if len(missing) == settings.partitions:
        return Check(
            "consumers",
            "warn",
            f"no fanout consumers on {settings.stream_name}: fanout has not run yet",
            "start fanout (`chinwag fanout`); it creates fanout-0 … "
            f"fanout-{settings.partitions - 1}",
        )
    if missing:
        return Check(
            "consumers",
            "fail",
            "no consumer for partition(s) "
            + ", ".join(map(str, missing))
            + ": their events are not delivered",
            "run fanout workers that cover every partition: CHINWAG_FANOUT_PARTITIONS=all, or "
            "split them (`chinwag up --scale fanout=N`)",
        )
    wrong = [
        difference
        for p, i in zip(partitions, found, strict=True)
        for difference in _consumer_differences(settings, p, i.config)
    ]
    if wrong:
        return Check(
            "consumers",
            "fail",
            "; ".join(wrong),
            "restart fanout with the same CHINWAG_PARTITIONS, CHINWAG_SUBJECT_PREFIX, "
            "CHINWAG_ACK_WAIT and CHINWAG_FANOUT_BATCH as this check: it re-creates its "
            "consumers from them",
        )
    pending = sum(i.num_pending or 0 for i in found)
    unacked = sum(i.num_ack_pending or 0 for i in found)
    return Check(
        "consumers",
        "ok",
        f"fanout-0 … fanout-{settings.partitions - 1} present; "
        f"{pending} pending, {unacked} unacknowledged",
    )


def _pulled(info: Any, within: float) -> bool:
    """Whether a worker is pulling this consumer: a pull request waits, or one was answered."""
    if info.num_waiting:
        return True
    last = info.delivered.last_active if info.delivered else None
    return last is not None and (datetime.now(UTC) - last).total_seconds() < within


async def _check_partitions(js: Any, settings: Settings, found: list[Any], timeout: float) -> Check:
    """Every partition has a fanout worker pulling from its consumer right now."""
    # A worker keeps a pull request waiting, renewed every second; between two of them
    # there may be none, so a partition that looks idle is looked at once more.
    idle = [p for p, info in enumerate(found) if not _pulled(info, settings.ack_wait)]
    if idle:
        await asyncio.sleep(PULL_RECHECK)
        try:
            again = await _consumer_infos(js, settings, timeout)
        except (nats.errors.Error, OSError, TimeoutError) as error:
            return Check("partitions", "fail", f"consumer info failed: {_reason(error)}")
        idle = [p for p in idle if again[p] is None or not _pulled(again[p], settings.ack_wait)]
        found = again
    if idle:
        waiting = sum((found[p].num_pending or 0) if found[p] else 0 for p in idle)
        return Check(
            "partitions",
            "fail",
            f"no fanout worker is pulling partition(s) {', '.join(map(str, idle))} "
            f"({waiting} events waiting)",
            "start fanout workers that own them (CHINWAG_FANOUT_PARTITIONS=all, or "
            "`chinwag up --scale fanout=N`); a stopped worker leaves its consumer behind, "
            "and a live one takes a dead one's partitions over after CHINWAG_FANOUT_LEASE_TTL",
        )
    return Check(
        "partitions",
        "ok",
        f"all {settings.partitions} partitions have a fanout worker pulling",
    )


def failed(checks: Sequence[Check]) -> bool:
    """Whether any check failed (warnings do not count)."""
    return any(c.status == "fail" for c in checks)


def render(checks: Sequence[Check]) -> str:
    """One line per check: status, name, detail and, when not ok, the fix."""
    width = max(len(c.name) for c in checks)
    lines = []
    for check in checks:
        line = f"{_LABELS[check.status]:<4}  {check.name:<{width}}  {check.detail}"
        if check.fix:
            line += f" — fix: {check.fix}"
        lines.append(line)
    return "\n".join(lines)


def to_json(checks: Sequence[Check]) -> str:
    """``{"ok": …, "checks": [{name, status, detail, fix}, …]}``."""
    return json.dumps({"ok": not failed(checks), "checks": [asdict(c) for c in checks]}, indent=2)


def main(as_json: bool = False, timeout: float = TIMEOUT) -> int:
    """Run every check, print the report; 1 when a check failed, else 0."""
    checks = asyncio.run(diagnose(timeout=timeout))
    print(to_json(checks) if as_json else render(checks))
    return 1 if failed(checks) else 0
