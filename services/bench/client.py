"""The load generator's HTTP client: msgspec decoding; aiohttp, and lean lines.

httpx's pool tops out near 550 requests/s here (REFERENCE.md). aiohttp's client
with an unlimited connector carries the setup and the rare requests, but it
spends about three times what uvicorn does on a request (the ceilings scenario
measures both), so long-polls and commands, the bulk of every scenario's
requests, go over ``Line``s: keep-alive HTTP/1.1 connections on asyncio
streams, two per member, as a device would hold them (the fault runs'
idempotent attempts stay on aiohttp).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec

WAITING_METRIC = "chinwag_gateway_longpolls_waiting"
# Below uvicorn's 5 s keep-alive timeout, so that a request never goes out on a
# connection the server is closing at that moment.
KEEPALIVE = 3.0
POLL_ATTEMPTS = 3  # a poll is safe to repeat: the same cursor gets the same items
NO_GAUGE_PAUSE = 2.0  # seconds given to park long-polls when the gateway does not count them


class BenchError(Exception):
    """The system under test answered something a benchmark cannot go on from."""


class Item(msgspec.Struct):
    """The fields of a queue item the checks need; the rest is skipped unparsed."""

    seq: int
    id: str
    command: str
    meta: dict[str, Any] = {}
    to: str = ""
    from_: str = msgspec.field(name="from", default="")
    pos: int = 0


class Page(msgspec.Struct):
    messages: list[Item]
    last_seq: int


class _Created(msgspec.Struct):
    session_id: str
    client_id: str
    nick: str
    token: str


class _Answer(msgspec.Struct):
    id: str


def answer_id(data: bytes) -> str:
    """The event id in a 200 answer to a command."""
    return _answer.decode(data).id


_page = msgspec.json.Decoder(Page)
_created = msgspec.json.Decoder(_Created)
_answer = msgspec.json.Decoder(_Answer)
_encode = msgspec.json.Encoder().encode
_JSON = {"Content-Type": "application/json"}
_LENGTH = re.compile(rb"(?i)\r\ncontent-length:[ \t]*(\d+)")
_CLOSE = re.compile(rb"(?i)\r\nconnection:[ \t]*close")
_RETRY_AFTER = re.compile(rb"(?i)\r\nretry-after:[ \t]*([0-9.]+)")
_JSON_LINE = "Content-Type: application/json\r\n"


@asynccontextmanager
async def session(
    read_timeout: float, connect_timeout: float = 30.0
) -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session for many members at once: no connection limit, and
    connections closed before the server's keep-alive timeout would close them."""
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE)
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=connect_timeout, sock_read=read_timeout
    )
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        yield http


@dataclass
class Member:
    """One client of one session, and the last seq the benchmark has seen in its queue."""

    nick: str
    token: str
    session_id: str
    client_id: str
    seen: int = 0
    headers: dict[str, str] = field(init=False, repr=False)
    auth: str = field(init=False, repr=False)  # the same as a raw header line

    def __post_init__(self) -> None:
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.auth = f"Authorization: Bearer {self.token}\r\n"


@dataclass(frozen=True)
class Sent:
    """A command the gateway accepted (2xx), and when its answer arrived."""

    id: str
    answered_at: float


