"""Commands beyond IRC: REACT, UNREACT, EDIT, DELETE, PIN, UNPIN, MARKREAD, TYPING, PUBKEY,
and the checks of ``meta.reply_to`` and ``meta.sig`` on PRIVMSG and NOTICE.

The gateway decides them from the projected state and publishes one event
each (answered after the PubAck); fanout projects them and delivers them to
whom they concern. TYPING alone is ephemeral: core NATS, never stored. A
command that would change nothing (a reaction already there, a message
already deleted or pinned, a marker not moving forward) is answered 200 and
publishes nothing.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from libs import errors
from libs.events import (
    AnyEvent,
    KeyAnnounced,
    MessageChange,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    PinChanged,
    ReactionChanged,
    ReadMarked,
    dm_target,
    user_target,
    utcnow,
)
from libs.irc import fold, is_channel, valid_channel
from libs.items import rfc3339
from libs.signatures import ALG, check_meta_signature, public_key
from services.gateway import ephemeral, feature_store, store
from services.gateway.auth import RateLimiter
from services.gateway.commands import Command, Commands, answer, check_lines
from services.gateway.store import Caller

Handler = Callable[[Caller, Command, uuid.UUID], Awaitable[dict[str, Any]]]

MAX_EMOJI = 16  # code points in one reaction
TYPING_RATE = 1.0  # TYPING per second per client and conversation …
TYPING_BURST = 3  # … after a burst of this many
TYPING_MAX_MEMBERS = 1000  # beyond this a channel hears no typing: a notice names each member
_EMOJI_CATEGORIES = {"So", "Sk", "Mn", "Me", "Cf", "Nd"}


@dataclass(frozen=True)
class Where:
    """A conversation as a command names it: its target key and how it is shown."""

    key: str
    name: str  # the channel's name, or the DM peer's nick
    channel: str | None = None
    peer_id: uuid.UUID | None = None
    is_op: bool = False


def valid_emoji(text: str) -> bool:
    """One emoji (with its modifiers, joiners and variation selectors), nothing else."""
    if not 1 <= len(text) <= MAX_EMOJI:
        return False
    categories = [unicodedata.category(c) for c in text]
    if not all(
        c in _EMOJI_CATEGORIES or ch in "#*" for c, ch in zip(categories, text, strict=True)
    ):
        return False
    return "So" in categories or "\u20e3" in text  # a pictograph, or a keycap


def message_id(params: list[str], command: str) -> uuid.UUID:
    """The message a command names in ``params[0]``."""
    if not params:
        raise errors.need_more_params(command)
    try:
        return uuid.UUID(params[0])
    except ValueError:
        raise errors.validation(f"{command}: {params[0]!r} is not a message id") from None


class Features:
    """Executes the commands beyond IRC for ``Commands``."""

    def __init__(self, commands: Commands) -> None:
        self.commands = commands
        self.pool = commands.pool
        self.settings = commands.settings
        self.typing = RateLimiter(TYPING_RATE, TYPING_BURST)

    def handlers(self) -> dict[str, Handler]:
        return {
            "REACT": self._react,
            "UNREACT": self._react,
            "EDIT": self._edit,
            "DELETE": self._delete,
            "PIN": self._pin,
            "UNPIN": self._pin,
            "MARKREAD": self._markread,
            "TYPING": self._typing,
            "PUBKEY": self._pubkey,
        }

    # --- checks on chat lines ---------------------------------------------------------

    async def check_message(self, event: MessagePosted) -> None:
        """``meta.reply_to`` names a chat line of the same conversation; ``meta.sig`` is
        well-formed."""
        problem = check_meta_signature(event.meta)
        if problem:
            raise errors.validation(problem)
        if "reply_to" not in event.meta:
            return
        parent = event.meta["reply_to"]
        if not isinstance(parent, str):
            raise errors.validation("meta.reply_to must be a message id")
        found = await feature_store.message(
            self.pool, message_id([parent], "meta.reply_to"), event.target
        )
        if found is None:
            raise errors.no_such_message(parent, "no such message in this conversation")

    # --- where a command applies ----------------------------------------------------

    async def where(self, caller: Caller, to: str | None, command: str) -> Where:
        """The conversation ``to`` names, which the caller must be in."""
        if not to:
            raise errors.no_recipient(command)
        if is_channel(to):
            if not valid_channel(to):
                raise errors.no_such_channel(to)
            folded = fold(to)
            channel = await store.channel_row(self.pool, folded)
            if channel is None:
                raise errors.no_such_channel(to)
            member = await store.membership(self.pool, folded, caller.session_id)
            if member is None:
                raise errors.not_on_channel(channel["name"])
            return Where(folded, channel["name"], channel=folded, is_op=member["is_op"])
        peer = await self.commands.peer(to)
        return Where(dm_target(caller.session_id, peer["id"]), peer["nick"], peer_id=peer["id"])

    async def _target_message(
        self, caller: Caller, cmd: Command, *, speak: bool = False
    ) -> tuple[Where, uuid.UUID, Any]:
        """The conversation and the live (not deleted) chat line a command names."""
        where = await self.where(caller, cmd.to, cmd.command)
        if speak and where.channel is not None and cmd.to is not None:
            await self.commands._may_speak(caller, cmd.to)
        target_id = message_id(cmd.params, cmd.command)
        row = await feature_store.message(self.pool, target_id, where.key)
        if row is None:
            raise errors.no_such_message(str(target_id))
        return where, target_id, row

    # --- the commands -------------------------------------------------------------------

    async def _react(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if len(cmd.params) < 2:
            raise errors.need_more_params(cmd.command)
        emoji = cmd.params[1]
        if not valid_emoji(emoji):
            raise errors.validation(f"{cmd.command}: {emoji!r} is not one emoji")
        added = cmd.command == "REACT"
        where, target_id, row = await self._target_message(caller, cmd, speak=added)
        if row["deleted"]:
            raise errors.no_such_message(str(target_id), "deleted")
        present = await feature_store.has_reaction(self.pool, row["id"], caller.session_id, emoji)
        if present == added:
            return answer(event_id)
        event = _change(
            ReactionChanged, event_id, caller, where, target_id, emoji=emoji, added=added
        )
        return await self._publish(event)

    async def _edit(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        where, target_id, row = await self._target_message(caller, cmd, speak=True)
        lines = check_lines(cmd.body, "EDIT")
        problem = check_meta_signature(cmd.meta)
        if problem:
            raise errors.validation(problem)
        if row["sender_id"] != caller.session_id:
            raise errors.not_author()
        if row["deleted"]:
            raise errors.no_such_message(str(target_id), "deleted")
        event = _change(
            MessageEdited, event_id, caller, where, target_id, body=lines, meta=cmd.meta
        )
        return await self._publish(event)

    async def _delete(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        where, target_id, row = await self._target_message(caller, cmd)
        if row["sender_id"] != caller.session_id and not where.is_op:
            if where.channel is not None:
                raise errors.chanop_needed(where.name)
            raise errors.not_author()
        if row["deleted"]:
            return answer(event_id)
        return await self._publish(_change(MessageDeleted, event_id, caller, where, target_id))

    async def _pin(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        if cmd.to and not is_channel(cmd.to):
            raise errors.validation(f"{cmd.command}: pins belong to channels")
        where, target_id, row = await self._target_message(caller, cmd)
        if not where.is_op:
            raise errors.chanop_needed(where.name)
        pinned = cmd.command == "PIN"
        if pinned and row["deleted"]:
            raise errors.no_such_message(str(target_id), "deleted")
        if row["pinned"] == pinned:
            return answer(event_id)
        event = _change(PinChanged, event_id, caller, where, target_id, pinned=pinned)
        return await self._publish(event)

    async def _markread(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        where = await self.where(caller, cmd.to, "MARKREAD")
        if not cmd.params:
            raise errors.need_more_params("MARKREAD")
        if not re.fullmatch(r"[0-9]{1,18}", cmd.params[0]):
            raise errors.validation("MARKREAD: the position must be a whole number")
        pos = int(cmd.params[0])
        if pos > await feature_store.last_pos(self.pool, where.key):
            raise errors.validation(f"MARKREAD: {where.name} has no position {pos} yet")
        marker = await feature_store.read_marker(self.pool, caller.session_id, where.key)
        if marker is not None and marker >= pos:
            return answer(event_id)
        event = ReadMarked(
            event_id=event_id,
            ts=utcnow(),
            session_id=caller.session_id,
            nick=caller.nick,
            conversation=where.key,
            to=where.name,
            pos=pos,
        )
        return await self._publish(event)

    async def _typing(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        where = await self.where(caller, cmd.to, "TYPING")
        state = cmd.params[0] if cmd.params else "active"
        if state not in ("active", "done"):
            raise errors.validation("TYPING: the state is 'active' or 'done'")
        wait = self.typing.take(f"{caller.client_id}\0{where.key}")
        if wait:
            raise errors.rate_limited(wait)
        if where.channel is not None:
            recipients = await feature_store.other_members(
                self.pool, where.channel, caller.session_id, TYPING_MAX_MEMBERS
            )
        else:
            assert where.peer_id is not None
            recipients = [where.peer_id] if where.peer_id != caller.session_id else []
        now = utcnow()
        notice = ephemeral.Notice(
            type="typing",
            from_=caller.nick,
            to=where.name,
            state=state,
            ts=rfc3339(now),
            expires_in=ephemeral.TYPING_TTL if state == "active" else 0.5,
        )
        if recipients and len(recipients) < TYPING_MAX_MEMBERS:
            payload = ephemeral.encode(ephemeral.Broadcast(sessions=recipients, notice=notice))
            try:
                await self.commands.nc.publish(ephemeral.subject(self.commands.subjects), payload)
            except Exception as error:  # nothing stored, nothing to retry: say so
                raise errors.unavailable("notices cannot be relayed now") from error
        return answer(event_id, rfc3339(now))

    async def _pubkey(self, caller: Caller, cmd: Command, event_id: uuid.UUID) -> dict[str, Any]:
        body = cmd.body
        if not isinstance(body, dict) or set(body) != {"alg", "key"}:
            raise errors.validation('PUBKEY: body must be {"alg": "ed25519", "key": base64}')
        if body["alg"] != ALG:
            raise errors.validation(f"PUBKEY: only {ALG} keys are supported")
        key = body["key"]
        if not isinstance(key, str) or public_key(key) is None:
            raise errors.validation("PUBKEY: key must be the base64 of a 32-byte Ed25519 key")
        async with self.pool.acquire() as conn, conn.transaction():
            await feature_store.set_signing_key(conn, caller.session_id, key)
            channels = await store.channel_folds_of(conn, caller.session_id)
            event = KeyAnnounced(
                event_id=event_id,
                ts=utcnow(),
                session_id=caller.session_id,
                nick=caller.nick,
                alg=ALG,
                key=key,
                channels=channels,
            )
            await self.commands.outbox.add(conn, [event])
        await self.commands._flush(user_target(caller.session_id))
        return answer(event_id, rfc3339(event.ts))

    async def _publish(self, event: AnyEvent) -> dict[str, Any]:
        await self.commands._publish(event)
        return answer(event.event_id, rfc3339(event.ts))


Change = TypeVar("Change", bound=MessageChange)


def _change(
    kind: type[Change],
    event_id: uuid.UUID,
    caller: Caller,
    where: Where,
    message: uuid.UUID,
    **fields: Any,
) -> Change:
    """A change to ``message`` in conversation ``where``, made by ``caller`` now."""
    return kind(
        event_id=event_id,
        ts=utcnow(),
        message_id=message,
        actor_id=caller.session_id,
        actor=caller.nick,
        to=where.name,
        channel=where.channel,
        peer_id=where.peer_id,
        **fields,
    )
