"""An in-process chinwag for integration tests, and an API client that speaks to it.

Every service runs as an asyncio task against the real NATS and PostgreSQL;
the gateway serves real HTTP on a free port. Each test gets its own database,
stream and subject prefix, so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from prometheus_client import REGISTRY

from libs.embedded import free_port
from libs.settings import Settings
from services.fanout import app as fanout
from services.gateway import app as gateway
from services.gateway.app import expire_once, open_gateway
from services.history import app as history
from services.presence import app as presence

Service = Callable[[Settings, asyncio.Event], Coroutine[Any, Any, None]]

SERVICES: dict[str, Service] = {
    "presence": presence.run,
    "history": history.run,
    "gateway": gateway.run,
    "fanout": fanout.run,
}


@dataclass
class Running:
    task: asyncio.Task[None]
    stop: asyncio.Event


@dataclass
class System:
    """The four services, each startable and stoppable on its own."""

    settings: Settings
    running: dict[str, Running] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    def start(self, name: str, settings: Settings | None = None) -> None:
        """Start a service; ``fanout-2`` names a second instance of ``fanout``."""
        service = SERVICES[name.split("-")[0]]
        stop = asyncio.Event()
        task = asyncio.create_task(service(settings or self.settings, stop), name=name)
        self.running[name] = Running(task, stop)

    async def stop(self, name: str) -> None:
        running = self.running.pop(name)
        running.stop.set()
        await running.task

    async def crash(self, name: str) -> None:
        """Cancel a service mid-work: no clean shutdown, nothing more committed."""
        running = self.running.pop(name)
        running.task.cancel()
        with suppress(asyncio.CancelledError):
            await running.task

    async def stop_all(self) -> None:
        for name in list(self.running):
            await self.stop(name)

    async def wait_ready(self, deadline: float = 20.0, base_url: str | None = None) -> None:
        async with httpx.AsyncClient(base_url=base_url or self.base_url) as http:
            await until(lambda: _ready(http), deadline, "gateway ready")

    async def start_gateway(self, name: str, **overrides: Any) -> str:
        """Another gateway replica on the same NATS and PostgreSQL, with settings changed
        by ``overrides``; returns its base URL once it is ready."""
        port = free_port()
        self.start(name, self.settings.model_copy(update={"http_port": port, **overrides}))
        url = f"http://127.0.0.1:{port}"
        await self.wait_ready(base_url=url)
        return url

    @asynccontextmanager
    async def db(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection to this system's database, closed on leaving."""
        conn = await asyncpg.connect(self.settings.dsn())
        try:
            yield conn
        finally:
            await conn.close()

    async def expire_idle(self, *idle: ApiClient, sweeps: int = 1) -> list[int]:
        """Age the ``idle`` clients by two days, then run the expiry sweep ``sweeps`` times
        in a gateway of its own; returns how many clients each sweep expired."""
        async with self.db() as conn:
            await conn.execute(
                "UPDATE identity.clients SET last_seen = now() - interval '2 days'"
                " WHERE id = ANY($1::uuid[])",
                [client.client_id for client in idle],
            )
        async with AsyncExitStack() as stack:
            sweeper = await stack.enter_async_context(open_gateway(self.settings))
            return [await expire_once(sweeper) for _ in range(sweeps)]


