"""The gateway: chinwag's only public HTTP surface (API v1, probes, metrics)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import msgspec
import nats.errors
import structlog
import uvicorn
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from prometheus_client import Counter, make_asgi_app
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from libs import bus, db, errors, lifecycle, ops, rpc, telemetry
from libs.contracts import HISTORY, HistoryRequest, HistoryResult
from libs.errors import ChatError
from libs.events import SessionCreated, new_event_id, utcnow
from libs.irc import fold, valid_nick
from libs.items import rfc3339
from libs.lifecycle import sleep_unless
from libs.outbox import Outbox
from libs.settings import Settings
from libs.subjects import Subjects
from services.gateway import auth, ephemeral, feature_store, gauges, polls, stamps, store, wire
from services.gateway.acks import Acknowledgements
from services.gateway.bodylimit import BodyLimit
from services.gateway.callers import Callers
from services.gateway.commands import VERSION, Command, Commands, prefix
from services.gateway.longpoll import WaiterHub
from services.gateway.models import (
    MAX_KEY,
    ChallengeOut,
    ChannelOut,
    ChannelsOut,
    ChannelSummary,
    CommandIn,
    CommandOut,
    ErrorOut,
    HealthOut,
    HistoryOut,
    LoginIn,
    MemberOut,
    MembersOut,
    MessagesOut,
    PathName,
    Position,
    QueryTarget,
    ServerOut,
    SessionIn,
    SessionOut,
    StateOut,
    StatusOut,
    UserOut,
    command_request_body,
)
from services.gateway.store import Caller

log = structlog.get_logger(__name__)

WEB_DIR = Path(__file__).parent / "web"
# The web client loads nothing but its own files and talks to nothing but this server.
WEB_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

SENDS = Counter("chinwag_gateway_commands_total", "Commands answered", ["command", "status"])
ACCEPTED = Counter(
    "chinwag_gateway_sends_accepted_total", "Commands accepted (200), by command", ["command"]
)
_encoder = msgspec.json.Encoder()


@dataclass
class Gateway:
    """What the routes share: connections, the waiter hub and the command executor."""

    settings: Settings
    pool: asyncpg.Pool[Any]
    nc: NATS
    js: JetStreamContext
    hub: WaiterHub
    acks: Acknowledgements
    callers: Callers
    commands: Commands
    logins: auth.RateLimiter
    commands_limiter: auth.RateLimiter
    challenges: stamps.Challenges
    notices: ephemeral.EphemeralHub = field(default_factory=ephemeral.EphemeralHub)

    @property
    def outbox(self) -> Outbox:
        return self.commands.outbox


async def _state(request: Request) -> Gateway:
    # async: a plain function dependency would be run in the thread pool, one hop per request.
    gateway: Gateway = request.app.state.gateway
    return gateway


_bearer = HTTPBearer(auto_error=False)
_cookie = APIKeyCookie(name=auth.COOKIE, auto_error=False)


async def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> bytes:
    """The hash of the request's token (bearer, else cookie), not yet checked."""
    token = credentials.credentials if credentials else cookie
    if not token:
        raise errors.unauthorized()
    return auth.token_hash(token)


TokenDep = Annotated[bytes, Depends(bearer_token)]


async def current_caller(request: Request, token_hash: TokenDep) -> Caller:
    gateway: Gateway = request.app.state.gateway
    caller = await gateway.callers.caller(token_hash)
    if caller is None:
        raise errors.unauthorized()
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
GatewayDep = Annotated[Gateway, Depends(_state)]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}


