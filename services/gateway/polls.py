"""The long-poll, ``GET /api/v1/messages``: its answer, and its fast path.

It is the hottest route (a request per delivery while receivers keep up), and
FastAPI's dependency solving and middleware cost more than the rest of its
work. ``FastPolls`` wraps the app and answers it directly, with the documented
route's parameters, errors and metrics; every other request, and every request
while tracing is on (its server spans come from the framework), goes to the app.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from typing import Any, Protocol
from urllib.parse import parse_qsl

import asyncpg
import msgspec
import structlog
from prometheus_client import Counter, Gauge, Histogram
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from libs import db, errors, ops, telemetry
from libs.errors import ChatError
from libs.items import queue_item
from services.gateway import auth, store
from services.gateway.acks import Acknowledgements
from services.gateway.callers import Callers, Client
from services.gateway.ephemeral import EphemeralHub
from services.gateway.longpoll import Waiter, WaiterHub
from services.gateway.models import MAX_POSITION

log = structlog.get_logger(__name__)

PATH = "/api/v1/messages"
# The route's query parameters, as GET /api/v1/messages documents them (app.poll).
MAX_TIMEOUT = 60.0
MAX_LIMIT = 1000
DEFAULT_TIMEOUT = 15.0
DEFAULT_LIMIT = 100

_INTEGER = re.compile(r"-?[0-9]+")

WAITING = Gauge("chinwag_gateway_longpolls_waiting", "Long-polls parked on this gateway")
WAKE_TO_RESPONSE = Histogram(
    "chinwag_gateway_wake_to_response_seconds",
    "From a wake reaching a parked long-poll to its page being read",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)

READS_SKIPPED = Counter(
    "chinwag_gateway_longpoll_reads_skipped",
    "Long-polls that read no queue: parked level with its known tip, or answered from kept items",
    ["answer"],
)
_PARKED_UNREAD = READS_SKIPPED.labels("park")  # bound once: counted per delivery
_ANSWERED_KEPT = READS_SKIPPED.labels("kept")

_encoder = msgspec.json.Encoder()


class Polling(Protocol):
    """What answering a long-poll needs of the gateway."""

    pool: asyncpg.Pool[Any]
    hub: WaiterHub
    acks: Acknowledgements
    callers: Callers
    notices: EphemeralHub


async def answer(
    gw: Polling,
    client_id: uuid.UUID,
    session_id: uuid.UUID,
    after: int,
    timeout: float,
    limit: int,
    token_hash: bytes | None = None,
) -> bytes:
    """The JSON page of a client's queue after ``after``, waiting up to ``timeout`` s.

    With ``token_hash``, the poll also checks that the token is still the client's,
    and a revoked one is refused (401): in the statement that reads the queue, or,
    when the poll reads no queue (level with its client's tip it parks; finding
    what it lacks in the items wakes carried, it is answered from them; see
    ``longpoll``), by the statement that records the cursor finding the client's
    row gone: revoking a token deletes it.
    """
    waiter = gw.hub.register(str(client_id), after, limit)
    gw.notices.attach(client_id, session_id, waiter)  # typing notices answer it too
    acknowledged = gw.acks.record(client_id, after)
    WAITING.inc()
    try:
        rows: list[asyncpg.Record] = []
        bound: int | None = None  # the queue holds nothing past it, but what wakes bring
        tip = gw.hub.tip(waiter.client_id)
        kept = None if acknowledged is None else gw.hub.kept(waiter.client_id, after, limit)
        if acknowledged is not None and tip is not None and (tip <= after or kept is not None):
            # Level with the tip, or all it lacks kept from wakes: no read; the
            # statement recording the cursor checks the client is still there.
            (_PARKED_UNREAD if kept is None else _ANSWERED_KEPT).inc()
            if client_id not in await _written(acknowledged):
                raise _revoked(gw, waiter)
            bound = after
            if kept is not None:
                waiter.page = kept
        elif token_hash is None:
            rows = await store.queue_after(gw.pool, client_id, after, limit)
        else:
            checked = await store.queue_of_token(gw.pool, client_id, token_hash, after, limit)
            if checked is None:
                raise _revoked(gw, waiter)
            rows = checked
        if bound is None:
            bound = _bound(rows, after, limit)
        deadline = time.monotonic() + timeout
        while not rows and waiter.page is None and timeout > 0:
            if not await waiter.wait(deadline - time.monotonic()):
                bound = None  # a wake may have been lost: the next poll reads
                gw.hub.forget(waiter.client_id)
                break
            if waiter.page is not None:  # the wake carried all of the answer
                with telemetry.resumed("long-poll answer", waiter.woken_by) as span:
                    if span is not None:
                        span.set_attribute("chinwag.longpoll.answer", "wake")
                break
            # Woken by a recheck alone, a poll that finds nothing waits on; a wake
            # during the read sets the event again.
            rechecked = waiter.rechecked and waiter.woken_at is None
            waiter.rechecked, waiter.epoch = False, gw.hub.epoch  # watching since before the read
            if rechecked:
                waiter.event.clear()
            with telemetry.resumed("long-poll answer", waiter.woken_by):
                rows = await store.queue_after(gw.pool, client_id, after, limit)
            bound = _bound(rows, after, limit)
            if rows or not rechecked or gw.hub.closing or gw.notices.waiting(client_id):
                break
        if waiter.woken_at is not None:
            WAKE_TO_RESPONSE.observe(time.perf_counter() - waiter.woken_at)
        if bound is not None:
            gw.hub.learn(waiter, bound)
    finally:
        WAITING.dec()
        gw.hub.unregister(waiter)
    if acknowledged is not None:
        await _written(acknowledged)  # answered only once the cursor is recorded
    notices = gw.notices.drain(client_id)
    if rows or waiter.page is None:
        items = b",".join([queue_item(r) for r in rows])
        last_seq = rows[-1]["seq"] if rows else after
        page = b'{"messages":[%s],"last_seq":%d}' % (items, last_seq)
    else:
        page = waiter.page
    if not notices:
        return page
    return page[:-1] + b',"ephemeral":' + _encoder.encode(notices) + b"}"


def _bound(rows: list[asyncpg.Record], after: int, limit: int) -> int | None:
    """What a read of the queue after ``after`` says it holds nothing past: None when
    it filled its page, and more may follow."""
    if len(rows) >= limit:
        return None
    return int(rows[-1]["seq"]) if rows else after


def _revoked(gw: Polling, waiter: Waiter) -> ChatError:
    """The 401 of a poll whose token is no longer its client's."""
    gw.hub.forget(waiter.client_id)
    return errors.unauthorized()


