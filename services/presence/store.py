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