class Rejected(BenchError):
    """A command answered 429: the caller may retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited; retry after {retry_after} s")
        self.retry_after = retry_after


class Line:
    """One keep-alive HTTP/1.1 connection, on asyncio streams.

    Opened on first use and again after ``KEEPALIVE`` seconds unused (the
    server may be closing it). Any failure mid-request closes it and raises
    ``ConnectionError``: the next request opens a new one.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._host = f"Host: {host}:{port}\r\n"
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._used = 0.0

    async def get(self, target: str, headers: str = "") -> tuple[int, bytes]:
        """``GET target`` with ``headers`` (raw lines, each ending CRLF): status and body."""
        status, _, body = await self.request("GET", target, headers)
        return status, body

    async def request(
        self, method: str, target: str, headers: str = "", body: bytes = b""
    ) -> tuple[int, bytes, bytes]:
        """One request: the answer's status, head (status line and headers) and body."""
        if self._streams is not None and time.monotonic() - self._used > KEEPALIVE:
            self.close()
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        if body:
            headers = f"{headers}Content-Length: {len(body)}\r\n"
        request = f"{method} {target} HTTP/1.1\r\n{self._host}{headers}\r\n"
        try:
            writer.write(request.encode() + body)
            head = await reader.readuntil(b"\r\n\r\n")
            length = _LENGTH.search(head)
            if length is None:
                raise BenchError(f"an answer without content-length: {head[:200]!r}")
            answer = await reader.readexactly(int(length[1]))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            self.close()
            raise ConnectionError(f"{method} {target}: {error!r}") from error
        except BaseException:
            self.close()  # cancelled, timed out or refused mid-answer: the line's state is unknown
            raise
        if _CLOSE.search(head):
            self.close()
        self._used = time.monotonic()
        return int(head[9:12]), head, answer

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