async def _written(acknowledged: asyncio.Future[frozenset[uuid.UUID]]) -> frozenset[uuid.UUID]:
    """The clients a poll's acknowledgement wrote; a poll that stops waiting leaves the
    shared write alone."""
    if acknowledged.done():
        return acknowledged.result()
    return await asyncio.shield(acknowledged)


class FastPolls:
    """Answers ``GET /api/v1/messages`` in front of the app (see the module docstring)."""

    def __init__(self, app: ASGIApp, gateway: Any) -> None:
        self.app = app
        self.gateway = gateway  # () -> the opened gateway, or None before the lifespan ran
        self._requests = {
            status: ops.HTTP_REQUESTS.labels(PATH, "GET", str(status))
            for status in (200, 400, 401, 500)
        }
        self._seconds = ops.HTTP_SECONDS.labels(PATH, "GET")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gw: Polling | None = self.gateway() if scope["type"] == "http" else None
        if gw is None or scope["path"] != PATH or scope["method"] != "GET" or telemetry.enabled():
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        headers = [(b"content-type", b"application/json")]
        try:
            status, body = await self._answer(gw, scope)
        except ChatError as error:
            status, body = error.status, _error_json(error)
        except db.TRANSIENT as error:
            # As the app's handler does: the database is down, a clear 503, not a 500.
            log.warning("database unavailable", path=PATH, error=repr(error))
            unavailable = errors.unavailable("database unavailable; poll again")
            status, body = unavailable.status, _error_json(unavailable)
            headers.append((b"retry-after", b"1"))
        finally:
            counted = self._requests.get(status)
            if counted is None:
                counted = ops.HTTP_REQUESTS.labels(PATH, "GET", str(status))
            counted.inc()
            self._seconds.observe(time.perf_counter() - started)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, gw: Polling, scope: Scope) -> tuple[int, bytes]:
        token = _token(scope)
        if not token:
            raise errors.unauthorized()
        token_hash = auth.token_hash(token)
        known = gw.callers.client(token_hash)  # still valid? the queue read checks
        if known is None:
            caller = await gw.callers.caller(token_hash)
            if caller is None:
                raise errors.unauthorized()
            known = Client(caller.client_id, caller.session_id)
        after, timeout, limit = _parameters(scope["query_string"])
        page = await answer(
            gw, known.client_id, known.session_id, after, timeout, limit, token_hash
        )
        return 200, page


def _token(scope: Scope) -> str | None:
    """The bearer token, else the cookie's: as the route's security dependencies read them."""
    cookie = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            text: str = value.decode("latin-1")
            scheme, _, credentials = text.partition(" ")
            if scheme.lower() == "bearer" and credentials:
                return credentials
        elif name == b"cookie":
            cookie = str(cookie_parser(value.decode("latin-1")).get(auth.COOKIE) or "")
    return cookie or None


def _parameters(query: bytes) -> tuple[int, float, int]:
    """``after``, ``timeout`` and ``limit``, each checked as the documented route checks it."""
    decoded = query.decode("latin-1")
    if "%" in decoded or "+" in decoded:
        values = dict(parse_qsl(decoded, keep_blank_values=True))
    else:  # the usual ``after=N&timeout=T``: nothing to unquote
        values = dict(part.partition("=")[::2] for part in decoded.split("&") if part)
    after = _integer(values, "after", 0, 0, MAX_POSITION)
    limit = _integer(values, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    text = values.get("timeout")
    timeout = DEFAULT_TIMEOUT
    if text is not None:
        try:
            timeout = float(text)
        except ValueError:
            raise errors.validation("query.timeout: Input should be a valid number") from None
        if not math.isfinite(timeout) or not 0 <= timeout <= MAX_TIMEOUT:
            raise errors.validation(f"query.timeout: Input should be between 0 and {MAX_TIMEOUT:g}")
    return after, timeout, limit


def _integer(values: dict[str, str], name: str, default: int, least: int, most: int) -> int:
    text = values.get(name)
    if text is None:
        return default
    if len(text) > 20 or not _INTEGER.fullmatch(text):
        raise errors.validation(f"query.{name}: Input should be a valid integer")
    value = int(text)
    if value < least:
        raise errors.validation(f"query.{name}: Input should be greater than or equal to {least}")
    if value > most:
        raise errors.validation(f"query.{name}: Input should be less than or equal to {most}")
    return value


def _error_json(error: ChatError) -> bytes:
    return _encoder.encode(error.wire())
