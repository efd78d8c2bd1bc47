"""chinwag as real processes on servers a fault run may kill, pause, cut off or restart.

``Servers`` are a nats-server and a PostgreSQL of their own (embedded, in a
directory), so restarting them disturbs nothing else. ``Cluster`` runs the four
services as ``chinwag <service>`` processes against one database and stream of
those servers, each logging to a file, optionally with several gateways and
with a ``Proxy`` between a service and NATS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from libs.db import migrate
from libs.embedded import EmbeddedNats, EmbeddedPostgres
from libs.settings import Settings
from services.bench.proxy import Proxy
from services.up import plan, settings_env, sync_interval

GRACE = 10.0  # seconds a service gets to stop after SIGTERM
READY_TIMEOUT = 60.0


class ClusterError(Exception):
    """A process or server did not start, or did not become ready in time."""


@dataclass
class Servers:
    """A nats-server and a PostgreSQL under one directory, restartable in place."""

    nats: EmbeddedNats
    postgres: EmbeddedPostgres

    @classmethod
    def embedded(cls, base: Path, settings: Settings, fast: bool = False) -> Servers:
        """Servers under ``base`` with the durability ``settings`` ask for.

        ``fast`` turns PostgreSQL's fsync off, for tests that kill servers but
        never lose power.
        """
        return cls(
            EmbeddedNats(base / "nats", sync_interval=sync_interval(settings)),
            EmbeddedPostgres(
                base / "postgres",
                synchronous_commit=settings.database_synchronous_commit,
                fsync="off" if fast else "on",
                max_connections="200",
            ),
        )

    async def start(self) -> None:
        await asyncio.gather(
            asyncio.to_thread(self.nats.start), asyncio.to_thread(self.postgres.start)
        )

    async def stop(self) -> None:
        await asyncio.gather(
            asyncio.to_thread(self.nats.stop), asyncio.to_thread(self.postgres.stop)
        )

    async def kill_nats(self) -> None:
        await asyncio.to_thread(self.nats.kill)

    async def start_nats(self) -> None:
        await asyncio.to_thread(self.nats.start)

    async def kill_postgres(self) -> None:
        await asyncio.to_thread(self.postgres.kill)

    async def start_postgres(self) -> None:
        await asyncio.to_thread(self.postgres.start)

    async def new_database(self) -> str:
        """A fresh, migrated database on the PostgreSQL; its URL."""
        name = f"run_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(self.postgres.admin_url)
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()
        url = self.postgres.admin_url.rsplit("/", 1)[0] + f"/{name}"
        await migrate(url)
        return url


@dataclass
class Service:
    """One service process: started, signalled and restarted by a fault run."""

    name: str
    label: str
    env: dict[str, str]
    log_path: Path
    ready_url: str
    process: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ClusterError(f"{self.label} is not running")
        return self.process.pid

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.cli",
                self.name,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        self.starts += 1

    async def kill(self) -> None:
        """SIGKILL: no clean shutdown, whatever it was doing is cut short."""
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGCONT)  # a paused process must die too
            process.kill()
            await process.wait()

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(sig)

    async def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after the grace period; the exit code."""
        process = self.process
        if process is None:
            return None
        if process.returncode is None:
            self.resume()
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), GRACE)
            except TimeoutError:
                process.kill()
                await process.wait()
        return process.returncode

    async def wait_ready(
        self, http: aiohttp.ClientSession, deadline: float = READY_TIMEOUT
    ) -> None:
        end = time.monotonic() + deadline
        while True:
            if self.process is not None and self.process.returncode is not None:
                raise ClusterError(f"{self.label} exited with {self.process.returncode}")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with http.get(self.ready_url) as response:
                    if response.status == 200:
                        return
            if time.monotonic() > end:
                raise ClusterError(f"{self.label} was not ready in {deadline} s")
            await asyncio.sleep(0.1)


@dataclass
class Cluster:
    """The services of one run: ``gateways`` gateways, one of each worker."""

    servers: Servers
    settings: Settings
    workdir: Path
    gateways: int = 1
    fanouts: int = 1  # workers that split the partitions, and take over a dead one's
    proxied: tuple[str, ...] = ()  # labels of services whose NATS link goes through a proxy
    services: dict[str, Service] = field(default_factory=dict)
    proxies: dict[str, Proxy] = field(default_factory=dict)

    @property
    def gateway_urls(self) -> list[str]:
        return [
            f"http://127.0.0.1:{s.env['CHINWAG_HTTP_PORT']}"
            for s in self.services.values()
            if s.name == "gateway"
        ]

    def service(self, label: str) -> Service:
        return self.services[label]

    async def start(self) -> None:
        """Start every service and wait until each says it is ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CHINWAG_")},
            **settings_env(self.settings),
            "CHINWAG_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
        scale = {"gateway": self.gateways, "fanout": self.fanouts}
        for spec in plan(self.settings, None, scale):
            env = {**base, **spec.env}
            if spec.label in self.proxied:
                proxy = Proxy("127.0.0.1", self.servers.nats.port)
                await proxy.open()
                self.proxies[spec.label] = proxy
                env["CHINWAG_NATS_URL"] = proxy.url()
            self.services[spec.label] = Service(
                spec.name,
                spec.label,
                env,
                self.workdir / f"{spec.label}.log",
                f"http://127.0.0.1:{spec.port or spec.ops_port}/readyz",
            )
        for service in self.services.values():
            await service.start()
        await self.wait_ready()

    async def wait_ready(self, labels: list[str] | None = None) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            await asyncio.gather(
                *(self.services[label].wait_ready(http) for label in labels or self.services)
            )

    async def restart(self, label: str) -> None:
        """Start a service that was killed, and wait until it is ready."""
        await self.services[label].start()
        await self.wait_ready([label])

    async def close(self) -> dict[str, int | None]:
        """Stop every service (the gateways first, then the workers); each one's exit code."""
        codes: dict[str, int | None] = {}
        for gateways in (True, False):
            group = [s for s in self.services.values() if (s.name == "gateway") == gateways]
            for service, code in zip(
                group, await asyncio.gather(*(s.stop() for s in group)), strict=True
            ):
                codes[service.label] = code
        for proxy in self.proxies.values():
            await proxy.close()
        return codes

    def log_lines(self, level: str = "error") -> list[str]:
        """Lines the services logged at ``level`` (JSON logs), for a run's report."""
        found = []
        needle = f'"level": "{level}"'
        for service in self.services.values():
            with contextlib.suppress(OSError):
                for line in service.log_path.read_text(errors="replace").splitlines():
                    if needle in line:
                        found.append(f"{service.label}: {line}")
        return found


def run_settings(database_url: str, nats_url: str, **overrides: Any) -> Settings:
    """Settings of a run: its own stream and subjects, limits out of the way."""
    tag = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "database_url": database_url,
        "nats_url": nats_url,
        "subject_prefix": f"f{tag}",
        "stream_name": f"F{tag}",
        "db_pool_size": 5,
        "command_rate": 1e6,
        "command_burst": 10**6,
        "login_rate": 1e6,
        "login_burst": 10**6,
        "log_level": "info",
        **overrides,
    }
    return Settings(**values)
