"""Requests and results of the internal request/reply endpoints (presence, history)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from libs.items import Item

PRESENCE = "presence"
HISTORY = "history"


class JoinRequest(msgspec.Struct, frozen=True):
    event_id: uuid.UUID
    session_id: uuid.UUID
    nick: str
    channel: str
    key: str | None = None


class JoinResult(msgspec.Struct, frozen=True):
    channel: str
    ts: datetime  # of the JOIN event (or of the answer, when already a member)
    joined: bool  # False when the session was already a member
    created: bool = False


class PartRequest(msgspec.Struct, frozen=True):
    event_id: uuid.UUID
    session_id: uuid.UUID
    nick: str
    channel: str
    reason: list[str] = []


class PartResult(msgspec.Struct, frozen=True):
    channel: str
    ts: datetime


class HistoryRequest(msgspec.Struct, frozen=True):
    session_id: uuid.UUID
    target: str
    before: int | None = None
    after: int | None = None
    limit: int = 50


class HistoryResult(msgspec.Struct, frozen=True):
    messages: list[Item]
    has_more: bool


class KickRequest(msgspec.Struct, frozen=True):
    event_id: uuid.UUID
    session_id: uuid.UUID
    nick: str
    channel: str
    target: str
    reason: list[str] = []


class TopicRequest(msgspec.Struct, frozen=True):
    """Set the topic, or read it when ``topic`` is None."""

    event_id: uuid.UUID
    session_id: uuid.UUID
    nick: str
    channel: str
    topic: str | None = None


class TopicResult(msgspec.Struct, frozen=True):
    channel: str
    ts: datetime
    topic: str | None = None
    set_by: str | None = None
    set_at: datetime | None = None


class ModeRequest(msgspec.Struct, frozen=True):
    """Change channel modes, or read them when ``params`` is empty (or is just ``+b``)."""

    event_id: uuid.UUID
    session_id: uuid.UUID
    nick: str
    channel: str
    params: list[str] = []


class Ban(msgspec.Struct, frozen=True):
    mask: str
    set_by: str
    set_at: datetime


class ModeResult(msgspec.Struct, frozen=True):
    channel: str
    ts: datetime
    applied: list[str] = []  # the changes made, as IRC params; empty for a read
    modes: list[str] = []  # the current modes (RPL_CHANNELMODEIS params)
    created_at: datetime | None = None
    bans: list[Ban] | None = None  # set when the ban list was read


class InviteRequest(msgspec.Struct, frozen=True):
    event_id: uuid.UUID
    session_id: uuid.UUID
    nick: str
    channel: str
    invitee: str


class InviteResult(msgspec.Struct, frozen=True):
    channel: str
    invitee: str
    ts: datetime


class QuitRequest(msgspec.Struct, frozen=True):
    event_id: uuid.UUID
    session_id: uuid.UUID
    nick: str
    reason: list[str] = []


class QuitResult(msgspec.Struct, frozen=True):
    channels: list[str]
