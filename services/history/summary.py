"""What happened to chat lines since they were said: reactions, replies, edits,
deletion and pins, attached to history items."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec

from libs.items import Item, Reaction, Tombstone, rfc3339

CHAT = ("PRIVMSG", "NOTICE")

_SUMMARY = """
SELECT m.event_id,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'emoji', g.emoji, 'count', g.n, 'nicks', g.nicks) ORDER BY g.first), '[]')
        FROM (SELECT r.emoji, count(*) AS n, array_agg(r.nick ORDER BY r.created_at) AS nicks,
                     min(r.created_at) AS first
              FROM delivery.reactions r WHERE r.message_id = m.id GROUP BY r.emoji) g
       ) AS reactions,
       (SELECT count(*) FROM delivery.replies p WHERE p.parent_id = m.id) AS reply_count,
       (SELECT max(e.edited_at) FROM delivery.edits e WHERE e.message_id = m.id) AS edited,
       t.deleted_by, t.deleted_at,
       EXISTS (SELECT 1 FROM delivery.pins p WHERE p.message_id = m.id) AS pinned
FROM delivery.messages m
LEFT JOIN delivery.tombstones t ON t.message_id = m.id
WHERE m.event_id = ANY($1::uuid[])
"""


async def attach(pool: asyncpg.Pool[Any], items: list[Item]) -> list[Item]:
    """Fill in the summaries of the chat lines among ``items`` (in place); returns them."""
    ids = [uuid.UUID(i.id) for i in items if i.command in CHAT]
    if not ids:
        return items
    found = {str(r["event_id"]): r for r in await pool.fetch(_SUMMARY, ids)}
    for item in items:
        row = found.get(item.id)
        if row is None:
            continue
        item.reactions = msgspec.convert(row["reactions"], list[Reaction])
        item.reply_count = int(row["reply_count"])
        item.edited = rfc3339(row["edited"]) if row["edited"] else None
        if row["deleted_by"] is not None:
            item.deleted = Tombstone(by=row["deleted_by"], ts=rfc3339(row["deleted_at"]))
        item.pinned = bool(row["pinned"])
    return items