def create_app(settings: Settings, gateway: Gateway | None = None) -> FastAPI:
    """The ASGI app; connections are opened by the lifespan unless ``gateway`` is given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if gateway is not None:
            app.state.gateway = gateway
            yield
            return
        async with open_gateway(settings) as opened:
            app.state.gateway = opened
            lifecycle.started()
            yield

    app = FastAPI(
        title="chinwag",
        version="1",
        summary="An IRC-inspired chat server over HTTP+JSON",
        lifespan=lifespan,
        responses=ERRORS,
    )
    app.add_middleware(BodyLimit, limit=settings.max_message_bytes)
    app.add_middleware(ops.HttpMetrics)
    telemetry.instrument_app(app)
    _install_error_handlers(app)
    _install_routes(app)
    from services.gateway import feature_routes  # it imports this module's dependencies

    app.include_router(feature_routes.router)
    app.mount("/metrics", make_asgi_app())
    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")

    @app.get("/", include_in_schema=False)
    async def web_client() -> FileResponse:
        """The web client's page; its scripts and styles are under ``/web``."""
        return FileResponse(WEB_DIR / "index.html", headers=WEB_HEADERS)

    return app


@asynccontextmanager
async def open_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    """Connect to PostgreSQL and NATS, subscribe to wakes; close it all on exit."""
    async with AsyncExitStack() as stack:
        pool = await db.service_pool(settings, "gateway")
        stack.push_async_callback(pool.close)
        hub = WaiterHub()

        async def reconnected() -> None:
            hub.lost()  # wakes published while the link was down never came ...
            with contextlib.suppress(nats.errors.Error):
                await nc.flush()  # ... the renewed subscription is at the server ...
            hub.heard_now(time.monotonic())  # ... and they reach us again: every parked poll reads

        nc = await bus.connect(settings.nats(), "chinwag-gateway", reconnected, hub.lost)
        stack.push_async_callback(nc.drain)
        js = nc.jetstream()
        await bus.ensure_stream(js, settings)
        subjects = Subjects(settings.subject_prefix, settings.partitions)

        async def on_wake(msg: Any) -> None:
            with telemetry.consuming(msg.subject, msg.headers):
                hub.on_wake_message(msg.data)

        await nc.subscribe(subjects.wake, cb=on_wake)
        await nc.flush()  # subscribed at the server before any poll relies on wakes
        gateway = Gateway(
            settings=settings,
            pool=pool,
            nc=nc,
            js=js,
            hub=hub,
            acks=Acknowledgements(pool),
            callers=Callers(pool),
            commands=Commands(pool, nc, js, settings),
            logins=auth.RateLimiter(settings.login_rate, settings.login_burst),
            commands_limiter=auth.RateLimiter(settings.command_rate, settings.command_burst),
            challenges=stamps.Challenges(
                await store.server_key(pool, "session-challenge", secrets.token_bytes(32)),
                settings.session_pow_bits,
            ),
        )

        async def on_notice(msg: Any) -> None:
            gateway.notices.on_message(msg.data)

        await nc.subscribe(ephemeral.subject(subjects), cb=on_notice)
        stop = asyncio.Event()
        background = [
            asyncio.create_task(gateway.outbox.relay(pool, js, stop)),
            asyncio.create_task(_prune_keys(pool, settings.idempotency_ttl, stop)),
            asyncio.create_task(_expire_sessions(gateway, stop)),
            asyncio.create_task(gauges.watch_counts(pool, stop)),
            asyncio.create_task(hub.watch(stop)),
        ]
        try:
            yield gateway
        finally:
            hub.close()
            stop.set()
            await asyncio.gather(*background)


# What one sweep of session expiry may fail with; the next sweep tries again.
_SWEEP_ERRORS: tuple[type[Exception], ...] = (*db.ERRORS, ChatError)


async def _expire_sessions(gw: Gateway, stop: asyncio.Event, interval: float = 30.0) -> None:
    """Delete clients idle past the timeout; end sessions left without clients."""
    while not stop.is_set():
        try:
            await expire_once(gw)
        except _SWEEP_ERRORS as error:
            log.warning("session expiry failed", error=repr(error))
        await sleep_unless(stop, interval)


async def expire_once(gw: Gateway) -> int:
    """One sweep of session expiry; returns how many sessions it ended."""
    timeout = gw.settings.session_idle_timeout
    await store.delete_idle_clients(gw.pool, timeout)
    ended = 0
    for row in await store.sessions_without_clients(gw.pool, limit=500):
        await gw.commands.end_session(row["id"], row["nick"], new_event_id(), ["expired"])
        ended += 1
    return ended


