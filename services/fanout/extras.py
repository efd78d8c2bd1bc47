"""Fanout's projection of what goes beyond IRC: replies, reactions, edits, deletes,
pins, read markers and announced keys.

Each such event is an item like any other, so it reaches the queues of those
it concerns in stream order. Changes to a message (REACT, UNREACT, EDIT,
DELETE, PIN, UNPIN) are stored under the side key ``x:<target>``: they take
no position in the target's history, which stays a history of what was said.
Their effects are kept in tables that refer to the message by foreign key, so
trimming a message takes them along; ``sweep`` then removes the change items
left pointing at nothing once no queue holds them.

Changes that would change nothing are dropped before the batch is written
(``admit``). Effects are applied in stream order, after the batch's items are
written, each guarded by the state it finds (an edit that does not apply has
its text removed), so a race between two commands decided at the gateway
never brings deleted text back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from itertools import groupby
from typing import Any

import asyncpg

from libs.db import Conn
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
    SessionQuit,
)
from services.fanout.handlers import StoredItem, new_item

SIDE = "x:"


def side_key(target: str) -> str:
    """Where the items that change a target's messages are numbered."""
    return SIDE + target


def feature_item(event: AnyEvent) -> StoredItem | None:
    """The item of an event beyond IRC, or None for any other event."""
    match event:
        case ReactionChanged():
            command = "REACT" if event.added else "UNREACT"
            return _change(event, command, [str(event.message_id), event.emoji])
        case MessageEdited():
            return _change(event, "EDIT", [str(event.message_id)], event.body, event.meta)
        case MessageDeleted():
            return _change(event, "DELETE", [str(event.message_id)])
        case PinChanged():
            return _change(event, "PIN" if event.pinned else "UNPIN", [str(event.message_id)])
        case ReadMarked():
            return new_item(
                event,
                "MARKREAD",
                event.nick,
                event.to,
                [str(event.pos)],
                sender_id=event.session_id,
                sessions=(event.session_id,),
            )
        case KeyAnnounced():
            return new_item(
                event,
                "PUBKEY",
                event.nick,
                event.nick,
                body={"alg": event.alg, "key": event.key},
                sender_id=event.session_id,
                sessions=(event.session_id,),
                channels=tuple(event.channels),
            )
    return None


def _change(
    event: ReactionChanged | MessageEdited | MessageDeleted | PinChanged,
    command: str,
    params: list[str],
    body: Any = None,
    meta: dict[str, Any] | None = None,
) -> StoredItem:
    dm = () if event.peer_id is None else (event.actor_id, event.peer_id)
    return new_item(
        event,
        command,
        event.actor,
        event.to,
        params,
        body,
        sender_id=event.actor_id,
        meta=meta,
        channel=event.channel,
        sessions=dm,
        target=side_key(event.target),
    )


async def admit(conn: Conn, events: list[AnyEvent]) -> list[AnyEvent]:
    """The batch without the changes that would change nothing, so no item announces them.

    The gateway refuses these already, from what is projected; two commands
    racing past it (a double click) are settled here, in stream order: a
    reaction already there or not there, a pin already so, a second delete,
    anything but an edit of a deleted message, a read marker not moving on.
    """
    changes = [e for e in events if isinstance(e, MessageChange | ReadMarked)]
    if not changes:
        return events
    state = await _State.load(conn, changes)
    return [e for e in events if state.admits(e)]


class _State:
    """What the changes of a batch find, updated as they are admitted in order."""

    def __init__(self) -> None:
        self.reactions: set[tuple[uuid.UUID, uuid.UUID, str]] = set()
        self.deleted: set[uuid.UUID] = set()
        self.pinned: set[uuid.UUID] = set()
        self.markers: dict[tuple[uuid.UUID, str], int] = {}

    @classmethod
    async def load(cls, conn: Conn, changes: Sequence[AnyEvent]) -> _State:
        state = cls()
        ids = list({e.message_id for e in changes if isinstance(e, MessageChange)})
        if ids:
            for row in await conn.fetch(_LOAD_REACTIONS, ids):
                state.reactions.add((row["event_id"], row["session_id"], row["emoji"]))
            for row in await conn.fetch(_LOAD_FLAGS, ids):
                if row["deleted"]:
                    state.deleted.add(row["event_id"])
                if row["pinned"]:
                    state.pinned.add(row["event_id"])
        marks = [e for e in changes if isinstance(e, ReadMarked)]
        if marks:
            rows = await conn.fetch(
                _LOAD_MARKERS, [e.session_id for e in marks], [e.conversation for e in marks]
            )
            state.markers = {(r["session_id"], r["target"]): r["pos"] for r in rows}
        return state

    def admits(self, event: AnyEvent) -> bool:
        match event:
            case ReactionChanged():
                key = (event.message_id, event.actor_id, event.emoji)
                if event.message_id in self.deleted or (key in self.reactions) == event.added:
                    return False
                (self.reactions.add if event.added else self.reactions.discard)(key)
            case PinChanged():
                message = event.message_id
                if message in self.deleted or (message in self.pinned) == event.pinned:
                    return False
                (self.pinned.add if event.pinned else self.pinned.discard)(message)
            case MessageDeleted():
                if event.message_id in self.deleted:
                    return False
                self.deleted.add(event.message_id)
                self.pinned.discard(event.message_id)
                self.reactions = {r for r in self.reactions if r[0] != event.message_id}
            case ReadMarked():
                key2 = (event.session_id, event.conversation)
                if self.markers.get(key2, -1) >= event.pos:
                    return False
                self.markers[key2] = event.pos
        return True


