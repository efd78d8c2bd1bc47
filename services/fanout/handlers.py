"""Pure decisions of fanout: which stored item an event becomes, and in which segment.

A batch is cut into segments so that membership changes take effect exactly
where they stand in the stream: a run of consecutive messages is written by
one set-based statement; a JOIN adds its member before its own item is
written (the joiner sees it), a PART or KICK writes its item before the member
is removed (the leaver sees it, as its last item of the channel).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
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
            return StoredItem(
                event_id=event.event_id,
                target=event.target,
                command=event.command,
                sender=event.sender,
                sender_id=event.sender_id,
                to_name=event.to,
                params=event.params,
                body=event.body,
                meta=event.meta,
                created_at=event.ts,
                channel=event.channel,
                sessions=() if event.peer_id is None else (event.sender_id, event.peer_id),
            )
        case MemberJoined():
            return StoredItem(
                event_id=event.event_id,
                target=event.target,
                command="JOIN",
                sender=event.nick,
                sender_id=event.session_id,
                to_name=event.name,
                params=[],
                body=[],
                meta={},
                created_at=event.ts,
                channel=event.channel,
            )
        case MemberParted(silent=True):
            return None
        case MemberParted(kicked_by=None):
            return StoredItem(
                event_id=event.event_id,
                target=event.target,
                command="PART",
                sender=event.nick,
                sender_id=event.session_id,
                to_name=event.name,
                params=[],
                body=event.reason,
                meta={},
                created_at=event.ts,
                channel=event.channel,
            )
        case MemberParted(kicked_by=str(kicker)):
            return StoredItem(
                event_id=event.event_id,
                target=event.target,
                command="KICK",
                sender=kicker,
                sender_id=None,
                to_name=event.name,
                params=[event.nick],
                body=event.reason,
                meta={},
                created_at=event.ts,
                channel=event.channel,
            )
        case TopicChanged():
            return _item(
                event, "TOPIC", event.by, event.name, [], [event.topic] if event.topic else []
            )
        case ModeChanged():
            return _item(event, "MODE", event.by, event.name, event.params, [])
        case Invited():
            return replace(
                _item(event, "INVITE", event.by, event.invitee, [event.invitee, event.name], []),
                channel=None,
                sessions=(event.invitee_id,),
            )
        case NickChanged():
            return StoredItem(
                event_id=event.event_id,
                target=event.target,
                command="NICK",
                sender=event.old,
                sender_id=event.session_id,
                to_name=event.new,
                params=[event.new],
                body=[],
                meta={},
                created_at=event.ts,
                sessions=(event.session_id,),
                channels=tuple(event.channels),
            )
        case AwayChanged():
            return StoredItem(
                event_id=event.event_id,
                target=event.target,
                command="AWAY",
                sender=event.nick,
                sender_id=event.session_id,
                to_name=event.nick,
                params=[],
                body=[event.message] if event.message else [],
                meta={},
                created_at=event.ts,
                sessions=(event.session_id,),
            )
        case SessionQuit():
            return StoredItem(
                event_id=event.event_id,
                target=event.target,
                command="QUIT",
                sender=event.nick,
                sender_id=event.session_id,
                to_name=event.nick,
                params=[],
                body=event.reason,
                meta={},
                created_at=event.ts,
                channels=tuple(event.channels),
            )
        case SessionCreated():
            return None
    return None


def _item(
    event: TopicChanged | ModeChanged | Invited,
    command: str,
    sender: str,
    to_name: str,
    params: list[str],
    body: list[str],
) -> StoredItem:
    """An item of a channel event, delivered to the channel's members."""
    return StoredItem(
        event_id=event.event_id,
        target=event.target,
        command=command,
        sender=sender,
        sender_id=None,
        to_name=to_name,
        params=params,
        body=body,
        meta={},
        created_at=event.ts,
        channel=event.channel,
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
