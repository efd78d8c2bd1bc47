"""Operations over HTTP: the workers' probe server and the HTTP request metrics.

A worker (fanout, history, presence) has no public HTTP surface, so it serves
``/livez``, ``/readyz`` and ``/metrics`` on ``CHINWAG_OPS_PORT`` for Kubernetes
probes and Prometheus. Readiness fails, naming the check, when PostgreSQL,
NATS or the event stream cannot be reached — as on the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import structlog
import uvicorn
from nats.aio.client import Client as NATS
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.settings import Settings

log = structlog.get_logger(__name__)

READY_TIMEOUT = 2.0  # seconds each readiness check may take

HTTP_REQUESTS = Counter(
    "chinwag_http_requests_total",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "chinwag_http_request_duration_seconds",
    "Time to answer an HTTP request (a long-poll includes its wait), by route template",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]


class HttpMetrics:
    """Counts and times every HTTP request by its route template, never by its raw path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = route_template(scope)
            HTTP_REQUESTS.labels(route, scope["method"], str(status)).inc()
            HTTP_SECONDS.labels(route, scope["method"]).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/v1/channels/{name}``), or ``unmatched``."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else "unmatched"


async def readiness(
    pool: asyncpg.Pool[Any], nc: NATS, stream: str, timeout: float = READY_TIMEOUT
) -> dict[str, bool]:
    """Whether PostgreSQL answers, NATS is connected and the event stream exists."""
    checks = {"postgres": False, "nats": nc.is_connected, "stream": False}
    with contextlib.suppress(Exception):
        checks["postgres"] = await asyncio.wait_for(pool.fetchval("SELECT true"), timeout) is True
    if checks["nats"]:
        with contextlib.suppress(Exception):
            js = nc.jetstream(timeout=timeout)
            await asyncio.wait_for(js.stream_info(stream), timeout)
            checks["stream"] = True
    return checks


def probe_app(ready: ReadyCheck) -> Starlette:
    """``/livez`` (the process runs), ``/readyz`` (200, or 503 naming what failed), ``/metrics``."""

    async def livez(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks = await ready()
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/livez", livez, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )


class _Server(uvicorn.Server):
    """Signals belong to the service's own loop: it sets ``stop``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_app(app: ASGIApp, host: str, port: int) -> AsyncIterator[int]:
    """Serve ``app`` in the background while the block runs; yields the bound port.

    The socket is bound before the block starts, so a busy port fails here and
    a probe that arrives early waits in the backlog instead of being refused.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family)
    bound = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"ops-{bound}")
    try:
        yield bound
    finally:
        server.should_exit = True
        try:
            await task
        finally:
            sock.close()


@contextlib.asynccontextmanager
async def probe_server(settings: Settings, pool: asyncpg.Pool[Any], nc: NATS) -> AsyncIterator[int]:
    """A worker's probe and metrics server on ``ops_port``; yields the port (0: not serving)."""
    if settings.ops_port == 0:
        yield 0
        return

    async def ready() -> dict[str, bool]:
        return await readiness(pool, nc, settings.stream_name)

    async with serve_app(probe_app(ready), settings.http_host, settings.ops_port) as port:
        log.info("probes and metrics served", port=port)
        yield port
