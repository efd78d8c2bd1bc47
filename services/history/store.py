"""History's SQL: keyset pages over a target's items, and who may read them."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from libs.items import ITEM_COLUMNS, Item, item_from_row


async def channel_modes(pool: asyncpg.Pool[Any], folded: str) -> str | None:
    """A channel's flag modes (``"nst"``), or None when there is no such channel."""
    modes = await pool.fetchval(
        "SELECT modes FROM presence.channels WHERE name_folded = $1", folded
    )
    return None if modes is None else str(modes)


async def is_member(pool: asyncpg.Pool[Any], folded: str, session_id: uuid.UUID) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT true FROM presence.members WHERE channel = $1 AND session_id = $2",
            folded,
            session_id,
        )
    )


async def session_by_nick(pool: asyncpg.Pool[Any], folded_nick: str) -> uuid.UUID | None:
    found = await pool.fetchval(
        "SELECT id FROM identity.sessions WHERE nick_folded = $1", folded_nick
    )
    return found if isinstance(found, uuid.UUID) else None


async def page(
    pool: asyncpg.Pool[Any],
    target: str,
    before: int | None,
    after: int | None,
    limit: int,
    keep: int,
) -> tuple[list[Item], bool]:
    """Up to ``limit`` items oldest first, and whether more lie beyond in that direction.

    With ``after`` the page starts just after it (and ends before ``before``
    when both are given); with only ``before`` it ends just before it. Only the
    newest ``keep`` items of a target are history; older ones are being trimmed.
    """
    oldest = await pool.fetchval(
        "SELECT last_pos - $2 FROM delivery.targets WHERE target = $1", target, keep
    )
    floor = max(int(oldest or 0), 0)
    if after is not None:
        rows = await pool.fetch(
            f"""SELECT {ITEM_COLUMNS} FROM delivery.messages m
                WHERE m.target = $1 AND m.pos > $2 AND m.pos < $4 ORDER BY m.pos LIMIT $3""",
            target,
            max(after, floor),
            limit + 1,
            before if before is not None else 2**62,
        )
        return [item_from_row(r) for r in rows[:limit]], len(rows) > limit
    rows = await pool.fetch(
        f"""SELECT {ITEM_COLUMNS} FROM delivery.messages m
            WHERE m.target = $1 AND m.pos < $2 AND m.pos > $4 ORDER BY m.pos DESC LIMIT $3""",
        target,
        before if before is not None else 2**62,
        limit + 1,
        floor,
    )
    return [item_from_row(r) for r in reversed(rows[:limit])], len(rows) > limit