async def _prune_keys(
    pool: asyncpg.Pool[Any], ttl: float, stop: asyncio.Event, interval: float = 60.0
) -> None:
    while not stop.is_set():
        try:
            await store.prune_idempotency(pool, ttl)
        except db.ERRORS as error:
            log.warning("idempotency pruning failed", error=repr(error))
        await sleep_unless(stop, interval)


def _install_error_handlers(app: FastAPI) -> None:
    async def unavailable(request: Request, error: Exception) -> JSONResponse:
        # The database (or the link to it) is down: a clear 503, not a 500 with a trace.
        # A send's outcome is then unknown, and its retry with the same key is safe.
        log.warning("database unavailable", path=request.url.path, error=repr(error))
        return error_response(
            errors.unavailable("database unavailable; retry with the same Idempotency-Key"),
            {"Retry-After": "1"},
        )

    for kind in db.TRANSIENT:
        app.add_exception_handler(kind, unavailable)

    @app.exception_handler(ChatError)
    async def chat_error(request: Request, error: ChatError) -> JSONResponse:
        headers = {}
        if error.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(error.retry_after)))
        return error_response(error, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in error.errors()[:5]
        )
        return error_response(errors.validation(problems or "invalid request"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "ERR_NOT_FOUND", 405: "ERR_METHOD_NOT_ALLOWED"}.get(
            error.status_code, "ERR_HTTP"
        )
        return error_response(
            ChatError(error.status_code, code, str(error.detail)), dict(error.headers or {})
        )


def error_response(error: ChatError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.wire(), status_code=error.status, headers=headers)


def _install_routes(app: FastAPI) -> None:
    @app.post("/api/v1/session", status_code=201, response_model=SessionOut, tags=["session"])
    async def create_session(
        body: SessionIn, request: Request, response: Response, gw: GatewayDep
    ) -> SessionOut:
        """Create a session (an identity) and its first client."""
        if not valid_nick(body.nick):
            raise errors.erroneous_nick(body.nick)
        paid = gw.challenges.check(body.stamp)
        session_id, client_id, token = uuid.uuid4(), uuid.uuid4(), auth.new_token()
        password_hash = (
            await asyncio.to_thread(auth.hash_password, body.password) if body.password else None
        )
        event = SessionCreated(
            event_id=new_event_id(), ts=utcnow(), session_id=session_id, nick=body.nick
        )
        async with gw.pool.acquire() as conn, conn.transaction():
            if paid and not await store.spend_challenge(conn, paid.challenge, paid.expires):
                raise stamps.refused("this challenge has already bought a session: solve a new one")
            try:
                await store.create_session(
                    conn, session_id, body.nick, fold(body.nick), password_hash
                )
            except store.NickInUse:
                raise errors.nick_in_use(body.nick) from None
            await store.create_client(
                conn, client_id, session_id, auth.token_hash(token), _user_agent(request)
            )
            await gw.outbox.add(conn, [event])
        with contextlib.suppress(Exception):  # the relay publishes it later
            await gw.outbox.flush(gw.pool, gw.js, event.target)
        _set_cookie(response, token)
        return SessionOut(session_id=session_id, client_id=client_id, nick=body.nick, token=token)

    @app.get("/api/v1/challenge", response_model=ChallengeOut, tags=["session"])
    async def challenge(gw: GatewayDep) -> ChallengeOut:
        """A proof-of-work challenge for ``POST /api/v1/session`` (``bits`` 0: none needed)."""
        issued = gw.challenges.issue()
        expires = datetime.fromtimestamp(issued.expires, UTC)
        return ChallengeOut(challenge=issued.text, bits=issued.bits, expires_at=rfc3339(expires))

    @app.post("/api/v1/login", response_model=SessionOut, tags=["session"])
    async def login(
        body: LoginIn, request: Request, response: Response, gw: GatewayDep
    ) -> SessionOut:
        """Log a new client into an existing session that has a password."""
        wait = gw.logins.take(request.client.host if request.client else "?")
        if wait:
            raise errors.rate_limited(wait)
        row = await store.session_for_login(gw.pool, fold(body.nick))
        stored = row["password_hash"] if row else None
        if not await asyncio.to_thread(auth.verify_password, stored, body.password):
            raise errors.password_mismatch()
        assert row is not None
        client_id, token = uuid.uuid4(), auth.new_token()
        await store.create_client(
            gw.pool, client_id, row["id"], auth.token_hash(token), _user_agent(request)
        )
        _set_cookie(response, token)
        return SessionOut(session_id=row["id"], client_id=client_id, nick=row["nick"], token=token)

    @app.post("/api/v1/logout", response_model=StatusOut, tags=["session"])
    async def logout(caller: CallerDep, response: Response, gw: GatewayDep) -> StatusOut:
        """Revoke this client's token; the session and its other clients are untouched."""
        await store.delete_client(gw.pool, caller.client_id)
        if not await store.has_clients(gw.pool, caller.session_id):
            await gw.commands.end_session(
                caller.session_id, caller.nick, new_event_id(), ["logged out"]
            )
        response.delete_cookie(auth.COOKIE)
        return StatusOut(status="ok")

    @app.get("/api/v1/state", response_model=StateOut, tags=["session"])
    async def state(caller: CallerDep, gw: GatewayDep) -> StateOut:
        """This client's session, channels, away state and the last seq of its queue."""
        channels, away, last, unread = await asyncio.gather(
            store.channels_of(gw.pool, caller.session_id),
            store.away_of(gw.pool, caller.session_id),
            store.last_seq(gw.pool, caller.client_id),
            feature_store.unread(gw.pool, caller.session_id, gw.settings.max_history),
        )
        return StateOut(
            session_id=caller.session_id,
            client_id=caller.client_id,
            nick=caller.nick,
            channels=channels,
            away=away,
            last_seq=last,
            unread={r["name"]: r["unread"] for r in unread},
            read={r["name"]: r["marker"] for r in unread if r["marker"] is not None},
        )

    @app.post(
        "/api/v1/messages",
        response_model=CommandOut,
        tags=["messages"],
        openapi_extra={
            "requestBody": command_request_body(),
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "maxLength": MAX_KEY},
                }
            ],
        },
    )
    async def post_message(request: Request, token_hash: TokenDep, gw: GatewayDep) -> Response:
        """Send one command. An ``Idempotency-Key`` header makes a retry safe."""
        known = gw.callers.client(token_hash)
        if known is None:
            caller = await current_caller(request, token_hash)
        try:
            body = CommandIn.model_validate_json(await request.body())
        except ValidationError as error:
            raise RequestValidationError(error.errors()) from None
        key = request.headers.get("idempotency-key") or body.idempotency_key
        if key is not None and len(key) > MAX_KEY:
            raise errors.validation(f"an idempotency key has at most {MAX_KEY} characters")
        command = Command(
            command=body.command.upper(),
            to=body.to,
            params=body.params,
            body=body.body,
            meta=body.meta,
        )
        if known is not None:
            if key is None and gw.commands.checks_token(command):
                # The command's first statement checks the token: one round trip less.
                caller = Caller(known.client_id, known.session_id, "", token_hash)
            else:
                caller = await current_caller(request, token_hash)
        wait = gw.commands_limiter.take(str(caller.client_id))
        if wait:
            raise errors.rate_limited(wait)
        status, payload = await _execute_once(gw, caller, command, key)
        # Only known commands become label values: a client cannot mint metric series.
        label = command.command if gw.commands.knows(command.command) else "other"
        SENDS.labels(label, str(status)).inc()
        if status == 200:
            ACCEPTED.labels(command.command).inc()
        if status >= 400:
            return JSONResponse(payload, status_code=status)
        return Response(_encoder.encode(payload), media_type="application/json")

    @app.get("/api/v1/messages", response_model=MessagesOut, tags=["messages"])
    async def poll(
        caller: CallerDep,
        gw: GatewayDep,
        after: Position = 0,
        timeout: Annotated[float, Query(ge=0, le=polls.MAX_TIMEOUT)] = polls.DEFAULT_TIMEOUT,
        limit: Annotated[int, Query(ge=1, le=polls.MAX_LIMIT)] = polls.DEFAULT_LIMIT,
    ) -> Response:
        """Items of this client's queue with seq > ``after``, waiting up to ``timeout`` s.

        Served by ``polls.FastPolls`` in front of the framework unless tracing is on."""
        page = await polls.answer(gw, caller.client_id, caller.session_id, after, timeout, limit)
        return Response(page, media_type="application/json")

    @app.get("/api/v1/history", response_model=HistoryOut, tags=["messages"])
    async def history(
        caller: CallerDep,
        gw: GatewayDep,
        target: QueryTarget,
        before: Position | None = None,
        after: Position | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Response:
        """A page of a channel's or DM's history, oldest first."""
        request = HistoryRequest(caller.session_id, target, before, after, limit)
        return await ask_history(gw, "fetch", request, HistoryResult)

    @app.get("/api/v1/channels", response_model=ChannelsOut, tags=["state"])
    async def channels(caller: CallerDep, gw: GatewayDep) -> ChannelsOut:
        """Every channel the caller may see; secret channels only for their members."""
        rows = await store.visible_channels(gw.pool, caller.session_id)
        return ChannelsOut(
            channels=[
                ChannelSummary(name=r["name"], topic=r["topic"], members=r["members"]) for r in rows
            ]
        )

    @app.get("/api/v1/channels/{name}", response_model=ChannelOut, tags=["state"])
    async def channel(name: PathName, caller: CallerDep, gw: GatewayDep) -> ChannelOut:
        """One channel (its name without ``#``); 404 when missing or secret to the caller."""
        row = await _visible_channel(gw, caller, name)
        return ChannelOut(
            name=row["name"],
            topic=row["topic"],
            topic_set_by=row["topic_set_by"],
            topic_set_at=rfc3339(row["topic_set_at"]) if row["topic_set_at"] else None,
            modes=modes_text(row["modes"], row["key"], row["user_limit"]),
            members=row["member_count"],
        )

    @app.get("/api/v1/channels/{name}/members", response_model=MembersOut, tags=["state"])
    async def channel_members(name: PathName, caller: CallerDep, gw: GatewayDep) -> MembersOut:
        """A channel's members, operators first, then voiced, then the rest by nick."""
        row = await _visible_channel(gw, caller, name)
        members = await store.members_of(gw.pool, row["name_folded"], gw.settings.online_window)
        return MembersOut(
            members=[
                MemberOut(nick=m["nick"], prefix=prefix(m["is_op"], m["is_voiced"]))
                for m in members
            ]
        )

    @app.get("/api/v1/users/{nick}", response_model=UserOut, tags=["state"])
    async def user(nick: PathName, caller: CallerDep, gw: GatewayDep) -> UserOut:
        """A user: online, away, idle time, signon and the channels the caller may see."""
        row = await store.user_info(gw.pool, fold(nick), gw.settings.online_window)
        if row is None:
            raise errors.no_such_nick(nick)
        channels = await store.user_channels(gw.pool, row["id"], caller.session_id)
        return UserOut(
            nick=row["nick"],
            online=row["online"],
            away=row["away_message"],
            idle_seconds=row["idle_seconds"],
            signon=rfc3339(row["created_at"]),
            channels=[c["name"] for c in channels],
        )

    @app.get("/api/v1/server", response_model=ServerOut, tags=["state"])
    async def server(gw: GatewayDep) -> ServerOut:
        """This server: name, version, MOTD and live counts."""
        counts = await store.counts(gw.pool)
        return ServerOut(
            name=gw.settings.server_name,
            version=VERSION,
            motd=gw.settings.motd,
            users=counts["users"],
            channels=counts["channels"],
        )

    @app.get("/.well-known/healthcheck.json", response_model=HealthOut, tags=["operations"])
    async def healthcheck(gw: GatewayDep) -> HealthOut:
        counts = await store.counts(gw.pool)
        return HealthOut(
            status="ok",
            users=counts["users"],
            clients=counts["clients"],
            channels=counts["channels"],
        )

    @app.get("/livez", tags=["operations"])
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz(gw: GatewayDep) -> JSONResponse:
        checks = await ops.readiness(gw.pool, gw.nc, gw.settings.stream_name)
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status_code=200 if ready else 503,
        )


