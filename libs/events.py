"""The event schemas: one tagged union, evolved by msgspec's schema-evolution rules.

New fields get defaults; a field never changes type; a tag is never reused.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

Body = list[str] | dict[str, Any]


def new_event_id() -> uuid.UUID:
    """A fresh server-assigned event id."""
    return uuid.uuid4()


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Fields every event carries."""

    event_id: uuid.UUID
    ts: datetime


class MessagePosted(Event, frozen=True, kw_only=True, tag="message.posted"):
    """A PRIVMSG or NOTICE to a channel (``channel`` set) or a DM (``peer_id`` set)."""

    command: str
    sender_id: uuid.UUID
    sender: str
    to: str
    channel: str | None = None
    peer_id: uuid.UUID | None = None
    params: list[str] = []
    body: Body = []
    meta: dict[str, Any] = {}

    @property
    def target(self) -> str:
        if self.channel is not None:
            return self.channel
        assert self.peer_id is not None
        return dm_target(self.sender_id, self.peer_id)


class MemberJoined(Event, frozen=True, kw_only=True, tag="member.joined"):
    """A session joined a channel (``channel`` is the case-folded name)."""

    channel: str
    name: str
    session_id: uuid.UUID
    nick: str

    @property
    def target(self) -> str:
        return self.channel


class MemberParted(Event, frozen=True, kw_only=True, tag="member.parted"):
    """A session left a channel, by PART or, when ``kicked_by`` is set, by KICK.

    ``silent`` parts (a QUIT leaving each channel) change membership only: the
    QUIT itself is announced once, by ``SessionQuit``.
    """

    channel: str
    name: str
    session_id: uuid.UUID
    nick: str
    reason: list[str] = []
    kicked_by: str | None = None
    silent: bool = False

    @property
    def target(self) -> str:
        return self.channel


class SessionCreated(Event, frozen=True, kw_only=True, tag="session.created"):
    """A new session (identity) was registered."""

    session_id: uuid.UUID
    nick: str

    @property
    def target(self) -> str:
        return user_target(self.session_id)


class TopicChanged(Event, frozen=True, kw_only=True, tag="channel.topic"):
    """A channel's topic was set (or cleared, when ``topic`` is empty)."""

    channel: str
    name: str
    topic: str
    by: str

    @property
    def target(self) -> str:
        return self.channel


class ModeChanged(Event, frozen=True, kw_only=True, tag="channel.mode"):
    """Channel or member modes changed; ``params`` as IRC sends them: ``["+o-v", "a", "b"]``."""

    channel: str
    name: str
    by: str
    params: list[str]

    @property
    def target(self) -> str:
        return self.channel


class Invited(Event, frozen=True, kw_only=True, tag="channel.invited"):
    """An operator invited a session into a channel (delivered to the invitee)."""

    channel: str
    name: str
    by: str
    invitee_id: uuid.UUID
    invitee: str

    @property
    def target(self) -> str:
        return self.channel


class NickChanged(Event, frozen=True, kw_only=True, tag="session.nick"):
    """A session changed nick; ``channels`` are the (folded) channels it was in."""

    session_id: uuid.UUID
    old: str
    new: str
    channels: list[str] = []

    @property
    def target(self) -> str:
        return user_target(self.session_id)


class AwayChanged(Event, frozen=True, kw_only=True, tag="session.away"):
    """A session set (``message``) or cleared (None) its away state."""

    session_id: uuid.UUID
    nick: str
    message: str | None = None

    @property
    def target(self) -> str:
        return user_target(self.session_id)


class SessionQuit(Event, frozen=True, kw_only=True, tag="session.quit"):
    """A session ended (QUIT or expiry); announced to those in ``channels`` with it."""

    session_id: uuid.UUID
    nick: str
    reason: list[str] = []
    channels: list[str] = []

    @property
    def target(self) -> str:
        return user_target(self.session_id)


class MessageChange(Event, frozen=True, kw_only=True):
    """What every change to a stored message carries: the message, who acts, and where.

    ``message_id`` is the ``event_id`` of the message changed; the target is
    the channel (``channel`` set) or the DM between the actor and ``peer_id``,
    so a change lands on the same partition as the message, after it.
    """

    message_id: uuid.UUID
    actor_id: uuid.UUID
    actor: str
    to: str
    channel: str | None = None
    peer_id: uuid.UUID | None = None

    @property
    def target(self) -> str:
        if self.channel is not None:
            return self.channel
        assert self.peer_id is not None
        return dm_target(self.actor_id, self.peer_id)


class ReactionChanged(MessageChange, frozen=True, kw_only=True, tag="message.reaction"):
    """The actor added (or, ``added`` false, removed) an emoji reaction to a message."""

    emoji: str
    added: bool = True


class MessageEdited(MessageChange, frozen=True, kw_only=True, tag="message.edited"):
    """The author replaced a message's text; the replaced text goes to its edit history."""

    body: Body = []
    meta: dict[str, Any] = {}


class MessageDeleted(MessageChange, frozen=True, kw_only=True, tag="message.deleted"):
    """The author or a channel operator deleted a message: its text goes, a tombstone stays."""


class PinChanged(MessageChange, frozen=True, kw_only=True, tag="channel.pin"):
    """A channel operator pinned (or, ``pinned`` false, unpinned) a message."""

    pinned: bool = True


class ReadMarked(Event, frozen=True, kw_only=True, tag="session.read"):
    """A session has read ``conversation`` up to history position ``pos`` (on every client)."""

    session_id: uuid.UUID
    nick: str
    conversation: str  # the target key: a folded channel name or a DM pair
    to: str  # how the session names it: the channel, or the DM peer's nick
    pos: int

    @property
    def target(self) -> str:
        return user_target(self.session_id)


class KeyAnnounced(Event, frozen=True, kw_only=True, tag="session.key"):
    """A session announced its public signing key (PUBKEY); relayed like a NICK."""

    session_id: uuid.UUID
    nick: str
    alg: str
    key: str
    channels: list[str] = []

    @property
    def target(self) -> str:
        return user_target(self.session_id)


AnyEvent = (
    MessagePosted
    | MemberJoined
    | MemberParted
    | SessionCreated
    | TopicChanged
    | ModeChanged
    | Invited
    | NickChanged
    | AwayChanged
    | SessionQuit
    | ReactionChanged
    | MessageEdited
    | MessageDeleted
    | PinChanged
    | ReadMarked
    | KeyAnnounced
)

MEMBERSHIP_EVENTS = (MemberJoined, MemberParted)


def dm_target(a: uuid.UUID, b: uuid.UUID) -> str:
    """The target key of a DM: the unordered pair of its two sessions."""
    lo, hi = sorted((a, b))
    return f"dm:{lo}:{hi}"


def user_target(session_id: uuid.UUID) -> str:
    """The target key of events that concern a user everywhere (NICK, QUIT, AWAY)."""
    return f"user:{session_id}"


def event_type(event: AnyEvent) -> str:
    """The tag of an event, e.g. ``message.posted``."""
    tag = type(event).__struct_config__.tag
    assert isinstance(tag, str)
    return tag


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyEvent)


def encode_event(event: AnyEvent) -> bytes:
    """Serialise an event for the stream."""
    return _encoder.encode(event)


def decode_event(data: bytes) -> AnyEvent:
    """Parse an event from the stream; raises ``msgspec.ValidationError`` on bad data."""
    event: AnyEvent = _decoder.decode(data)
    return event
