"""``chinwag up``: the whole system on one machine, each service a process of its own.

Without ``CHINWAG_DATABASE_URL`` / ``CHINWAG_NATS_URL`` it starts the embedded
PostgreSQL and nats-server under the data directory. It then applies the
migrations, creates the event stream, starts the services, prefixes their
output with their names, and on SIGINT/SIGTERM stops the services first and
the servers after them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import asyncpg
import nats.errors
from pydantic import SecretStr

from libs import bus
from libs.db import migrate
from libs.embedded import EmbeddedNats, EmbeddedPostgres, EmbeddedServerError, free_port
from libs.logs import scrub
from libs.settings import Settings

SERVICES = ("gateway", "fanout", "history", "presence")
GRACE_MARGIN = 5.0  # seconds past a service's own grace period before it is killed
READY_TIMEOUT = 60.0  # seconds the gateway gets to answer /livez
BOOTSTRAP_TIMEOUT = 30.0
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_LINE_LIMIT = 1 << 20
_SELF = "chinwag"


@dataclass(frozen=True)
class ServiceSpec:
    """One service process to run: its label and the environment it differs by."""

    name: str
    label: str
    env: dict[str, str] = field(default_factory=dict)
    port: int | None = None
    ops_port: int | None = None  # a worker's probes and metrics


def plan(
    settings: Settings, port: int | None, scale: dict[str, int] | None = None
) -> list[ServiceSpec]:
    """The processes to start: ``scale`` gives instances per service (default 1, 0 skips it).

    Several gateways listen on consecutive ports from ``port`` (``None``: each on a
    free port of its own); several fanout
    workers split the partitions between them by ordinal, as a StatefulSet's
    pods do, and take over those of a worker that dies. Each worker serves its probes
    and metrics on a port of its own: consecutive from ``ops_port`` when it is
    set, else a free one.
    """
    counts = dict.fromkeys(SERVICES, 1)
    for name, count in (scale or {}).items():
        if name not in counts:
            raise ValueError(f"unknown service {name!r}; choose from {', '.join(SERVICES)}")
        if count < 0:
            raise ValueError(f"cannot run {count} instances of {name}")
        counts[name] = count
    if counts["fanout"] > settings.partitions:
        raise ValueError(
            f"{counts['fanout']} fanout workers but only {settings.partitions} partitions"
        )
    specs = []
    next_ops_port = settings.ops_port
    for name in SERVICES:
        count = counts[name]
        for i in range(count):
            label = name if count == 1 else f"{name}.{i}"
            env: dict[str, str] = {}
            spec_port = None
            if name == "gateway":
                spec_port = free_port() if port is None else port + i
                env["CHINWAG_HTTP_PORT"] = str(spec_port)
            if name == "fanout" and count > 1:
                # Each prefers its ordinal's share and takes over a dead one's (leases).
                env["CHINWAG_FANOUT_WORKERS"] = str(count)
                env["CHINWAG_FANOUT_ORDINAL"] = str(i)
            ops_port = None
            if name != "gateway":
                if settings.ops_port:
                    ops_port, next_ops_port = next_ops_port, next_ops_port + 1
                else:
                    ops_port = free_port()
                env["CHINWAG_OPS_PORT"] = str(ops_port)
            specs.append(ServiceSpec(name, label, env, spec_port, ops_port))
    return specs


def settings_env(settings: Settings) -> dict[str, str]:
    """``settings`` as the ``CHINWAG_*`` variables a child process reads back into it."""
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, dict | list | tuple):
            value = json.dumps(value)
        env[f"CHINWAG_{name.upper()}"] = str(value)
    return env


class _Console:
    """Writes lines to stdout behind a padded label, like ``gateway  | ...``."""

    def __init__(self, labels: Iterable[str], stream: TextIO | None = None) -> None:
        self.width = max(len(label) for label in (_SELF, *labels))
        self.stream = stream or sys.stdout

    def line(self, label: str, text: str) -> None:
        self.stream.write(f"{label:<{self.width}} | {text}\n")
        self.stream.flush()

    def say(self, text: str) -> None:
        self.line(_SELF, text)


@dataclass
class _Child:
    spec: ServiceSpec
    process: asyncio.subprocess.Process
    pump: asyncio.Task[None]


async def up(
    settings: Settings,
    data_dir: Path,
    port: int,
    scale: dict[str, int] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run chinwag until SIGINT/SIGTERM (or ``stop``); 0 after a requested stop, 1 on failure."""
    if port == 0:
        port = free_port()
    try:
        specs = plan(settings, port, scale)
    except ValueError as error:
        print(f"chinwag up: {error}", file=sys.stderr)
        return 2
    stop = stop or asyncio.Event()
    hurry = asyncio.Event()

    def on_signal() -> None:
        # A second signal cuts the services' grace period short.
        (hurry if stop.is_set() else stop).set()

    loop = asyncio.get_running_loop()
    installed = []
    for sig in _SIGNALS:
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
    try:
        return await _up(settings, data_dir, specs, stop, hurry, _Console(s.label for s in specs))
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def _up(
    settings: Settings,
    data_dir: Path,
    specs: Sequence[ServiceSpec],
    stop: asyncio.Event,
    hurry: asyncio.Event,
    out: _Console,
) -> int:
    async with AsyncExitStack() as stack:
        try:
            database_url, nats_url = await _backends(settings, data_dir, stack, out)
            if stop.is_set():
                return 0
            applied = await migrate(database_url)
            out.say(f"migrations applied: {', '.join(applied)}" if applied else "schema up to date")
            await asyncio.wait_for(_bootstrap_stream(settings, nats_url), BOOTSTRAP_TIMEOUT)
        except (
            EmbeddedServerError,
            OSError,
            TimeoutError,
            asyncpg.PostgresError,
            nats.errors.Error,
        ) as error:
            out.say(scrub(f"startup failed: {type(error).__name__}: {error}"))
            return 1
        if stop.is_set():
            return 0
        env = {
            **os.environ,
            **settings_env(settings),
            "CHINWAG_DATABASE_URL": database_url,
            "CHINWAG_NATS_URL": nats_url,
            "CHINWAG_DATA_DIR": str(data_dir),
            "PYTHONUNBUFFERED": "1",
        }
        if settings.log_format == "auto" and out.stream.isatty():
            env["CHINWAG_LOG_FORMAT"] = "console"
        children: list[_Child] = []
        try:
            for spec in specs:
                child = await _spawn(spec, {**env, **spec.env}, out)
                children.append(child)
                out.say(f"{spec.label} started (pid {child.process.pid})")
                if spec.ops_port:
                    host = _client_host(settings.http_host)
                    out.say(
                        f"{spec.label} probes and metrics: http://{host}:{spec.ops_port}/metrics"
                    )
            return await _supervise(settings, children, stop, out)
        finally:
            await _terminate(children, hurry, out, settings.shutdown_grace + GRACE_MARGIN)