async def ask_history(gw: Gateway, endpoint: str, request: Any, result: type[Any]) -> Response:
    """The history service's answer to ``request``, passed on as the response's JSON."""
    answer = await rpc.call(
        gw.nc,
        gw.commands.subjects.service(HISTORY, endpoint),
        request,
        result,
        gw.settings.request_timeout,
    )
    return Response(_encoder.encode(answer), media_type="application/json")


async def _visible_channel(gw: Gateway, caller: Caller, name: str) -> Any:
    folded = fold(name if name.startswith("#") else f"#{name}")
    row = await store.channel_row(gw.pool, folded)
    if row is None or (
        "s" in row["modes"] and await store.membership(gw.pool, folded, caller.session_id) is None
    ):
        raise errors.no_such_channel(f"#{name.lstrip('#')}")
    return row


def modes_text(flags: str, key: str | None, limit: int | None) -> str:
    """``+klnt``: the channel's modes without their parameters."""
    letters = set(flags) | ({"k"} if key else set()) | ({"l"} if limit else set())
    return "+" + "".join(sorted(letters))


async def _execute_once(
    gw: Gateway, caller: Caller, command: Command, key: str | None
) -> tuple[int, Any]:
    """Run a command, or with an idempotency key return what its first run answered."""
    if key is None:
        return await _run(gw, caller, command, new_event_id())
    claim = await store.claim_key(
        gw.pool,
        caller.session_id,
        key,
        _fingerprint(command),
        new_event_id(),
        gw.settings.idempotency_lease,
    )
    if claim.mismatch:
        raise errors.idempotency_mismatch()
    if claim.in_flight:
        raise errors.idempotency_in_flight()
    if claim.status is not None:
        return claim.status, claim.response
    status, payload = await _run(gw, caller, command, claim.event_id)
    if status >= 500:
        await store.release_key(gw.pool, caller.session_id, key)
    else:
        await store.complete_key(gw.pool, caller.session_id, key, status, payload)
    return status, payload


