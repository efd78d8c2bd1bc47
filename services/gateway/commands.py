"""Commands posted to ``/api/v1/messages``: validated here, then published or delegated.

PRIVMSG and NOTICE are decided by the gateway and published straight to the
stream (answered after the PubAck); JOIN and PART are decided by presence over
request/reply.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from libs import errors, rpc
from libs.bus import publish_event
from libs.contracts import PRESENCE, JoinRequest, JoinResult, PartRequest, PartResult
from libs.events import Body, MessagePosted, utcnow
from libs.irc import fold, is_channel, valid_channel, valid_nick
from libs.items import rfc3339
from libs.settings import Settings
from libs.subjects import Subjects
from services.gateway import store
from services.gateway.store import Caller

# Control characters other than IRC's formatting codes (bold, colour, CTCP …).
_FORBIDDEN = re.compile(r"[\x00\x04-\x0e\x10-\x15\x17-\x1c\x7f\r\n]")

MAX_LINES = 100
MAX_META_DEPTH = 16


@dataclass(frozen=True)
class Command:
    command: str
    to: str | None = None
    params: list[str] = field(default_factory=list)
    body: Body | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def check_lines(body: Body | None, command: str) -> list[str]:
    """The text lines of a chat command; 412 when there is no text."""
    if body is None or body == [] or body == {}:
        raise errors.no_text()
    if not isinstance(body, list):
        raise errors.validation(f"{command}: body must be an array of lines")
    if len(body) > MAX_LINES:
        raise errors.validation(f"{command}: at most {MAX_LINES} lines")
    for line in body:
        if _FORBIDDEN.search(line):
            raise errors.validation(f"{command}: control characters are not allowed in text")
    if not any(line.strip() for line in body):
        raise errors.no_text()
    return body


def check_params(params: list[str]) -> None:
    for param in params:
        if _FORBIDDEN.search(param):
            raise errors.validation("control characters are not allowed in params")


def check_meta(meta: dict[str, Any]) -> None:
    """``meta`` is carried through unchanged, within reason: nested at most
    ``MAX_META_DEPTH`` deep, and without NUL (no JSON column can store it)."""
    pending: list[tuple[Any, int]] = [(meta, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_META_DEPTH:
            raise errors.validation(f"meta nests deeper than {MAX_META_DEPTH} levels")
        if isinstance(value, dict):
            pending.extend((key, depth) for key in value)
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and "\x00" in value:
            raise errors.validation("meta must not contain NUL characters")


class Commands:
    """Executes one validated command for one caller."""

    def __init__(
        self, pool: asyncpg.Pool[Any], nc: NATS, js: JetStreamContext, settings: Settings
    ) -> None:
        self.pool = pool
        self.nc = nc
        self.js = js
        self.settings = settings
        self.subjects = Subjects(settings.subject_prefix, settings.partitions)

    async def execute(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        check_params(cmd.params)
        check_meta(cmd.meta)
        match cmd.command:
            case "PRIVMSG" | "NOTICE":
                return await self._chat(caller, cmd, event_id)
            case "JOIN":
                return await self._join(caller, cmd, event_id)
            case "PART":
                return await self._part(caller, cmd, event_id)
            case "PING":
                return answer(event_id, replies=[self._pong(caller, cmd)])
        raise errors.unknown_command(cmd.command)

    async def _chat(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if not cmd.to:
            raise errors.no_recipient(cmd.command)
        lines = check_lines(cmd.body, cmd.command)
        if is_channel(cmd.to):
            if not valid_channel(cmd.to):
                raise errors.no_such_channel(cmd.to)
            check = await store.channel_send_check(self.pool, fold(cmd.to), caller.session_id)
            if check.name is None:
                raise errors.no_such_channel(cmd.to)
            if not check.is_member:  # every channel is +n for now
                raise errors.cannot_send(check.name)
            event = MessagePosted(
                event_id=event_id,
                ts=utcnow(),
                command=cmd.command,
                sender_id=caller.session_id,
                sender=caller.nick,
                to=check.name,
                channel=fold(cmd.to),
                params=cmd.params,
                body=lines,
                meta=cmd.meta,
            )
        else:
            if not valid_nick(cmd.to):
                raise errors.no_such_nick(cmd.to)
            peer = await store.session_by_nick(self.pool, fold(cmd.to))
            if peer is None:
                raise errors.no_such_nick(cmd.to)
            event = MessagePosted(
                event_id=event_id,
                ts=utcnow(),
                command=cmd.command,
                sender_id=caller.session_id,
                sender=caller.nick,
                to=peer["nick"],
                peer_id=peer["id"],
                params=cmd.params,
                body=lines,
                meta=cmd.meta,
            )
        await self._publish(event)
        return answer(event_id, rfc3339(event.ts))

    async def _join(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if not cmd.to:
            raise errors.need_more_params("JOIN")
        if not valid_channel(cmd.to):
            raise errors.bad_channel_name(cmd.to)
        request = JoinRequest(
            event_id=event_id,
            session_id=caller.session_id,
            nick=caller.nick,
            channel=cmd.to,
            key=cmd.params[0] if cmd.params else None,
        )
        joined = await rpc.call(
            self.nc,
            self.subjects.service(PRESENCE, "join"),
            request,
            JoinResult,
            self.settings.request_timeout,
        )
        return answer(event_id, rfc3339(joined.ts))

    async def _part(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if not cmd.to:
            raise errors.need_more_params("PART")
        reason: list[str] = []
        if cmd.body:
            reason = check_lines(cmd.body, "PART")
        request = PartRequest(
            event_id=event_id,
            session_id=caller.session_id,
            nick=caller.nick,
            channel=cmd.to,
            reason=reason,
        )
        parted = await rpc.call(
            self.nc,
            self.subjects.service(PRESENCE, "part"),
            request,
            PartResult,
            self.settings.request_timeout,
        )
        return answer(event_id, rfc3339(parted.ts))

    def _pong(self, caller: Caller, cmd: Command) -> dict[str, Any]:
        if not cmd.params:
            raise errors.need_more_params("PING")
        return {
            "id": str(uuid.uuid4()),
            "ts": rfc3339(utcnow()),
            "command": "PONG",
            "from": self.settings.server_name,
            "to": caller.nick,
            "params": [self.settings.server_name, cmd.params[0]],
            "body": [],
            "meta": {},
        }

    async def _publish(self, event: MessagePosted) -> None:
        try:
            await publish_event(self.js, self.subjects, event, self.settings.request_timeout)
        except Exception as error:  # outcome unknown: the caller retries with its key
            raise errors.unavailable("event stream unavailable; retry with the same key") from error


def answer(
    event_id: uuid.UUID, ts: str | None = None, replies: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The body of a 200 answer to a command."""
    return {"id": str(event_id), "ts": ts or rfc3339(utcnow()), "replies": replies or []}