async def _backends(
    settings: Settings, data_dir: Path, stack: AsyncExitStack, out: _Console
) -> tuple[str, str]:
    """The database and NATS URLs, starting embedded servers for those not configured."""
    database_url = settings.database_url.get_secret_value() if settings.database_url else None
    nats_url = settings.nats_url
    if database_url is None:
        pg = EmbeddedPostgres(
            data_dir / "postgres", synchronous_commit=settings.database_synchronous_commit
        )
        stack.push_async_callback(_stop_server, pg, "PostgreSQL", out)
        await asyncio.to_thread(pg.start)
        database_url = pg.url
        out.say(f"PostgreSQL at {pg.url} (log: {pg.log_path})")
    if nats_url is None:
        nats_server = EmbeddedNats(data_dir / "nats", sync_interval=sync_interval(settings))
        stack.push_async_callback(_stop_server, nats_server, "nats-server", out)
        await asyncio.to_thread(nats_server.start)
        nats_url = nats_server.url
        out.say(f"nats-server at {nats_server.url} (log: {nats_server.log_path})")
    return database_url, nats_url


def sync_interval(settings: Settings) -> str | None:
    """The embedded nats-server's JetStream ``sync_interval``; None keeps its default."""
    return None if settings.nats_sync_interval == "default" else settings.nats_sync_interval


async def _stop_server(server: EmbeddedPostgres | EmbeddedNats, what: str, out: _Console) -> None:
    if server.running:
        await asyncio.to_thread(server.stop)
        out.say(f"{what} stopped")


