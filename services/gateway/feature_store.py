"""The gateway's SQL for commands beyond IRC: reads of messages, reactions, pins and
read markers (fanout's projections), and the signing key (the gateway's own)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from libs.db import Conn


async def message(pool: asyncpg.Pool[Any], event_id: uuid.UUID, key: str) -> asyncpg.Record | None:
    """A chat line of target ``key``, whether it is deleted and whether it is pinned."""
    return await pool.fetchrow(
        """SELECT m.id, m.sender_id, m.pos,
                  EXISTS (SELECT 1 FROM delivery.tombstones t WHERE t.message_id = m.id)
                      AS deleted,
                  EXISTS (SELECT 1 FROM delivery.pins p WHERE p.message_id = m.id) AS pinned
           FROM delivery.messages m
           WHERE m.event_id = $1 AND m.target = $2 AND m.command IN ('PRIVMSG', 'NOTICE')""",
        event_id,
        key,
    )


async def has_reaction(
    pool: asyncpg.Pool[Any], message_id: int, session_id: uuid.UUID, emoji: str
) -> bool:
    found = await pool.fetchval(
        """SELECT EXISTS (SELECT 1 FROM delivery.reactions
                          WHERE message_id = $1 AND session_id = $2 AND emoji = $3)""",
        message_id,
        session_id,
        emoji,
    )
    return bool(found)


async def last_pos(pool: asyncpg.Pool[Any], key: str) -> int:
    found = await pool.fetchval("SELECT last_pos FROM delivery.targets WHERE target = $1", key)
    return int(found or 0)


async def read_marker(pool: asyncpg.Pool[Any], session_id: uuid.UUID, key: str) -> int | None:
    found = await pool.fetchval(
        "SELECT pos FROM delivery.read_markers WHERE session_id = $1 AND target = $2",
        session_id,
        key,
    )
    return None if found is None else int(found)


async def other_members(
    pool: asyncpg.Pool[Any], folded: str, session_id: uuid.UUID, limit: int
) -> list[uuid.UUID]:
    """At most ``limit`` members of a channel other than ``session_id``."""
    rows = await pool.fetch(
        """SELECT session_id FROM presence.members
           WHERE channel = $1 AND session_id <> $2 LIMIT $3""",
        folded,
        session_id,
        limit,
    )
    return [r["session_id"] for r in rows]


async def set_signing_key(conn: Conn, session_id: uuid.UUID, key: str) -> None:
    await conn.execute(
        "UPDATE identity.sessions SET signing_key = $2 WHERE id = $1", session_id, key
    )


async def signing_key(pool: asyncpg.Pool[Any], folded_nick: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT nick, signing_key FROM identity.sessions WHERE nick_folded = $1", folded_nick
    )


# Unread: chat lines from others after the read marker; without one, after the
# session's latest JOIN of the channel (a DM without one: all of it). Deleted
# lines and lines beyond retention do not count; each count stops at UNREAD_CAP.
UNREAD_CAP = 1000

_UNREAD = """
WITH mine AS (
    SELECT m.channel AS target, ch.name AS name FROM presence.members m
    JOIN presence.channels ch ON ch.name_folded = m.channel
    WHERE m.session_id = $1
    UNION ALL
    SELECT t.target, s.nick FROM delivery.targets t
    JOIN identity.sessions s ON s.id = (
        CASE WHEN split_part(t.target, ':', 2) = $1::text
             THEN split_part(t.target, ':', 3) ELSE split_part(t.target, ':', 2) END)::uuid
    WHERE t.target LIKE 'dm:%'
      AND (split_part(t.target, ':', 2) = $1::text OR split_part(t.target, ':', 3) = $1::text)
)
SELECT mine.name, r.pos AS marker,
       (SELECT count(*) FROM (
            SELECT 1 FROM delivery.messages x
            WHERE x.target = mine.target
              AND x.pos > greatest(
                  coalesce(r.pos, (SELECT max(j.pos) FROM delivery.messages j
                                   WHERE j.target = mine.target AND j.command = 'JOIN'
                                     AND j.sender_id = $1), 0),
                  t.last_pos - $2)
              AND x.command IN ('PRIVMSG', 'NOTICE')
              AND x.sender_id IS DISTINCT FROM $1
              AND NOT EXISTS (SELECT 1 FROM delivery.tombstones d WHERE d.message_id = x.id)
            LIMIT $3) AS u) AS unread
FROM mine
LEFT JOIN delivery.targets t ON t.target = mine.target
LEFT JOIN delivery.read_markers r ON r.session_id = $1 AND r.target = mine.target
"""


async def unread(pool: asyncpg.Pool[Any], session_id: uuid.UUID, keep: int) -> list[asyncpg.Record]:
    """Per channel the session is in and per DM it has: name, marker and unread count."""
    return await pool.fetch(_UNREAD, session_id, keep, UNREAD_CAP)