class Api:
    """The public HTTP API of one gateway, spoken by many members over one aiohttp
    session; each member's long-polls and ``command``s go over two ``Line``s of its own."""

    def __init__(self, base_url: str, http: aiohttp.ClientSession) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.read_timeout = http.timeout.sock_read or 90.0  # the lines wait as the session does
        self.poll_retries = 0  # polls repeated after a dropped connection
        parts = urlsplit(self.base_url)
        self._address = parts.hostname or "127.0.0.1", parts.port or 80
        self._lines: dict[tuple[str, bool], Line] = {}  # (client id, polls?) → its line

    @classmethod
    @asynccontextmanager
    async def open(cls, base_url: str, read_timeout: float = 90.0) -> AsyncIterator[Api]:
        async with session(read_timeout) as http:
            api = cls(base_url, http)
            try:
                yield api
            finally:
                api.close()

    def _line(self, member: Member, polls: bool) -> Line:
        """``member``'s line for its long-polls, or the one for its commands."""
        line = self._lines.get((member.client_id, polls))
        if line is None:
            line = self._lines[member.client_id, polls] = Line(*self._address)
        return line

    def hang_up(self, member: Member) -> None:
        """Close ``member``'s lines: it polls and sends no more (logged out, or done)."""
        for polls in (True, False):
            line = self._lines.pop((member.client_id, polls), None)
            if line is not None:
                line.close()

    def close(self) -> None:
        """Close every member's lines."""
        for line in self._lines.values():
            line.close()
        self._lines.clear()

    async def ready(self) -> bool:
        """Whether the gateway answers ``/readyz`` with 200."""
        try:
            async with self.http.get(f"{self.base_url}/readyz") as response:
                await response.read()
                return response.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    async def wait_ready(self, deadline: float = 60.0) -> None:
        end = time.monotonic() + deadline
        while not await self.ready():
            if time.monotonic() > end:
                raise BenchError(f"the gateway at {self.base_url} was not ready in {deadline} s")
            await asyncio.sleep(0.1)

    async def create_session(self, nick: str, password: str | None = None) -> Member:
        fields = {"nick": nick} if password is None else {"nick": nick, "password": password}
        return await self._signed_in("/session", fields, 201)

    async def login(self, nick: str, password: str) -> Member:
        """Another client (device) of a session that has a password."""
        return await self._signed_in("/login", {"nick": nick, "password": password}, 200)

    async def _signed_in(self, path: str, fields: dict[str, str], expected: int) -> Member:
        """The new client that ``POST path`` answers with ``expected``."""
        async with self.http.post(
            f"{self.base_url}/api/v1{path}", data=_encode(fields), headers=_JSON
        ) as response:
            data = await response.read()
            if response.status != expected:
                raise BenchError(f"POST {path} {fields['nick']}: {response.status} {data[:300]!r}")
        created = _created.decode(data)
        return Member(created.nick, created.token, created.session_id, created.client_id)

    async def attempt(
        self, member: Member, payload: dict[str, Any], key: str, timeout: float
    ) -> tuple[int, bytes]:
        """Post one command with an idempotency key: its status and body, nothing judged.

        A dropped connection or a timeout raises (aiohttp.ClientError, OSError,
        TimeoutError): the outcome is then unknown.
        """
        async with self.http.post(
            f"{self.base_url}/api/v1/messages",
            data=_encode(payload),
            headers={**member.headers, **_JSON, "Idempotency-Key": key},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            return response.status, await response.read()

    async def command(
        self,
        member: Member,
        command: str,
        to: str | None = None,
        body: list[str] | None = None,
        meta: dict[str, Any] | None = None,
        params: list[str] | None = None,
    ) -> Sent:
        """Post one command; raises ``Rejected`` on 429 and ``BenchError`` on any other refusal."""
        payload: dict[str, Any] = {"command": command}
        if to is not None:
            payload["to"] = to
        if params is not None:
            payload["params"] = params
        if body is not None:
            payload["body"] = body
        if meta is not None:
            payload["meta"] = meta
        line = self._line(member, polls=False)
        async with asyncio.timeout(self.read_timeout):
            status, head, data = await line.request(
                "POST", "/api/v1/messages", member.auth + _JSON_LINE, _encode(payload)
            )
        answered = time.monotonic()
        if status == 429:
            retry_after = _RETRY_AFTER.search(head)
            raise Rejected(float(retry_after[1]) if retry_after else 0.1)
        if status != 200:
            raise BenchError(f"{command} {to or ''} by {member.nick}: {status} {data[:300]!r}")
        return Sent(_answer.decode(data).id, answered)

    async def poll(self, member: Member, after: int, timeout: float, limit: int = 1000) -> Page:
        """One long-poll of ``member``'s queue, repeated if its connection drops or
        the answer is later than the read timeout."""
        line = self._line(member, polls=True)
        target = f"/api/v1/messages?after={after}&timeout={timeout:g}&limit={limit}"
        for attempt in range(1, POLL_ATTEMPTS + 1):
            try:
                async with asyncio.timeout(self.read_timeout):
                    status, data = await line.get(target, member.auth)
                if status != 200:
                    raise BenchError(f"poll by {member.nick}: {status} {data[:300]!r}")
                return _page.decode(data)
            except OSError as error:  # ConnectionError and TimeoutError among them
                if attempt == POLL_ATTEMPTS:
                    raise BenchError(f"poll by {member.nick}: {error!r}") from error
                self.poll_retries += 1
        raise AssertionError("unreachable")

    async def waiting(self) -> int | None:
        """Long-polls the gateway holds, from its metrics; None when it does not say."""
        try:
            async with self.http.get(f"{self.base_url}/metrics/") as response:
                text = await response.text()
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None
        for line in text.splitlines():
            if line.startswith(WAITING_METRIC + " ") or line.startswith(WAITING_METRIC + "{"):
                return int(float(line.rsplit(" ", 1)[1]))
        return None

    async def wait_waiting(self, at_least: int, deadline: float) -> float:
        """Wait until the gateway holds ``at_least`` long-polls; the seconds it took."""
        start = time.monotonic()
        while True:
            held = await self.waiting()
            if held is None:
                raise BenchError(f"the gateway's /metrics has no {WAITING_METRIC} gauge")
            if held >= at_least:
                return time.monotonic() - start
            if time.monotonic() - start > deadline:
                raise BenchError(
                    f"the gateway holds {held} long-polls, not {at_least}, after {deadline} s"
                )
            await asyncio.sleep(0.05)

    async def settle(self, base: int | None, count: int, deadline: float) -> float:
        """Wait until ``count`` more long-polls than ``base`` are parked; the seconds it took.

        ``base`` is the gauge before the polls were opened; None means the
        gateway does not report it, and a pause stands in for the wait.
        """
        if base is None:
            await asyncio.sleep(NO_GAUGE_PAUSE)
            return NO_GAUGE_PAUSE
        return await self.wait_waiting(base + count, deadline)
