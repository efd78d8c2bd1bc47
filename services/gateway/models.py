"""The HTTP edge's request and response models (they also make ``/openapi.json``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field, create_model

from libs.irc import CHANNEL_PATTERN, NICK_PATTERN, PLAIN_PATTERN, TEXT_PATTERN
from services.gateway.commands import MAX_LINES


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


MAX_PARAMS = 16
MAX_KEY = 128  # characters of an idempotency key
Nick = Annotated[
    str,
    Field(min_length=1, max_length=64, json_schema_extra={"pattern": NICK_PATTERN}),
]
Target = Annotated[str, Field(min_length=1, max_length=64, pattern=PLAIN_PATTERN)]
# Path and query parameters: names without control characters (PostgreSQL text holds no
# NUL), positions and seqs within PostgreSQL's bigint.
MAX_POSITION = 2**62
PathName = Annotated[str, Path(min_length=1, max_length=64, pattern=PLAIN_PATTERN)]
QueryTarget = Annotated[str, Query(min_length=1, max_length=64, pattern=PLAIN_PATTERN)]
Position = Annotated[int, Query(ge=0, le=MAX_POSITION)]
IdempotencyKey = Annotated[str, Field(min_length=1, max_length=MAX_KEY)]


class SessionIn(Strict):
    nick: Nick
    password: str | None = Field(None, min_length=1, max_length=1024)
    stamp: str | None = Field(
        None,
        max_length=256,
        description="``<challenge>:<counter>`` solving GET /api/v1/challenge, when it asks",
    )


class ChallengeOut(BaseModel):
    challenge: str
    bits: int = Field(description="leading zero bits SHA-256 of the stamp needs; 0: no stamp")
    expires_at: str


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
    to: str | None = Field(None, max_length=64, pattern=PLAIN_PATTERN)
    params: list[str] = Field(default_factory=list, max_length=MAX_PARAMS)
    body: list[str] | dict[str, Any] | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: IdempotencyKey | None = None


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
#
# Each states what that command needs on top of CommandIn, which the server parses;
# it is never stricter than the server (a request it calls invalid is refused).
# Some rules are beyond JSON Schema and only the server states them: the MODE grammar,
# at least one line with text, and meta's depth and NULs.

Text = Annotated[str, Field(json_schema_extra={"pattern": TEXT_PATTERN})]
Lines = Annotated[
    list[Text],
    Field(min_length=1, max_length=MAX_LINES, description="lines of text, one with some text"),
]
OptionalLines = Annotated[
    list[Text] | None, Field(default=None, max_length=MAX_LINES, description="optional lines")
]
Channel = Annotated[
    str, Field(min_length=2, max_length=50, json_schema_extra={"pattern": CHANNEL_PATTERN})
]
AnyTarget = Annotated[str | None, Field(default=None, max_length=64, pattern=PLAIN_PATTERN)]
AnyBody = Annotated[list[str] | dict[str, Any] | None, Field(default=None)]


def _params(*names: str, required: int | None = None) -> Any:
    """Positional params: the first ``required`` of ``names`` must be given (default all)."""
    least = len(names) if required is None else required
    return (
        list[Text],
        Field(
            default_factory=list,
            min_length=least,
            max_length=MAX_PARAMS,
            description=", ".join(names) or "optional",
        ),
    )


def _command(name: str, doc: str, **fields: Any) -> type[BaseModel]:
    defaults: dict[str, Any] = {
        "to": (AnyTarget, None),
        "params": _params(required=0),
        "body": (AnyBody, None),
        "meta": (dict[str, Any], Field(default_factory=dict)),
        "idempotency_key": (IdempotencyKey | None, None),
    }
    model: type[BaseModel] = create_model(
        f"{name.title()}Command",
        __doc__=doc,
        __config__=ConfigDict(extra="forbid"),
        command=(Literal[name], ...),  # type: ignore[arg-type]
        **{**defaults, **fields},
    )
    return model


COMMAND_MODELS: list[type[BaseModel]] = [
    _command("PRIVMSG", "A message to a channel or a nick.", to=(Target, ...), body=(Lines, ...)),
    _command("NOTICE", "A notice (never auto-answered).", to=(Target, ...), body=(Lines, ...)),
    _command(
        "JOIN",
        "Join a channel (created +nt, with you as operator, when new).",
        to=(Channel, ...),
        params=_params("key", required=0),
    ),
    _command("PART", "Leave a channel.", to=(Target, ...), body=(OptionalLines, None)),
    _command("NICK", "Change nick.", params=_params("newnick")),
    _command(
        "TOPIC",
        "Read (no body) or set a channel's topic.",
        to=(Target, ...),
        body=(OptionalLines, None),
    ),
    _command(
        "MODE",
        "Read or change channel modes (+i +m +n +s +t +k +l +b, +o +v) or your user modes.",
        to=(Target, ...),
        params=_params('modes, then their arguments: ["+o-v", "a", "b"]', required=0),
    ),
    _command(
        "KICK",
        "Remove a member (operators).",
        to=(Target, ...),
        params=_params("nick"),
        body=(OptionalLines, None),
    ),
    _command("INVITE", "Invite a nick into a channel.", params=_params("nick", "channel")),
    _command(
        "AWAY", "Set (body) or clear (no body) your away message.", body=(OptionalLines, None)
    ),
    _command(
        "PASS", "Register this anonymous session with a password.", params=_params("password")
    ),
    _command("QUIT", "End the session and every client of it.", body=(OptionalLines, None)),
    _command("PING", "Answered with PONG.", params=_params("token")),
    _command("NAMES", "A channel's members (353, 366).", to=(Target, ...)),
    _command("LIST", "Visible channels (321, 322, 323).", params=_params("mask", required=0)),
    _command("WHOIS", "About a user (311 312 313 301 319 317 318).", params=_params("nick")),
    _command(
        "WHO",
        "Members of a channel, or users matching a mask (352, 315).",
        params=_params("mask", required=0),
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
