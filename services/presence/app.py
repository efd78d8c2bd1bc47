"""The presence service: channels, membership and modes, answered over request/reply.

Each command is decided in one PostgreSQL transaction that also writes its
events to the outbox; the outbox of each target touched is published (PubAck
awaited) before the answer, so an answered JOIN, PART, KICK, MODE or TOPIC is
already in the stream ahead of any message sent afterwards — which is what
makes membership exact at the edges.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import structlog
from nats.js import JetStreamContext

from libs import bus, db, errors, lifecycle, ops, rpc
from libs.contracts import (
    PRESENCE,
    Ban,
    InviteRequest,
    InviteResult,
    JoinRequest,
    JoinResult,
    KickRequest,
    ModeRequest,
    ModeResult,
    PartRequest,
    PartResult,
    QuitRequest,
    QuitResult,
    TopicRequest,
    TopicResult,
)
from libs.credentials import same_secret
from libs.db import Conn
from libs.events import (
    AnyEvent,
    Invited,
    MemberJoined,
    MemberParted,
    ModeChanged,
    SessionQuit,
    TopicChanged,
    user_target,
    utcnow,
)
from libs.irc import fold, mask_matches, normalise_mask, valid_channel
from libs.outbox import Outbox
from libs.settings import Settings
from libs.subjects import Subjects
from services.presence import modes, store
from services.presence.modes import Change

log = structlog.get_logger(__name__)

MAX_TOPIC = 390


class Presence:
    """The command side of channels; one instance per process, any number of replicas."""

    def __init__(
        self, pool: asyncpg.Pool[Any], js: JetStreamContext, subjects: Subjects, host: str
    ) -> None:
        self.pool = pool
        self.js = js
        self.outbox = Outbox("presence", subjects)
        self.host = host

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
                if existing is not None:
                    await self._may_join(conn, existing, request)
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

    async def _may_join(self, conn: Conn, channel: asyncpg.Record, request: JoinRequest) -> None:
        """+b, then +i (an invite passes it, once), +k and +l, as RFC 2812 orders them."""
        name, folded = channel["name"], channel["name_folded"]
        invited = await store.take_invite(conn, folded, request.session_id)
        if not invited:
            for mask in await store.ban_masks(conn, folded):
                if mask_matches(mask, request.nick, self.host):
                    raise errors.banned(name)
            if "i" in channel["modes"]:
                raise errors.invite_only(name)
        if channel["key"] and not same_secret(request.key, channel["key"]):
            raise errors.bad_key(name)
        limit = channel["user_limit"]
        if limit and await store.member_count(conn, folded) >= limit:
            raise errors.channel_full(name)

    async def part(self, request: PartRequest) -> PartResult:
        folded = fold(request.channel)
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_channel(conn, folded)
            channel = await self._channel(conn, request.channel)
            if not await store.is_member(conn, folded, request.session_id):
                raise errors.not_on_channel(channel["name"])
            await store.remove_member(conn, folded, request.session_id)
            event = MemberParted(
                event_id=request.event_id,
                ts=utcnow(),
                channel=folded,
                name=channel["name"],
                session_id=request.session_id,
                nick=request.nick,
                reason=request.reason,
            )
            await self.outbox.add(conn, [event])
        await self._publish(folded)
        return PartResult(channel=event.name, ts=event.ts)

    async def kick(self, request: KickRequest) -> PartResult:
        folded = fold(request.channel)
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_channel(conn, folded)
            channel = await self._channel(conn, request.channel)
            await self._require_op(conn, channel, request.session_id)
            victim = await store.session_by_nick(conn, fold(request.target))
            if victim is None:
                raise errors.no_such_nick(request.target)
            if not await store.is_member(conn, folded, victim["id"]):
                raise errors.user_not_in_channel(victim["nick"], channel["name"])
            await store.remove_member(conn, folded, victim["id"])
            event = MemberParted(
                event_id=request.event_id,
                ts=utcnow(),
                channel=folded,
                name=channel["name"],
                session_id=victim["id"],
                nick=victim["nick"],
                reason=request.reason,
                kicked_by=request.nick,
            )
            await self.outbox.add(conn, [event])
        await self._publish(folded)
        return PartResult(channel=event.name, ts=event.ts)

    async def topic(self, request: TopicRequest) -> TopicResult:
        folded = fold(request.channel)
        ts = utcnow()
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_channel(conn, folded)
            channel = await self._channel(conn, request.channel)
            member = await store.member(conn, folded, request.session_id)
            if request.topic is None:
                if member is None and "s" in channel["modes"]:
                    raise errors.no_such_channel(request.channel)
                return TopicResult(
                    channel=channel["name"],
                    ts=ts,
                    topic=channel["topic"],
                    set_by=channel["topic_set_by"],
                    set_at=channel["topic_set_at"],
                )
            if member is None:
                raise errors.not_on_channel(channel["name"])
            if "t" in channel["modes"] and not member["is_op"]:
                raise errors.chanop_needed(channel["name"])
            topic = request.topic[:MAX_TOPIC]
            await store.set_topic(conn, folded, topic, request.nick)
            event = TopicChanged(
                event_id=request.event_id,
                ts=ts,
                channel=folded,
                name=channel["name"],
                topic=topic,
                by=request.nick,
            )
            await self.outbox.add(conn, [event])
        await self._publish(folded)
        return TopicResult(
            channel=channel["name"], ts=ts, topic=topic or None, set_by=request.nick, set_at=ts
        )

    async def mode(self, request: ModeRequest) -> ModeResult:
        folded = fold(request.channel)
        changes = modes.parse(request.params)
        ts = utcnow()
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_channel(conn, folded)
            channel = await self._channel(conn, request.channel)
            member = await store.member(conn, folded, request.session_id)
            if member is None and "s" in channel["modes"]:
                raise errors.no_such_channel(request.channel)
            if not changes:
                current = modes.mode_string(
                    channel["modes"], channel["key"], channel["user_limit"], member is not None
                )
                return ModeResult(
                    channel["name"], ts, modes=current, created_at=channel["created_at"]
                )
            if modes.is_list_query(changes):
                found = [
                    Ban(r["mask"], r["set_by"], r["set_at"]) for r in await store.bans(conn, folded)
                ]
                return ModeResult(channel["name"], ts, bans=found)
            await self._require_op(conn, channel, request.session_id)
            applied = await self._apply(conn, channel, changes, request.nick)
            if applied:
                event = ModeChanged(
                    event_id=request.event_id,
                    ts=ts,
                    channel=folded,
                    name=channel["name"],
                    by=request.nick,
                    params=modes.format_changes(applied),
                )
                await self.outbox.add(conn, [event])
        await self._publish(folded)
        return ModeResult(channel["name"], ts, applied=modes.format_changes(applied))

    async def _apply(
        self, conn: Conn, channel: asyncpg.Record, changes: list[Change], by: str
    ) -> list[Change]:
        """Apply changes in order; return those that changed something."""
        folded = channel["name_folded"]
        flags, key, limit = set(channel["modes"]), channel["key"], channel["user_limit"]
        applied: list[Change] = []
        for change in changes:
            letter, param = change.letter, change.param
            if letter in modes.FLAGS:
                if (letter in flags) != change.adding:
                    (flags.add if change.adding else flags.discard)(letter)
                    applied.append(change)
            elif letter == modes.KEY:
                if change.adding:
                    assert param is not None  # parse checked it
                    key = param
                    applied.append(change)
                elif key is not None:
                    key = None
                    applied.append(Change(False, letter, "*"))
            elif letter == modes.LIMIT:
                if change.adding:
                    assert param is not None  # parse checked it
                    limit = int(param)
                    applied.append(change)
                elif limit is not None:
                    limit = None
                    applied.append(change)
            elif letter in modes.LIST:
                assert param is not None
                mask = normalise_mask(param)
                if change.adding and await store.add_ban(conn, folded, mask, by):
                    applied.append(Change(True, letter, mask))
                elif not change.adding and await store.remove_ban(conn, folded, mask):
                    applied.append(Change(False, letter, mask))
            else:  # o, v
                assert param is not None
                target = await store.session_by_nick(conn, fold(param))
                if target is None:
                    raise errors.no_such_nick(param)
                member = await store.member(conn, folded, target["id"])
                if member is None:
                    raise errors.user_not_in_channel(target["nick"], channel["name"])
                column = "is_op" if letter == "o" else "is_voiced"
                if member[column] != change.adding:
                    await store.set_member_mode(conn, folded, target["id"], letter, change.adding)
                    applied.append(Change(change.adding, letter, target["nick"]))
        await store.set_modes(conn, folded, "".join(sorted(flags)), key, limit)
        return applied

    async def invite(self, request: InviteRequest) -> InviteResult:
        folded = fold(request.channel)
        ts = utcnow()
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_channel(conn, folded)
            channel = await self._channel(conn, request.channel)
            member = await store.member(conn, folded, request.session_id)
            if member is None:
                raise errors.not_on_channel(channel["name"])
            if "i" in channel["modes"] and not member["is_op"]:
                raise errors.chanop_needed(channel["name"])
            invitee = await store.session_by_nick(conn, fold(request.invitee))
            if invitee is None:
                raise errors.no_such_nick(request.invitee)
            if await store.is_member(conn, folded, invitee["id"]):
                raise errors.user_on_channel(invitee["nick"], channel["name"])
            await store.add_invite(conn, folded, invitee["id"], request.nick)
            event = Invited(
                event_id=request.event_id,
                ts=ts,
                channel=folded,
                name=channel["name"],
                by=request.nick,
                invitee_id=invitee["id"],
                invitee=invitee["nick"],
            )
            await self.outbox.add(conn, [event])
        await self._publish(folded)
        return InviteResult(channel=channel["name"], invitee=invitee["nick"], ts=ts)

    async def quit(self, request: QuitRequest) -> QuitResult:
        """Leave every channel; the QUIT is announced once to those who shared one."""
        ts = utcnow()
        async with self.pool.acquire() as conn, conn.transaction():
            joined = await store.channels_of(conn, request.session_id)
            for row in joined:  # in name order, as every other command locks one channel
                await store.lock_channel(conn, row["name_folded"])
            events: list[AnyEvent] = []
            for row in joined:
                await store.remove_member(conn, row["name_folded"], request.session_id)
                events.append(
                    MemberParted(
                        event_id=uuid.uuid5(request.event_id, row["name_folded"]),
                        ts=ts,
                        channel=row["name_folded"],
                        name=row["name"],
                        session_id=request.session_id,
                        nick=request.nick,
                        silent=True,
                    )
                )
            events.append(
                SessionQuit(
                    event_id=request.event_id,
                    ts=ts,
                    session_id=request.session_id,
                    nick=request.nick,
                    reason=request.reason,
                    channels=[row["name_folded"] for row in joined],
                )
            )
            await self.outbox.add(conn, events)
        for row in joined:
            await self._publish(row["name_folded"])
        await self._publish(user_target(request.session_id))
        return QuitResult(channels=[row["name"] for row in joined])

    async def _channel(self, conn: Conn, name: str) -> asyncpg.Record:
        channel = await store.channel(conn, fold(name))
        if channel is None:
            raise errors.no_such_channel(name)
        return channel

    async def _require_op(self, conn: Conn, channel: asyncpg.Record, session_id: uuid.UUID) -> None:
        member = await store.member(conn, channel["name_folded"], session_id)
        if member is None:
            raise errors.not_on_channel(channel["name"])
        if not member["is_op"]:
            raise errors.chanop_needed(channel["name"])

    async def _publish(self, target: str) -> None:
        try:
            await self.outbox.flush(self.pool, self.js, target)
        except Exception as error:  # the relay publishes it later; the caller may retry
            log.warning("outbox flush failed", target=target, error=repr(error))
            raise errors.unavailable("event stream unavailable; retry the command") from error


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Serve presence requests until ``stop`` is set."""
    async with AsyncExitStack() as stack:
        pool = await db.service_pool(settings, "presence")
        stack.push_async_callback(pool.close)
        nc = await bus.connect(settings.nats(), "chinwag-presence")
        stack.push_async_callback(nc.drain)
        await stack.enter_async_context(ops.probe_server(settings, pool, nc))
        js = nc.jetstream()
        await bus.ensure_stream(js, settings)
        subjects = Subjects(settings.subject_prefix, settings.partitions)
        presence = Presence(pool, js, subjects, settings.server_name)
        service = await rpc.serve(
            nc,
            name="chinwag-presence",
            version="0.1.0",
            subject_prefix=subjects.service(PRESENCE, "").rstrip("."),
            endpoints={
                "join": (JoinRequest, presence.join),
                "part": (PartRequest, presence.part),
                "kick": (KickRequest, presence.kick),
                "topic": (TopicRequest, presence.topic),
                "mode": (ModeRequest, presence.mode),
                "invite": (InviteRequest, presence.invite),
                "quit": (QuitRequest, presence.quit),
            },
        )
        stack.push_async_callback(service.stop)
        log.info("presence started")
        lifecycle.started()
        await presence.outbox.relay(pool, js, stop)
        log.info("presence stopped")
