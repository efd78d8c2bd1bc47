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