async def _run(
    gw: Gateway, caller: Caller, command: Command, event_id: uuid.UUID
) -> tuple[int, Any]:
    try:
        return 200, await gw.commands.execute(caller, command, event_id)
    except ChatError as error:
        return error.status, error.wire()


def _fingerprint(command: Command) -> bytes:
    canonical = msgspec.json.encode(
        [command.command, command.to, command.params, command.body, command.meta], order="sorted"
    )
    return hashlib.sha256(canonical).digest()


def _user_agent(request: Request) -> str | None:
    agent = request.headers.get("user-agent")
    return agent[:256] if agent else None


def _set_cookie(response: Response, token: str) -> None:
    response.set_cookie(auth.COOKIE, token, httponly=True, samesite="strict", path="/")


class _Server(uvicorn.Server):
    """Signals are the caller's to handle: it sets ``stop``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    app: ASGIApp,
    host: str,
    port: int,
    stop: asyncio.Event,
    on_stop: Callable[[], None] | None = None,
    grace: float | None = None,
) -> None:
    """Serve until ``stop`` is set, then call ``on_stop`` and let requests finish.

    New connections are refused from then on; requests in flight get ``grace``
    seconds (default: as long as they take) before their connections close.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=None if grace is None else max(1, round(grace)),
        http=wire.OneWrite,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if on_stop is not None:
        on_stop()
    server.should_exit = True
    stopper.cancel()
    await task


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Run the gateway's HTTP server until ``stop`` is set."""
    app = create_app(settings)

    def answer_polls() -> None:
        gateway: Gateway | None = getattr(app.state, "gateway", None)
        if gateway is not None:
            gateway.hub.close()

    # Half the grace period for requests in flight, the rest to drain NATS and close the pool.
    grace = settings.shutdown_grace / 2
    fast = polls.FastPolls(app, lambda: getattr(app.state, "gateway", None))
    await serve(fast, settings.http_host, settings.http_port, stop, answer_polls, grace)
