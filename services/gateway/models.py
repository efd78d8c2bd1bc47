"""The HTTP edge's request and response models (they also make ``/openapi.json``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


NICK_PATTERN = r"^[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,31}$"
Nick = Annotated[
    str,
    Field(min_length=1, max_length=64, json_schema_extra={"pattern": NICK_PATTERN}),
]
Target = Annotated[str, Field(min_length=1, max_length=64)]


class SessionIn(Strict):
    nick: Nick
    password: str | None = Field(None, min_length=1, max_length=1024)


class LoginIn(Strict):
    nick: Nick
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
    unread: dict[str, int] = Field(
        default_factory=dict,
        description="chat lines from others after the read marker, per channel and DM peer",
    )
    read: dict[str, int] = Field(
        default_factory=dict, description="the session's read marker (a pos), where it has one"
    )


class CommandIn(Strict):
    command: str = Field(min_length=1, max_length=32)
    to: str | None = Field(None, max_length=64)
    params: list[str] = Field(default_factory=list, max_length=16)
    body: list[str] | dict[str, Any] | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(None, min_length=1, max_length=128)


class ReactionOut(BaseModel):
    emoji: str
    count: int
    nicks: list[str]


class TombstoneOut(BaseModel):
    by: str
    ts: str


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
    reactions: list[ReactionOut] | None = None
    reply_count: int | None = None
    edited: str | None = None
    deleted: TombstoneOut | None = None
    pinned: bool | None = None


class NoticeOut(BaseModel):
    """An ephemeral notice (typing), carried beside the queue, never in it."""

    model_config = ConfigDict(populate_by_name=True)

    type: str
    from_: str = Field(alias="from")
    to: str
    state: str
    ts: str
    expires_in: float


class CommandOut(BaseModel):
    id: str
    ts: str
    replies: list[dict[str, Any]]


class MessagesOut(BaseModel):
    messages: list[ItemOut]
    last_seq: int
    ephemeral: list[NoticeOut] | None = None


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


# --- one schema per command, for the OpenAPI document ---------------------------------

Lines = Annotated[list[str], Field(min_length=1, max_length=100, description="lines of text")]
OptionalLines = Annotated[
    list[str] | None, Field(default=None, max_length=100, description="optional lines")
]


def _command(name: str, doc: str, **fields: Any) -> type[BaseModel]:
    model: type[BaseModel] = create_model(
        f"{name.title()}Command",
        __doc__=doc,
        __config__=ConfigDict(extra="forbid"),
        command=(Literal[name], ...),  # type: ignore[arg-type]
        meta=(dict[str, Any], Field(default_factory=dict)),
        idempotency_key=(str | None, None),
        **fields,
    )
    return model


def _params(*names: str) -> Any:
    return (
        list[str],
        Field(min_length=len(names), max_length=len(names), description=", ".join(names)),
    )


COMMAND_MODELS: list[type[BaseModel]] = [
    _command("PRIVMSG", "A message to a channel or a nick.", to=(Target, ...), body=(Lines, ...)),
    _command("NOTICE", "A notice (never auto-answered).", to=(Target, ...), body=(Lines, ...)),
    _command(
        "JOIN",
        "Join a channel (created +nt, with you as operator, when new).",
        to=(Target, ...),
        params=(list[str], Field(default_factory=list, max_length=1, description="[key]")),
    ),
    _command("PART", "Leave a channel.", to=(Target, ...), body=OptionalLines),
    _command("NICK", "Change nick.", params=_params("newnick")),
    _command(
        "TOPIC", "Read (no body) or set a channel's topic.", to=(Target, ...), body=OptionalLines
    ),
    _command(
        "MODE",
        "Read or change channel modes (+i +m +n +s +t +k +l +b, +o +v) or your user modes.",
        to=(Target, ...),
        params=(list[str], Field(default_factory=list, description='e.g. ["+o-v", "a", "b"]')),
    ),
    _command(
        "KICK",
        "Remove a member (operators).",
        to=(Target, ...),
        params=_params("nick"),
        body=OptionalLines,
    ),
    _command("INVITE", "Invite a nick into a channel.", params=_params("nick", "channel")),
    _command("AWAY", "Set (body) or clear (no body) your away message.", body=OptionalLines),
    _command(
        "PASS", "Register this anonymous session with a password.", params=_params("password")
    ),
    _command("QUIT", "End the session and every client of it.", body=OptionalLines),
    _command("PING", "Answered with PONG.", params=_params("token")),
    _command("NAMES", "A channel's members (353, 366).", to=(Target, ...)),
    _command(
        "LIST",
        "Visible channels (321, 322, 323).",
        params=(list[str], Field(default_factory=list, max_length=1, description="[mask]")),
    ),
    _command("WHOIS", "About a user (311 312 313 301 319 317 318).", params=_params("nick")),
    _command(
        "WHO",
        "Members of a channel, or users matching a mask (352, 315).",
        to=(str | None, None),
        params=(list[str], Field(default_factory=list, max_length=1, description="[mask]")),
    ),
    _command("MOTD", "The message of the day (375 372 376)."),
    _command("LUSERS", "Server counts (251 252 254 255)."),
    *(
        _command(name, doc, to=(Target, ...), params=_params("id", "emoji"))
        for name, doc in (
            ("REACT", "React to a message with an emoji (one per user per emoji)."),
            ("UNREACT", "Take your emoji reaction back."),
        )
    ),
    _command(
        "EDIT",
        "Replace your message's text (its earlier text is kept in its edit history).",
        to=(Target, ...),
        params=_params("id"),
        body=(Lines, ...),
    ),
    _command(
        "DELETE",
        "Delete a message (its author, or a channel operator): a tombstone remains.",
        to=(Target, ...),
        params=_params("id"),
    ),
    _command("PIN", "Pin a channel message (operators).", to=(Target, ...), params=_params("id")),
    _command(
        "UNPIN", "Unpin a channel message (operators).", to=(Target, ...), params=_params("id")
    ),
    _command(
        "MARKREAD",
        "Read up to a history position, on every client of the session.",
        to=(Target, ...),
        params=_params("pos"),
    ),
    _command(
        "TYPING",
        "Say you are typing (ephemeral: never stored).",
        to=(Target, ...),
        params=(
            list[str],
            Field(default_factory=list, max_length=1, description='["active"] or ["done"]'),
        ),
    ),
    _command(
        "PUBKEY",
        "Announce your Ed25519 public key, for others to check meta.sig.",
        body=(dict[str, str], Field(description='{"alg": "ed25519", "key": base64}')),
    ),
]


def command_request_body() -> dict[str, Any]:
    """The OpenAPI request body of ``POST /api/v1/messages``: one schema per command."""
    schemas = [
        m.model_json_schema(ref_template="#/components/schemas/{model}") for m in COMMAND_MODELS
    ]
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": schemas,
                    "discriminator": {"propertyName": "command"},
                }
            }
        },
    }
