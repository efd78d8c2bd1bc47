"""Commands posted to ``/api/v1/messages``: validated here, then published or delegated.

PRIVMSG and NOTICE are decided by the gateway and published straight to the
stream (answered after the PubAck). Channel commands (JOIN, PART, KICK, TOPIC,
MODE, INVITE) are decided by presence over request/reply; identity commands
(NICK, AWAY, PASS, QUIT) by the gateway, which owns identities, through its
outbox. Informational commands (NAMES, LIST, WHO, WHOIS, MOTD, LUSERS, PING)
only read, and answer with numerics in ``replies``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import asyncpg
import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from libs import errors, rpc
from libs.bus import publish_event
from libs.contracts import (
    PRESENCE,
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
from libs.events import (
    AnyEvent,
    AwayChanged,
    Body,
    MessagePosted,
    NickChanged,
    user_target,
    utcnow,
)
from libs.irc import fold, is_channel, mask_matches, valid_channel, valid_nick, valid_text
from libs.items import rfc3339
from libs.outbox import Outbox
from libs.settings import Settings
from libs.subjects import Subjects
from services.gateway import auth, store
from services.gateway.store import Caller

log = structlog.get_logger(__name__)

MAX_LINES = 100
MAX_META_DEPTH = 16
MAX_AWAY = 300
VERSION = "chinwag-0.1.0"
SPOKE_EVERY = 1.0  # seconds; WHOIS idle time needs no finer grain

R = TypeVar("R")
Reply = dict[str, Any]


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
    lines = _text_lines(body, command)
    if not any(line.strip() for line in lines):
        raise errors.no_text()
    return lines


def optional_text(body: Body | None, command: str) -> str | None:
    """The single line of TOPIC, AWAY, a reason …; None when there is no body."""
    if body is None or body == []:
        return None
    return " ".join(_text_lines(body, command))


def _text_lines(body: Body, command: str) -> list[str]:
    """Lines of text, at most ``MAX_LINES``, none with a forbidden control character."""
    if not isinstance(body, list):
        raise errors.validation(f"{command}: body must be an array of lines")
    if len(body) > MAX_LINES:
        raise errors.validation(f"{command}: at most {MAX_LINES} lines")
    if not all(valid_text(line) for line in body):
        raise errors.validation(f"{command}: control characters are not allowed in text")
    return body


def check_params(params: list[str]) -> None:
    if not all(valid_text(param) for param in params):
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


def prefix(is_op: bool, is_voiced: bool) -> str:
    return "@" if is_op else "+" if is_voiced else ""


def mask_pattern(mask: str) -> str:
    """An IRC mask (``*`` and ``?``) as a LIKE pattern over folded nicks."""
    escaped = fold(mask).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


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
        self.outbox = Outbox("identity", self.subjects)
        self._spoken: dict[uuid.UUID, float] = {}  # session → when this process last recorded it
        self._speakers: set[uuid.UUID] = set()  # to record by the next statement
        self._spoke_writer: asyncio.Task[None] | None = None
        self._handlers: dict[
            str, Callable[[Caller, Command, uuid.UUID], Awaitable[dict[str, Any]]]
        ] = {
            "PRIVMSG": self._chat,
            "NOTICE": self._chat,
            "JOIN": self._join,
            "PART": self._part,
            "KICK": self._kick,
            "TOPIC": self._topic,
            "MODE": self._mode,
            "INVITE": self._invite,
            "NICK": self._nick,
            "AWAY": self._away,
            "PASS": self._pass,
            "QUIT": self._quit,
            "PING": self._ping,
            "NAMES": self._names,
            "LIST": self._list,
            "WHOIS": self._whois,
            "WHO": self._who,
            "MOTD": self._motd,
            "LUSERS": self._lusers,
        }
        from services.gateway.features import Features  # beyond IRC; it imports this module

        self.features = Features(self)
        self._handlers.update(self.features.handlers())

    def knows(self, command: str) -> bool:
        return command in self._handlers

    @staticmethod
    def checks_token(cmd: Command) -> bool:
        """Whether this command checks an unchecked caller's token in its first statement:
        a chat line to a channel, the hottest command, saves a round trip so."""
        return cmd.command in ("PRIVMSG", "NOTICE") and bool(cmd.to) and is_channel(cmd.to or "")

    async def execute(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        handler = self._handlers.get(cmd.command)
        if handler is None:
            raise errors.unknown_command(cmd.command)
        if caller.token_hash is not None and not self.checks_token(cmd):
            checked = await store.caller_by_token(self.pool, caller.token_hash)
            if checked is None:
                raise errors.unauthorized()
            caller = checked
        check_params(cmd.params)
        check_meta(cmd.meta)
        return await handler(caller, cmd, event_id)

    # --- chat -----------------------------------------------------------------------

    async def _chat(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if not cmd.to:
            raise errors.no_recipient(cmd.command)
        lines = check_lines(cmd.body, cmd.command)
        replies: list[Reply] = []
        if is_channel(cmd.to):
            name, caller = await self._may_speak(caller, cmd.to)
            event = MessagePosted(
                event_id=event_id,
                ts=utcnow(),
                command=cmd.command,
                sender_id=caller.session_id,
                sender=caller.nick,
                to=name,
                channel=fold(cmd.to),
                params=cmd.params,
                body=lines,
                meta=cmd.meta,
            )
        else:
            peer = await self.peer(cmd.to)
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
            if peer["away_message"] and cmd.command == "PRIVMSG":
                replies.append(self.numeric(caller, "301", [peer["nick"]], peer["away_message"]))
        await self.features.check_message(event)
        await self._publish(event)
        self._spoke(caller.session_id)
        return answer(event_id, rfc3339(event.ts), replies)

    async def peer(self, nick: str) -> asyncpg.Record:
        """The session a DM to ``nick`` goes to (id, nick, away_message); ERR_NOSUCHNICK if none."""
        if not valid_nick(nick):
            raise errors.no_such_nick(nick)
        peer = await store.session_by_nick(self.pool, fold(nick))
        if peer is None:
            raise errors.no_such_nick(nick)
        return peer

    def _spoke(self, session_id: uuid.UUID) -> None:
        """Record a chat line for WHOIS idle time, in the background: the column keeps
        whole seconds, so this process writes it at most once a second per session,
        for every session that spoke meanwhile in one statement."""
        now = time.monotonic()
        if now - self._spoken.get(session_id, -SPOKE_EVERY) < SPOKE_EVERY:
            return
        if len(self._spoken) >= 100_000:
            self._spoken.clear()
        self._spoken[session_id] = now
        self._speakers.add(session_id)
        if self._spoke_writer is None or self._spoke_writer.done():
            self._spoke_writer = asyncio.create_task(self._write_spoken())

    async def _write_spoken(self) -> None:
        while self._speakers:
            sessions, self._speakers = sorted(self._speakers), set()
            try:
                await store.spoke(self.pool, sessions)
            except Exception as error:  # noqa: BLE001 - idle time is best effort
                log.warning("last_spoke not written", sessions=len(sessions), error=repr(error))

    async def _may_speak(self, caller: Caller, target: str) -> tuple[str, Caller]:
        """The channel's name, when the caller may send to it (+n, +m, +b), and the caller,
        its token checked in the same statement when that was still to be done."""
        if not valid_channel(target):
            raise errors.no_such_channel(target)
        channel = await store.channel_send_check(self.pool, fold(target), caller)
        if caller.token_hash is not None:
            if channel.nick is None:
                raise errors.unauthorized()
            caller = replace(caller, nick=channel.nick, token_hash=None)
        if channel.name is None:
            raise errors.no_such_channel(target)
        if not channel.is_member and "n" in channel.modes:
            raise errors.cannot_send(channel.name)
        if not channel.privileged and "m" in channel.modes:
            raise errors.cannot_send(channel.name)
        for mask in channel.bans:
            if mask_matches(mask, caller.nick, self.settings.server_name):
                raise errors.cannot_send(channel.name)
        return channel.name, caller

    # --- channel commands, decided by presence ---------------------------------------

    async def _join(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if not cmd.to:
            raise errors.need_more_params("JOIN")
        if not valid_channel(cmd.to):
            raise errors.bad_channel_name(cmd.to)
        joined = await self._presence(
            "join",
            JoinRequest(
                event_id=event_id,
                session_id=caller.session_id,
                nick=caller.nick,
                channel=cmd.to,
                key=cmd.params[0] if cmd.params else None,
            ),
            JoinResult,
        )
        folded = fold(joined.channel)
        channel = await store.channel_row(self.pool, folded)
        replies: list[Reply] = []
        if channel is not None and channel["topic"]:
            replies += self._topic_replies(caller, channel["name"], channel)
        replies += await self._names_replies(caller, joined.channel)
        return answer(event_id, rfc3339(joined.ts), replies)

    async def _part(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if not cmd.to:
            raise errors.need_more_params("PART")
        reason = optional_text(cmd.body, "PART")
        parted = await self._presence(
            "part",
            PartRequest(
                event_id=event_id,
                session_id=caller.session_id,
                nick=caller.nick,
                channel=cmd.to,
                reason=[reason] if reason else [],
            ),
            PartResult,
        )
        return answer(event_id, rfc3339(parted.ts))

    async def _kick(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if not cmd.to or not cmd.params:
            raise errors.need_more_params("KICK")
        reason = optional_text(cmd.body, "KICK")
        kicked = await self._presence(
            "kick",
            KickRequest(
                event_id=event_id,
                session_id=caller.session_id,
                nick=caller.nick,
                channel=cmd.to,
                target=cmd.params[0],
                reason=[reason] if reason else [],
            ),
            PartResult,
        )
        return answer(event_id, rfc3339(kicked.ts))

    async def _topic(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if not cmd.to:
            raise errors.need_more_params("TOPIC")
        text = optional_text(cmd.body, "TOPIC")
        result = await self._presence(
            "topic",
            TopicRequest(
                event_id=event_id,
                session_id=caller.session_id,
                nick=caller.nick,
                channel=cmd.to,
                topic=text,
            ),
            TopicResult,
        )
        if text is not None:
            return answer(event_id, rfc3339(result.ts))
        replies = self._topic_replies(
            caller,
            result.channel,
            {"topic": result.topic, "topic_set_by": result.set_by, "topic_set_at": result.set_at},
        )
        return answer(event_id, rfc3339(result.ts), replies)

    def _topic_replies(self, caller: Caller, name: str, channel: Any) -> list[Reply]:
        if not channel["topic"]:
            return [self.numeric(caller, "331", [name], "No topic is set")]
        set_at = channel["topic_set_at"]
        return [
            self.numeric(caller, "332", [name], channel["topic"]),
            self.numeric(
                caller,
                "333",
                [
                    name,
                    channel["topic_set_by"] or "",
                    str(int(set_at.timestamp()) if set_at else 0),
                ],
            ),
        ]

    async def _mode(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if not cmd.to:
            raise errors.need_more_params("MODE")
        if not is_channel(cmd.to):
            return await self._user_mode(caller, cmd, event_id)
        result = await self._presence(
            "mode",
            ModeRequest(
                event_id=event_id,
                session_id=caller.session_id,
                nick=caller.nick,
                channel=cmd.to,
                params=cmd.params,
            ),
            ModeResult,
        )
        replies: list[Reply] = []
        if result.bans is not None:
            for ban in result.bans:
                replies.append(
                    self.numeric(
                        caller,
                        "367",
                        [result.channel, ban.mask, ban.set_by, str(int(ban.set_at.timestamp()))],
                    )
                )
            replies.append(self.numeric(caller, "368", [result.channel], "End of channel ban list"))
        elif result.modes:
            replies.append(self.numeric(caller, "324", [result.channel, *result.modes]))
            if result.created_at is not None:
                created = str(int(result.created_at.timestamp()))
                replies.append(self.numeric(caller, "329", [result.channel, created]))
        return answer(event_id, rfc3339(result.ts), replies)

    async def _user_mode(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        assert cmd.to is not None
        if fold(cmd.to) != fold(caller.nick):
            if await store.session_by_nick(self.pool, fold(cmd.to)) is None:
                raise errors.no_such_nick(cmd.to)
            raise errors.users_dont_match()
        if cmd.params:
            modestring = cmd.params[0]
            if modestring != "-o":
                flag = next((c for c in modestring if c not in "+-o"), modestring)
                raise errors.umode_unknown(flag)
            await store.set_oper(self.pool, caller.session_id, False)
        user = await store.user_info(self.pool, fold(caller.nick), self.settings.online_window)
        assert user is not None
        letters = ("a" if user["away_message"] else "") + ("o" if user["is_oper"] else "")
        return answer(event_id, replies=[self.numeric(caller, "221", [f"+{letters}"])])

    async def _invite(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if len(cmd.params) < 2:
            raise errors.need_more_params("INVITE")
        invitee, channel = cmd.params[0], cmd.params[1]
        result = await self._presence(
            "invite",
            InviteRequest(
                event_id=event_id,
                session_id=caller.session_id,
                nick=caller.nick,
                channel=channel,
                invitee=invitee,
            ),
            InviteResult,
        )
        replies = [self.numeric(caller, "341", [result.invitee, result.channel])]
        peer = await store.session_by_nick(self.pool, fold(result.invitee))
        if peer is not None and peer["away_message"]:
            replies.append(self.numeric(caller, "301", [peer["nick"]], peer["away_message"]))
        return answer(event_id, rfc3339(result.ts), replies)

    # --- identity commands, decided here -----------------------------------------------

    async def _nick(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if not cmd.params:
            raise errors.no_nickname_given()
        new = cmd.params[0]
        if not valid_nick(new):
            raise errors.erroneous_nick(new)
        if new == caller.nick:
            return answer(event_id)
        async with self.pool.acquire() as conn, conn.transaction():
            try:
                await store.change_nick(conn, caller.session_id, new)
            except store.NickInUse:
                raise errors.nick_in_use(new) from None
            channels = await store.channel_folds_of(conn, caller.session_id)
            event = NickChanged(
                event_id=event_id,
                ts=utcnow(),
                session_id=caller.session_id,
                old=caller.nick,
                new=new,
                channels=channels,
            )
            await self.outbox.add(conn, [event])
        await self._flush(user_target(caller.session_id))
        return answer(event_id, rfc3339(event.ts))

    async def _away(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        text = optional_text(cmd.body, "AWAY")
        message = text[:MAX_AWAY] if text and text.strip() else None
        event = AwayChanged(
            event_id=event_id,
            ts=utcnow(),
            session_id=caller.session_id,
            nick=caller.nick,
            message=message,
        )
        async with self.pool.acquire() as conn, conn.transaction():
            await store.set_away(conn, caller.session_id, message)
            await self.outbox.add(conn, [event])
        await self._flush(user_target(caller.session_id))
        reply = (
            self.numeric(caller, "306", [], "You have been marked as being away")
            if message
            else self.numeric(caller, "305", [], "You are no longer marked as being away")
        )
        return answer(event_id, rfc3339(event.ts), [reply])

    async def _pass(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if not cmd.params or not cmd.params[0]:
            raise errors.need_more_params("PASS")
        if len(cmd.params[0]) > 1024:
            raise errors.validation("PASS: password too long")
        hashed = await asyncio.to_thread(auth.hash_password, cmd.params[0])
        if not await store.set_password(self.pool, caller.session_id, hashed):
            raise errors.already_registered()
        return answer(event_id)

    async def _quit(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        reason = optional_text(cmd.body, "QUIT")
        await self.end_session(caller.session_id, caller.nick, event_id, [reason] if reason else [])
        return answer(event_id)

    async def end_session(
        self, session_id: uuid.UUID, nick: str, event_id: uuid.UUID, reason: list[str]
    ) -> None:
        """QUIT or expiry: leave every channel (announced once), then free the nick."""
        await self._presence(
            "quit",
            QuitRequest(event_id=event_id, session_id=session_id, nick=nick, reason=reason),
            QuitResult,
        )
        await store.delete_session(self.pool, session_id)

    # --- informational commands ------------------------------------------------------

    async def _ping(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if not cmd.params:
            raise errors.need_more_params("PING")
        name = self.settings.server_name
        return answer(event_id, replies=[self.reply(caller, "PONG", [name, cmd.params[0]])])

    async def _names(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if not cmd.to:
            raise errors.need_more_params("NAMES")
        return answer(event_id, replies=await self._names_replies(caller, cmd.to))

    async def _names_replies(self, caller: Caller, target: str) -> list[Reply]:
        folded = fold(target)
        channel = await store.channel_row(self.pool, folded)
        visible = channel is not None and (
            "s" not in channel["modes"]
            or await store.membership(self.pool, folded, caller.session_id) is not None
        )
        replies: list[Reply] = []
        if channel is not None and visible:
            name = channel["name"]
            members = await store.members_of(self.pool, folded, self.settings.online_window)
            nicks = [prefix(m["is_op"], m["is_voiced"]) + m["nick"] for m in members]
            kind = "@" if "s" in channel["modes"] else "="
            for start in range(0, len(nicks), 50):
                replies.append(
                    self.numeric(caller, "353", [kind, name], " ".join(nicks[start : start + 50]))
                )
            target = name
        replies.append(self.numeric(caller, "366", [target], "End of /NAMES list"))
        return replies

    async def _list(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        mask = cmd.params[0] if cmd.params else "*"
        replies = [self.numeric(caller, "321", ["Channel", "Users"], "Name")]
        for row in await store.visible_channels(self.pool, caller.session_id, mask_pattern(mask)):
            replies.append(
                self.numeric(caller, "322", [row["name"], str(row["members"])], row["topic"])
            )
        replies.append(self.numeric(caller, "323", [], "End of /LIST"))
        return answer(event_id, replies=replies)

    async def _whois(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if not cmd.params:
            raise errors.no_nickname_given()
        user = await store.user_info(self.pool, fold(cmd.params[0]), self.settings.online_window)
        if user is None:
            raise errors.no_such_nick(cmd.params[0])
        nick, host = user["nick"], self.settings.server_name
        replies = [
            self.numeric(caller, "311", [nick, nick, host, "*"], nick),
            self.numeric(caller, "312", [nick, host], VERSION),
        ]
        if user["is_oper"]:
            replies.append(self.numeric(caller, "313", [nick], "is an IRC operator"))
        if user["away_message"]:
            replies.append(self.numeric(caller, "301", [nick], user["away_message"]))
        channels = await store.user_channels(self.pool, user["id"], caller.session_id)
        if channels:
            names = " ".join(prefix(c["is_op"], c["is_voiced"]) + c["name"] for c in channels)
            replies.append(self.numeric(caller, "319", [nick], names))
        presence = "is online" if user["online"] else "has no client online"
        replies.append(self.numeric(caller, "320", [nick], presence))
        signon = str(int(user["created_at"].timestamp()))
        replies.append(
            self.numeric(
                caller,
                "317",
                [nick, str(user["idle_seconds"]), signon],
                "seconds idle, signon time",
            )
        )
        replies.append(self.numeric(caller, "318", [nick], "End of /WHOIS list"))
        return answer(event_id, replies=replies)

    async def _who(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        mask = cmd.to or (cmd.params[0] if cmd.params else "*")
        host = self.settings.server_name
        window = self.settings.online_window
        rows: list[Any] = []
        channel_name = "*"
        if is_channel(mask):
            folded = fold(mask)
            channel = await store.channel_row(self.pool, folded)
            if channel is not None and (
                "s" not in channel["modes"]
                or await store.membership(self.pool, folded, caller.session_id) is not None
            ):
                rows = await store.members_of(self.pool, folded, window)
                channel_name = channel["name"]
        else:
            rows = await store.who_mask(self.pool, mask_pattern(mask), window)
        replies = []
        for row in rows:
            flags = ("G" if row["away_message"] else "H") + ("*" if row["is_oper"] else "")
            flags += prefix(row["is_op"], row["is_voiced"])
            replies.append(
                self.numeric(
                    caller,
                    "352",
                    [channel_name, row["nick"], host, host, row["nick"], flags],
                    f"0 {row['nick']}",
                )
            )
        replies.append(self.numeric(caller, "315", [mask], "End of /WHO list"))
        return answer(event_id, replies=replies)

    async def _motd(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        return answer(event_id, replies=self.motd_replies(caller))

    def motd_replies(self, caller: Caller) -> list[Reply]:
        lines = self.settings.motd.splitlines()
        if not lines:
            return [self.numeric(caller, "422", [], "MOTD File is missing")]
        name = self.settings.server_name
        return [
            self.numeric(caller, "375", [], f"- {name} Message of the day - "),
            *(self.numeric(caller, "372", [], f"- {line}") for line in lines),
            self.numeric(caller, "376", [], "End of /MOTD command"),
        ]

    async def _lusers(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        c = await store.counts(self.pool)
        return answer(
            event_id,
            replies=[
                self.numeric(
                    caller, "251", [], f"There are {c['users']} users and 0 services on 1 servers"
                ),
                self.numeric(caller, "252", [str(c["opers"])], "operator(s) online"),
                self.numeric(caller, "254", [str(c["channels"])], "channels formed"),
                self.numeric(caller, "255", [], f"I have {c['clients']} clients and 1 servers"),
            ],
        )

    # --- plumbing ---------------------------------------------------------------------

    def reply(
        self, caller: Caller, command: str, params: list[str], text: str | None = None
    ) -> Reply:
        """A reply in the envelope of a queue item (without seq and pos)."""
        return {
            "id": str(uuid.uuid4()),
            "ts": rfc3339(utcnow()),
            "command": command,
            "from": self.settings.server_name,
            "to": caller.nick,
            "params": params,
            "body": [text] if text else [],
            "meta": {},
        }

    numeric = reply

    async def _presence(self, endpoint: str, request: Any, result_type: type[R]) -> R:
        return await rpc.call(
            self.nc,
            self.subjects.service(PRESENCE, endpoint),
            request,
            result_type,
            self.settings.request_timeout,
        )

    async def _publish(self, event: AnyEvent) -> None:
        try:
            await publish_event(self.js, self.subjects, event, self.settings.request_timeout)
        except Exception as error:  # outcome unknown: the caller retries with its key
            raise errors.unavailable("event stream unavailable; retry with the same key") from error

    async def _flush(self, target: str) -> None:
        try:
            await self.outbox.flush(self.pool, self.js, target)
        except Exception as error:  # committed: the relay publishes it shortly
            raise errors.unavailable("event stream unavailable; the change is queued") from error


def answer(event_id: uuid.UUID, ts: str | None = None, replies: list[Reply] | None = None) -> Reply:
    """The body of a 200 answer to a command."""
    return {"id": str(event_id), "ts": ts or rfc3339(utcnow()), "replies": replies or []}
