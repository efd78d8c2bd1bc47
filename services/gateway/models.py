"""The HTTP edge's request and response models (they also make ``/openapi.json``)."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionIn(Strict):
    nick: str = Field(min_length=1, max_length=64)
    password: str | None = Field(None, min_length=1, max_length=1024)


class LoginIn(Strict):
    nick: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    session_id: uuid.UUID
    client_id: uuid.UUID
    nick: str
    token: str


class StatusOut(BaseModel):
    status: str


class StateOut(BaseModel):
    session_id: uuid.UUID
    client_id: uuid.UUID
    nick: str
    channels: list[str]
    away: str | None
    last_seq: int


class CommandIn(Strict):
    command: str = Field(min_length=1, max_length=32)
    to: str | None = Field(None, max_length=64)
    params: list[str] = Field(default_factory=list, max_length=16)
    body: list[str] | dict[str, Any] | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(None, min_length=1, max_length=128)


class ItemOut(BaseModel):
    """A queue item (``seq`` set) or a history item (no ``seq``)."""

    model_config = ConfigDict(populate_by_name=True)

    seq: int | None = None
    pos: int
    id: str
    ts: str
    command: str
    from_: str = Field(alias="from")
    to: str
    params: list[str]
    body: list[str] | dict[str, Any]
    meta: dict[str, Any]


class CommandOut(BaseModel):
    id: str
    ts: str
    replies: list[dict[str, Any]]


class MessagesOut(BaseModel):
    messages: list[ItemOut]
    last_seq: int


class HistoryOut(BaseModel):
    messages: list[ItemOut]
    has_more: bool


class ErrorDetail(BaseModel):
    code: str
    numeric: str | None
    message: str


class ErrorOut(BaseModel):
    error: ErrorDetail


class ChannelSummary(BaseModel):
    name: str
    topic: str | None
    members: int


class ChannelsOut(BaseModel):
    channels: list[ChannelSummary]


class ChannelOut(BaseModel):
    name: str
    topic: str | None
    topic_set_by: str | None
    topic_set_at: str | None
    modes: str
    members: int


class MemberOut(BaseModel):
    nick: str
    prefix: str


class MembersOut(BaseModel):
    members: list[MemberOut]


class UserOut(BaseModel):
    nick: str
    online: bool
    away: str | None
    idle_seconds: int
    signon: str
    channels: list[str]


class ServerOut(BaseModel):
    name: str
    version: str
    motd: str
    users: int
    channels: int


class HealthOut(BaseModel):
    status: str
    users: int
    clients: int
    channels: int
