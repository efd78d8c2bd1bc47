"""Pure decisions of fanout: which stored item an event becomes, and in which segment.

A batch is cut into segments so that membership changes take effect exactly
where they stand in the stream: a run of consecutive messages is written by
one set-based statement; a JOIN adds its member before its own item is
written (the joiner sees it), a PART or KICK writes its item before the member
is removed (the leaver sees it, as its last item of the channel).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from libs.events import (
    AnyEvent,
    AwayChanged,
    Invited,
    MemberJoined,
    MemberParted,
    MessagePosted,
    ModeChanged,
    NickChanged,
    SessionCreated,
    SessionQuit,
    TopicChanged,
)
from libs.items import stored_wire


@dataclass(frozen=True)
class StoredItem:
    """One ``delivery.messages`` row to write, with how to find its recipients."""

    event_id: uuid.UUID
    target: str
    command: str
    sender: str
    sender_id: uuid.UUID | None
    to_name: str
    params: list[str]
    body: Any
    meta: dict[str, Any]
    created_at: datetime
    # Recipients: the clients of the members of ``channel``, of the members of
    # ``channels`` and of ``sessions`` (at most two), each client once.
    channel: str | None = None
    sessions: tuple[uuid.UUID, ...] = ()
    channels: tuple[str, ...] = ()

    @cached_property
    def wire(self) -> bytes:
        """The item encoded, as queue reads send it but for ``seq`` and ``pos``."""
        return stored_wire(
            self.event_id,
            self.created_at,
            self.command,
            self.sender,
            self.to_name,
            self.params,
            self.body,
            self.meta,
        )


@dataclass(frozen=True)
class Join:
    channel: str
    session_id: uuid.UUID


@dataclass(frozen=True)
class Leave:
    channel: str
    session_id: uuid.UUID


Change = Join | Leave


@dataclass
class Segment:
    """Items written by one statement, with membership changes before and after it."""

    before: list[Change] = field(default_factory=list)
    items: list[StoredItem] = field(default_factory=list)
    after: list[Change] = field(default_factory=list)


def stored_item(event: AnyEvent) -> StoredItem | None:
    """The item an event puts in queues and history, or None when it delivers nothing."""
    match event:
        case MessagePosted():
            return new_item(
                event,
                event.command,
                event.sender,
                event.to,
                event.params,
                event.body,
                sender_id=event.sender_id,
                meta=event.meta,
                channel=event.channel,
                sessions=() if event.peer_id is None else (event.sender_id, event.peer_id),
            )
        case MemberJoined():
            return new_item(
                event,
                "JOIN",
                event.nick,
                event.name,
                sender_id=event.session_id,
                channel=event.channel,
            )
        case MemberParted(silent=True):
            return None
        case MemberParted(kicked_by=None):
            return new_item(
                event,
                "PART",
                event.nick,
                event.name,
                body=event.reason,
                sender_id=event.session_id,
                channel=event.channel,
            )
        case MemberParted(kicked_by=str(kicker)):
            return new_item(
                event,
                "KICK",
                kicker,
                event.name,
                [event.nick],
                event.reason,
                channel=event.channel,
            )
        case TopicChanged():
            body = [event.topic] if event.topic else []
            return new_item(event, "TOPIC", event.by, event.name, body=body, channel=event.channel)
        case ModeChanged():
            return new_item(
                event, "MODE", event.by, event.name, event.params, channel=event.channel
            )
        case Invited():
            return new_item(
                event,
                "INVITE",
                event.by,
                event.invitee,
                [event.invitee, event.name],
                sessions=(event.invitee_id,),
            )
        case NickChanged():
            return new_item(
                event,
                "NICK",
                event.old,
                event.new,
                [event.new],
                sender_id=event.session_id,
                sessions=(event.session_id,),
                channels=tuple(event.channels),
            )
        case AwayChanged():
            return new_item(
                event,
                "AWAY",
                event.nick,
                event.nick,
                body=[event.message] if event.message else [],
                sender_id=event.session_id,
                sessions=(event.session_id,),
            )
        case SessionQuit():
            return new_item(
                event,
                "QUIT",
                event.nick,
                event.nick,
                body=event.reason,
                sender_id=event.session_id,
                channels=tuple(event.channels),
            )
        case SessionCreated():
            return None
    from services.fanout.extras import feature_item  # beyond IRC, kept apart (and imports us)

    return feature_item(event)


def new_item(
    event: AnyEvent,
    command: str,
    sender: str,
    to_name: str,
    params: list[str] | None = None,
    body: Any = None,
    *,
    sender_id: uuid.UUID | None = None,
    meta: dict[str, Any] | None = None,
    channel: str | None = None,
    sessions: tuple[uuid.UUID, ...] = (),
    channels: tuple[str, ...] = (),
    target: str | None = None,
) -> StoredItem:
    """The item of ``event``, numbered under its own target unless ``target`` says otherwise."""
    return StoredItem(
        event_id=event.event_id,
        target=event.target if target is None else target,
        command=command,
        sender=sender,
        sender_id=sender_id,
        to_name=to_name,
        params=params or [],
        body=body if body is not None else [],
        meta=meta or {},
        created_at=event.ts,
        channel=channel,
        sessions=sessions,
        channels=channels,
    )


def segments(events: list[AnyEvent]) -> list[Segment]:
    """Cut a batch, in stream order, into segments (see the module docstring)."""
    result: list[Segment] = []
    current = Segment()
    for event in events:
        item = stored_item(event)
        match event:
            case MemberJoined():
                if current.items or current.after:
                    result.append(current)
                    current = Segment()
                current.before.append(Join(event.channel, event.session_id))
                if item is not None:
                    current.items.append(item)
            case MemberParted():
                if item is not None:
                    current.items.append(item)
                current.after.append(Leave(event.channel, event.session_id))
                result.append(current)
                current = Segment()
            case _:
                if item is not None:
                    if current.after:
                        result.append(current)
                        current = Segment()
                    current.items.append(item)
    if current.before or current.items or current.after:
        result.append(current)
    return result