_LOAD_REACTIONS = """
SELECT m.event_id, r.session_id, r.emoji FROM delivery.reactions r
JOIN delivery.messages m ON m.id = r.message_id WHERE m.event_id = ANY($1::uuid[])
"""

_LOAD_FLAGS = """
SELECT m.event_id,
       EXISTS (SELECT 1 FROM delivery.tombstones t WHERE t.message_id = m.id) AS deleted,
       EXISTS (SELECT 1 FROM delivery.pins p WHERE p.message_id = m.id) AS pinned
FROM delivery.messages m WHERE m.event_id = ANY($1::uuid[])
"""

_LOAD_MARKERS = """
SELECT r.session_id, r.target, r.pos FROM delivery.read_markers r
JOIN unnest($1::uuid[], $2::text[]) AS u(session_id, target)
    ON r.session_id = u.session_id AND r.target = u.target
"""


async def project(conn: Conn, events: Sequence[AnyEvent]) -> None:
    """Apply the effects of a batch's events beyond IRC, in stream order.

    Runs in the batch's transaction, after its items are written.
    """
    replies = [
        (e.event_id, parent)
        for e in events
        if isinstance(e, MessagePosted) and (parent := reply_parent(e.meta)) is not None
    ]
    if replies:
        await conn.execute(
            _LINK_REPLIES, [child for child, _ in replies], [parent for _, parent in replies]
        )
    changes = [e for e in events if isinstance(e, MessageChange)]
    if changes:
        await conn.execute(_NOTES, [e.event_id for e in changes], [e.message_id for e in changes])
    for marks, run in groupby(events, lambda e: isinstance(e, ReadMarked)):
        if marks:
            await _mark(conn, [e for e in run if isinstance(e, ReadMarked)])
        else:
            for event in run:
                await _apply_one(conn, event)


async def _mark(conn: Conn, marks: list[ReadMarked]) -> None:
    """A run of read markers in one statement: the last of each key (``admit`` let only rises)."""
    last = {(e.session_id, e.conversation): e for e in marks}.values()
    await conn.execute(
        _MARK,
        [e.session_id for e in last],
        [e.conversation for e in last],
        [e.pos for e in last],
        [e.ts for e in last],
    )


async def _apply_one(conn: Conn, event: AnyEvent) -> None:
    """The effect of one change, on the state the changes before it left."""
    match event:
        case ReactionChanged(added=True):
            await conn.execute(
                _ADD_REACTION,
                event.message_id,
                event.target,
                event.actor_id,
                event.emoji,
                event.actor,
                event.ts,
            )
        case ReactionChanged():
            await conn.execute(
                _REMOVE_REACTION, event.message_id, event.target, event.actor_id, event.emoji
            )
        case MessageEdited():
            edited = await conn.fetchval(
                _EDIT,
                event.message_id,
                event.target,
                event.actor_id,
                event.event_id,
                event.ts,
                event.body,
            )
            if edited is None:  # deleted (or gone) meanwhile: the edit carries no text
                await conn.execute(_SCRUB, event.event_id)
        case MessageDeleted():
            await conn.execute(_DELETE, event.message_id, event.target, event.actor, event.ts)
        case PinChanged(pinned=True):
            await conn.execute(_PIN, event.message_id, event.target, event.actor, event.ts)
        case PinChanged():
            await conn.execute(_UNPIN, event.message_id, event.target)
        case SessionQuit():  # on the session's partition, after its every marker
            await conn.execute(
                "DELETE FROM delivery.read_markers WHERE session_id = $1", event.session_id
            )


def reply_parent(meta: dict[str, Any]) -> uuid.UUID | None:
    """The message ``meta.reply_to`` names, when it is a well-formed id."""
    value = meta.get("reply_to")
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


