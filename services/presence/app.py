"""The presence service: channels and membership, answered over request/reply.

Each command is decided in one PostgreSQL transaction that also writes its
event to the outbox; the outbox of that channel is published (PubAck awaited)
before the answer, so an answered JOIN or PART is already in the stream ahead
of any message sent afterwards — which is what makes membership exact at the
edges.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import structlog
from nats.js import JetStreamContext

from libs import bus, db, errors, rpc
from libs.contracts import PRESENCE, JoinRequest, JoinResult, PartRequest, PartResult
from libs.events import MemberJoined, MemberParted, utcnow
from libs.irc import fold, valid_channel
from libs.outbox import Outbox
from libs.settings import Settings
from libs.subjects import Subjects
from services.presence import store

log = structlog.get_logger(__name__)


class Presence:
    """The command side of channels; one instance per process, any number of replicas."""

    def __init__(self, pool: asyncpg.Pool[Any], js: JetStreamContext, subjects: Subjects) -> None:
        self.pool = pool
        self.js = js
        self.outbox = Outbox("presence", subjects)

    async def join(self, request: JoinRequest) -> JoinResult:
        if not valid_channel(request.channel):
            raise errors.bad_channel_name(request.channel)
        folded = fold(request.channel)
        ts = utcnow()
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_channel(conn, folded)
            existing = await store.channel(conn, folded)
            created = existing is None
            if existing is None:
                await store.create_channel(conn, folded, request.channel)
                name = request.channel
            else:
                name = existing["name"]
            joined = not await store.is_member(conn, folded, request.session_id)
            if joined:
                await store.add_member(conn, folded, request.session_id, is_op=created)
                event = MemberJoined(
                    event_id=request.event_id,
                    ts=ts,
                    channel=folded,
                    name=name,
                    session_id=request.session_id,
                    nick=request.nick,
                )
                await self.outbox.add(conn, [event])
        await self._publish(folded)
        return JoinResult(channel=name, ts=ts, joined=joined, created=created)

    async def part(self, request: PartRequest) -> PartResult:
        folded = fold(request.channel)
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_channel(conn, folded)
            existing = await store.channel(conn, folded)
            if existing is None:
                raise errors.no_such_channel(request.channel)
            if not await store.is_member(conn, folded, request.session_id):
                raise errors.not_on_channel(existing["name"])
            await store.remove_member(conn, folded, request.session_id)
            event = MemberParted(
                event_id=request.event_id,
                ts=utcnow(),
                channel=folded,
                name=existing["name"],
                session_id=request.session_id,
                nick=request.nick,
                reason=request.reason,
            )
            await self.outbox.add(conn, [event])
        await self._publish(folded)
        return PartResult(channel=event.name, ts=event.ts)

    async def _publish(self, target: str) -> None:
        try:
            await self.outbox.flush(self.pool, self.js, target)
        except Exception as error:  # the relay publishes it later; the caller may retry
            log.warning("outbox flush failed", target=target, error=repr(error))
            raise errors.unavailable("event stream unavailable; retry the command") from error


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Serve presence requests until ``stop`` is set."""
    async with AsyncExitStack() as stack:
        pool = await db.create_pool(settings.dsn(), settings.db_pool_size)
        stack.push_async_callback(pool.close)
        nc = await bus.connect(settings.nats(), "chinwag-presence")
        stack.push_async_callback(nc.drain)
        js = nc.jetstream()
        await bus.ensure_stream(js, settings)
        subjects = Subjects(settings.subject_prefix, settings.partitions)
        presence = Presence(pool, js, subjects)
        service = await rpc.serve(
            nc,
            name="chinwag-presence",
            version="0.1.0",
            subject_prefix=subjects.service(PRESENCE, "").rstrip("."),
            endpoints={
                "join": (JoinRequest, presence.join),
                "part": (PartRequest, presence.part),
            },
        )
        stack.push_async_callback(service.stop)
        log.info("presence started")
        await presence.outbox.relay(pool, js, stop)
        log.info("presence stopped")