async def _ready(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/readyz")).status_code == 200
    except httpx.TransportError:
        return False


async def until(
    check: Callable[[], Awaitable[bool]], deadline: float, what: str, every: float = 0.02
) -> None:
    """Poll a condition until it holds; fail with ``what`` after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not await check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


def polls_waiting() -> float:
    """Long-polls parked now in this process's gateways (they share one registry)."""
    return REGISTRY.get_sample_value("chinwag_gateway_longpolls_waiting") or 0.0


async def until_parked(before: float, what: str, deadline: float = 10.0) -> None:
    """Wait until more long-polls are parked than the ``before`` read from polls_waiting."""

    async def more() -> bool:
        return polls_waiting() > before

    await until(more, deadline, what)


class ApiClient:
    """One client (device) of a session, speaking the public HTTP API."""

    def __init__(self, base_url: str, token: str, nick: str, session_id: str, client_id: str):
        self.http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=70
        )
        self.token = token
        self.nick = nick
        self.session_id = session_id
        self.client_id = client_id
        self.seen = 0
        self.items: list[dict[str, Any]] = []

    @classmethod
    async def create(cls, base_url: str, nick: str, password: str | None = None) -> ApiClient:
        async with httpx.AsyncClient(base_url=base_url) as http:
            body: dict[str, Any] = {"nick": nick}
            if password:
                body["password"] = password
            response = await http.post("/api/v1/session", json=body)
            assert response.status_code == 201, response.text
            data = response.json()
        return cls(base_url, data["token"], nick, data["session_id"], data["client_id"])

    @classmethod
    async def login(cls, base_url: str, nick: str, password: str) -> ApiClient:
        async with httpx.AsyncClient(base_url=base_url) as http:
            response = await http.post("/api/v1/login", json={"nick": nick, "password": password})
            assert response.status_code == 200, response.text
            data = response.json()
        return cls(base_url, data["token"], data["nick"], data["session_id"], data["client_id"])

    async def close(self) -> None:
        await self.http.aclose()

    async def command(self, command: str, key: str | None = None, **fields: Any) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else {}
        return await self.http.post(
            "/api/v1/messages", json={"command": command, **fields}, headers=headers
        )

    async def ok(self, command: str, key: str | None = None, **fields: Any) -> dict[str, Any]:
        response = await self.command(command, key, **fields)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def join(self, channel: str) -> dict[str, Any]:
        return await self.ok("JOIN", to=channel)

    async def part(self, channel: str) -> dict[str, Any]:
        return await self.ok("PART", to=channel)

    async def say(self, to: str, text: str, key: str | None = None) -> dict[str, Any]:
        return await self.ok("PRIVMSG", key=key, to=to, body=[text])

    async def poll(self, after: int | None = None, timeout: float = 0, limit: int = 1000) -> Any:
        after = self.seen if after is None else after
        response = await self.http.get(
            "/api/v1/messages", params={"after": after, "timeout": timeout, "limit": limit}
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def parked(
        self, after: int | None = None, timeout: float = 30
    ) -> asyncio.Task[httpx.Response]:
        """A long-poll of this client's queue, started and parked on a gateway of this
        process: its task, answered with the raw response."""
        waiting = polls_waiting()
        params = {"after": self.seen if after is None else after, "timeout": timeout}
        task = asyncio.create_task(self.http.get("/api/v1/messages", params=params))
        await until_parked(waiting, f"{self.nick}'s poll to park")
        return task

    async def receive(self, count: int, deadline: float = 20.0) -> list[dict[str, Any]]:
        """Long-poll until ``count`` more items have arrived; checks seq is gap-free."""
        got: list[dict[str, Any]] = []
        end = time.monotonic() + deadline
        while len(got) < count:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{self.nick}: got {len(got)} of {count} items: {[i['body'] for i in got]}"
                )
            page = await self.poll(timeout=min(left, 10))
            for item in page["messages"]:
                assert item["seq"] == self.seen + 1, (
                    f"gap or repeat: {item['seq']} after {self.seen}"
                )
                self.seen = item["seq"]
                got.append(item)
        self.items.extend(got)
        return got

    async def receive_until(
        self, predicate: Callable[[dict[str, Any]], bool], deadline: float = 20.0
    ) -> list[dict[str, Any]]:
        """Long-poll until an item matching ``predicate`` arrives; returns all received."""
        got: list[dict[str, Any]] = []
        end = time.monotonic() + deadline
        while not any(predicate(i) for i in got):
            if time.monotonic() > end:
                raise AssertionError(f"{self.nick}: no matching item in {got}")
            got.extend(await self.receive(1, deadline=end - time.monotonic()))
        return got

    async def nothing_more(self) -> None:
        page = await self.poll(timeout=0)
        assert page["messages"] == [], page


async def people(system: System, *nicks: str) -> list[ApiClient]:
    """A new session for each nick, on the system's gateway."""
    return [await ApiClient.create(system.base_url, nick) for nick in nicks]


async def close(*clients: ApiClient) -> None:
    for client in clients:
        await client.close()


async def refused(
    client: ApiClient, status: int, code: str, command: str, **fields: Any
) -> dict[str, Any]:
    """Send a command that must fail with ``status`` and ``code``; returns the error."""
    response = await client.command(command, **fields)
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


def numerics(answer: dict[str, Any]) -> list[tuple[str, list[str], list[str]]]:
    """A command's replies as (command, params, body)."""
    return [(r["command"], r["params"], r["body"]) for r in answer["replies"]]


def texts(items: list[dict[str, Any]], command: str = "PRIVMSG") -> list[str]:
    return [i["body"][0] for i in items if i["command"] == command]


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def open_system(stack: AsyncExitStack, settings: Settings) -> System:
    """Start all four services and wait until the gateway is ready."""
    system = System(settings)
    stack.push_async_callback(system.stop_all)
    for name in ("presence", "history", "fanout", "gateway"):
        system.start(name)
    await system.wait_ready()
    return system


def test_settings(infra_nats: str, database_url: str, **overrides: Any) -> Settings:
    tag = uuid.uuid4().hex[:12]
    values: dict[str, Any] = {
        "database_url": database_url,
        "nats_url": infra_nats,
        "subject_prefix": f"t{tag}",
        "stream_name": f"T{tag}",
        "http_port": free_port(),
        "partitions": 4,
        "db_pool_size": 5,
        "command_rate": 10_000.0,
        "command_burst": 10_000,
        **overrides,
    }
    return Settings(**values)