_LINK_REPLIES = """
INSERT INTO delivery.replies (message_id, parent_id)
SELECT c.id, p.id
FROM unnest($1::uuid[], $2::uuid[]) AS u(child, parent)
JOIN delivery.messages c ON c.event_id = u.child
JOIN delivery.messages p
    ON p.event_id = u.parent AND p.target = c.target AND p.command IN ('PRIVMSG', 'NOTICE')
ON CONFLICT DO NOTHING
"""

_NOTES = """
INSERT INTO delivery.notes (item_id, message_id)
SELECT i.id, m.id
FROM unnest($1::uuid[], $2::uuid[]) AS u(item, message)
JOIN delivery.messages i ON i.event_id = u.item
LEFT JOIN delivery.messages m ON m.event_id = u.message
ON CONFLICT DO NOTHING
"""

# The message a change applies to: a chat line of the same target, not deleted.
_LIVE = """
SELECT m.id, m.body FROM delivery.messages m
WHERE m.event_id = $1 AND m.target = $2 AND m.command IN ('PRIVMSG', 'NOTICE')
  AND NOT EXISTS (SELECT 1 FROM delivery.tombstones t WHERE t.message_id = m.id)
"""

_ADD_REACTION = f"""
INSERT INTO delivery.reactions (message_id, session_id, emoji, nick, created_at)
SELECT live.id, $3, $4, $5, $6 FROM ({_LIVE}) AS live
ON CONFLICT DO NOTHING
"""

_REMOVE_REACTION = """
DELETE FROM delivery.reactions r USING delivery.messages m
WHERE m.event_id = $1 AND m.target = $2 AND r.message_id = m.id
  AND r.session_id = $3 AND r.emoji = $4
"""

_EDIT = f"""
WITH live AS ({_LIVE} AND m.sender_id = $3 FOR UPDATE OF m),
kept AS (
    INSERT INTO delivery.edits (message_id, edit_event, previous, edited_at)
    SELECT id, $4, body, $5 FROM live
    ON CONFLICT DO NOTHING
    RETURNING message_id
)
UPDATE delivery.messages x SET body = $6::jsonb FROM kept WHERE x.id = kept.message_id
RETURNING x.id
"""

_SCRUB = """
UPDATE delivery.messages SET body = '[]'::jsonb, meta = '{}'::jsonb WHERE event_id = $1
"""

# The text goes from the message and from every edit of it; reactions, edit
# history and pins go; the row stays, with its tombstone.
_DELETE = """
WITH target_row AS (
    SELECT m.id FROM delivery.messages m
    WHERE m.event_id = $1 AND m.target = $2 AND m.command IN ('PRIVMSG', 'NOTICE')
),
stone AS (
    INSERT INTO delivery.tombstones (message_id, deleted_by, deleted_at)
    SELECT id, $3, $4 FROM target_row
    ON CONFLICT DO NOTHING
    RETURNING message_id
),
emptied AS (
    UPDATE delivery.messages x SET body = '[]'::jsonb, meta = '{}'::jsonb
    FROM stone WHERE x.id = stone.message_id
),
edit_items AS (
    UPDATE delivery.messages x SET body = '[]'::jsonb, meta = '{}'::jsonb
    FROM delivery.notes n, stone
    WHERE n.message_id = stone.message_id AND x.id = n.item_id AND x.command = 'EDIT'
),
history AS (DELETE FROM delivery.edits e USING stone WHERE e.message_id = stone.message_id),
reactions AS (DELETE FROM delivery.reactions r USING stone WHERE r.message_id = stone.message_id)
DELETE FROM delivery.pins p USING stone WHERE p.message_id = stone.message_id
"""

_PIN = f"""
INSERT INTO delivery.pins (message_id, channel, pinned_by, pinned_at)
SELECT live.id, $2, $3, $4 FROM ({_LIVE}) AS live
ON CONFLICT DO NOTHING
"""

_UNPIN = """
DELETE FROM delivery.pins p USING delivery.messages m
WHERE m.event_id = $1 AND m.target = $2 AND p.message_id = m.id
"""

_MARK = """
INSERT INTO delivery.read_markers AS r (session_id, target, pos, updated_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::timestamptz[])
ON CONFLICT (session_id, target) DO UPDATE
SET pos = greatest(r.pos, excluded.pos), updated_at = excluded.updated_at
"""


async def sweep(pool: asyncpg.Pool[Any], limit: int = 10_000) -> int:
    """Remove change items whose message is gone, once no queue holds them.

    Bounded per call; returns how many it removed. (Read markers go with their
    session's QUIT, in ``project``.)
    """
    result = await pool.execute(
        """DELETE FROM delivery.messages WHERE id IN (
               SELECT n.item_id FROM delivery.notes n
               WHERE n.message_id IS NULL AND NOT EXISTS (
                   SELECT 1 FROM delivery.client_queues q WHERE q.message_id = n.item_id)
               LIMIT $1)""",
        limit,
    )
    return int(result.split()[-1])
