"""Presence's SQL: channels and membership, decided in transactions."""

from __future__ import annotations

import uuid

import asyncpg

from libs.db import Conn


async def lock_channel(conn: Conn, folded: str) -> None:
    """Serialise every membership change of one channel for this transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", folded)


async def channel(conn: Conn, folded: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM presence.channels WHERE name_folded = $1", folded)


async def create_channel(conn: Conn, folded: str, name: str) -> None:
    await conn.execute(
        "INSERT INTO presence.channels (name_folded, name, modes) VALUES ($1, $2, 'nt')",
        folded,
        name,
    )


async def is_member(conn: Conn, folded: str, session_id: uuid.UUID) -> bool:
    found = await conn.fetchval(
        "SELECT true FROM presence.members WHERE channel = $1 AND session_id = $2",
        folded,
        session_id,
    )
    return bool(found)


async def add_member(conn: Conn, folded: str, session_id: uuid.UUID, is_op: bool) -> None:
    await conn.execute(
        "INSERT INTO presence.members (channel, session_id, is_op) VALUES ($1, $2, $3)",
        folded,
        session_id,
        is_op,
    )


async def remove_member(conn: Conn, folded: str, session_id: uuid.UUID) -> None:
    """Remove a member; the channel ceases to exist with its last member."""
    await conn.execute(
        "DELETE FROM presence.members WHERE channel = $1 AND session_id = $2", folded, session_id
    )
    await conn.execute(
        """DELETE FROM presence.channels ch WHERE name_folded = $1
           AND NOT EXISTS (SELECT 1 FROM presence.members m WHERE m.channel = ch.name_folded)""",
        folded,
    )


async def member(conn: Conn, folded: str, session_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT is_op, is_voiced FROM presence.members WHERE channel = $1 AND session_id = $2",
        folded,
        session_id,
    )


async def member_count(conn: Conn, folded: str) -> int:
    return int(
        await conn.fetchval("SELECT count(*) FROM presence.members WHERE channel = $1", folded)
    )


async def session_by_nick(conn: Conn, folded_nick: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, nick FROM identity.sessions WHERE nick_folded = $1", folded_nick
    )


async def ban_masks(conn: Conn, folded: str) -> list[str]:
    rows = await conn.fetch("SELECT mask FROM presence.bans WHERE channel = $1", folded)
    return [r["mask"] for r in rows]


async def bans(conn: Conn, folded: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT mask, set_by, set_at FROM presence.bans WHERE channel = $1 ORDER BY set_at, mask",
        folded,
    )


async def add_ban(conn: Conn, folded: str, mask: str, set_by: str) -> bool:
    done = await conn.execute(
        """INSERT INTO presence.bans (channel, mask, set_by) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING""",
        folded,
        mask,
        set_by,
    )
    return bool(done.endswith(" 1"))


async def remove_ban(conn: Conn, folded: str, mask: str) -> bool:
    done = await conn.execute(
        "DELETE FROM presence.bans WHERE channel = $1 AND mask = $2", folded, mask
    )
    return bool(done.endswith(" 1"))


async def take_invite(conn: Conn, folded: str, session_id: uuid.UUID) -> bool:
    """Use up an invite (it lets the invitee past +i once)."""
    done = await conn.execute(
        "DELETE FROM presence.invites WHERE channel = $1 AND session_id = $2", folded, session_id
    )
    return bool(done.endswith(" 1"))


async def add_invite(conn: Conn, folded: str, session_id: uuid.UUID, by: str) -> None:
    await conn.execute(
        """INSERT INTO presence.invites (channel, session_id, invited_by) VALUES ($1, $2, $3)
           ON CONFLICT (channel, session_id) DO UPDATE SET invited_by = $3, created_at = now()""",
        folded,
        session_id,
        by,
    )


async def set_topic(conn: Conn, folded: str, topic: str, by: str) -> None:
    await conn.execute(
        """UPDATE presence.channels SET topic = $2, topic_set_by = $3, topic_set_at = now()
           WHERE name_folded = $1""",
        folded,
        topic or None,
        by,
    )


async def set_modes(
    conn: Conn, folded: str, flags: str, key: str | None, limit: int | None
) -> None:
    await conn.execute(
        "UPDATE presence.channels SET modes = $2, key = $3, user_limit = $4 WHERE name_folded = $1",
        folded,
        flags,
        key,
        limit,
    )


async def set_member_mode(
    conn: Conn, folded: str, session_id: uuid.UUID, letter: str, value: bool
) -> None:
    column = {"o": "is_op", "v": "is_voiced"}[letter]
    await conn.execute(
        f"UPDATE presence.members SET {column} = $3 WHERE channel = $1 AND session_id = $2",
        folded,
        session_id,
        value,
    )


async def channels_of(conn: Conn, session_id: uuid.UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT ch.name_folded, ch.name FROM presence.members m
           JOIN presence.channels ch ON ch.name_folded = m.channel
           WHERE m.session_id = $1 ORDER BY ch.name_folded""",
        session_id,
    )