async def _bootstrap_stream(settings: Settings, nats_url: str) -> None:
    nc = await bus.connect(nats_url, "chinwag-up")
    try:
        await bus.ensure_stream(nc.jetstream(), settings)
    finally:
        await nc.close()


async def _spawn(spec: ServiceSpec, env: dict[str, str], out: _Console) -> _Child:
    # A session of its own: a terminal's Ctrl-C reaches only us, and we stop the services
    # before the servers they depend on.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        spec.name,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        start_new_session=True,
        limit=_LINE_LIMIT,
    )
    assert process.stdout is not None
    pump = asyncio.create_task(_pump(process.stdout, spec.label, out))
    return _Child(spec, process, pump)


async def _pump(reader: asyncio.StreamReader, label: str, out: _Console) -> None:
    while True:
        try:
            line = await reader.readline()
        except ValueError:
            out.line(label, f"(a line longer than {_LINE_LIMIT} bytes was dropped)")
            continue
        if not line:
            return
        out.line(label, line.decode(errors="replace").rstrip("\r\n"))


async def _supervise(
    settings: Settings, children: Sequence[_Child], stop: asyncio.Event, out: _Console
) -> int:
    """Wait for a stop request (0), a service exiting (1) or the gateway never getting ready."""
    exits: dict[asyncio.Future[Any], _Child] = {
        asyncio.create_task(c.process.wait()): c for c in children
    }
    stopped = asyncio.create_task(stop.wait())
    gateways = [c.spec.port for c in children if c.spec.port is not None]
    ready = asyncio.create_task(_gateways_ready(_client_host(settings.http_host), gateways, out))
    pending: set[asyncio.Future[Any]] = {stopped, ready, *exits}
    try:
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if stopped in done:
                out.say("stopping")
                return 0
            for task in done & exits.keys():
                child = exits.pop(task)
                code = child.process.returncode
                peers = [c.spec.label for c in exits.values() if c.spec.name == child.spec.name]
                if not peers:
                    out.say(f"{child.spec.label} exited unexpectedly with code {code}")
                    return 1
                # A replica is gone; its peers carry its work, as in any scaled deployment.
                verb = "carries" if len(peers) == 1 else "carry"
                out.say(
                    f"{child.spec.label} exited unexpectedly with code {code}; "
                    f"{', '.join(peers)} {verb} on"
                )
            if ready in done and not ready.result():
                return 1
    finally:
        for task in pending:
            task.cancel()


def _client_host(http_host: str) -> str:
    return "127.0.0.1" if http_host in ("", "0.0.0.0", "::") else http_host


async def _gateways_ready(host: str, ports: Sequence[int], out: _Console) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT
    waiting = list(ports)
    if not waiting:
        out.say("services started (no gateway)")
    while waiting:
        if await _live(host, waiting[0]):
            out.say(f"chinwag is up: http://{host}:{waiting.pop(0)}/")
        elif loop.time() > deadline:
            out.say(f"the gateway on port {waiting[0]} did not get ready in {READY_TIMEOUT} s")
            return False
        else:
            await asyncio.sleep(0.2)
    return True


async def _live(host: str, port: int) -> bool:
    """Whether ``GET /livez`` answers 200."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2.0)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(
            f"GET /livez HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 2.0)
    except (OSError, TimeoutError, ValueError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    parts = status.split()
    return len(parts) >= 2 and parts[1] == b"200"


async def _terminate(
    children: Sequence[_Child], hurry: asyncio.Event, out: _Console, grace: float
) -> None:
    """SIGTERM every service, SIGKILL those still running after the grace period."""
    running = [c for c in children if c.process.returncode is None]
    for child in running:
        with contextlib.suppress(ProcessLookupError):
            child.process.terminate()
    if running:
        exited = asyncio.ensure_future(asyncio.gather(*(c.process.wait() for c in running)))
        hurried: asyncio.Future[Any] = asyncio.create_task(hurry.wait())
        await asyncio.wait({exited, hurried}, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        hurried.cancel()
        for child in running:
            if child.process.returncode is None:
                out.say(f"{child.spec.label} is still running; killing it")
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
        await exited
    await asyncio.gather(*(c.pump for c in children))
    for child in running:
        code = child.process.returncode
        out.say(f"{child.spec.label} stopped" + (f" (exit code {code})" if code else ""))
