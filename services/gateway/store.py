"""The gateway's SQL: identities and clients (its own), and reads of queues and channels."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from libs.db import Conn
from libs.items import ITEM_COLUMNS


@dataclass(frozen=True)
class Caller:
    """The authenticated client of a request."""

    client_id: uuid.UUID
    session_id: uuid.UUID
    nick: str
    acked_seq: int


class NickInUse(Exception):
    """The folded nick is taken."""


async def create_session(
    conn: Conn,
    session_id: uuid.UUID,
    nick: str,
    folded: str,
    password_hash: str | None,
) -> None:
    try:
        await conn.execute(
            """INSERT INTO identity.sessions (id, nick, nick_folded, password_hash)
               VALUES ($1, $2, $3, $4)""",
            session_id,
            nick,
            folded,
            password_hash,
        )
    except asyncpg.UniqueViolationError as error:
        raise NickInUse(nick) from error


async def create_client(
    conn: Conn | asyncpg.Pool[Any],
    client_id: uuid.UUID,
    session_id: uuid.UUID,
    token_hash: bytes,
    user_agent: str | None,
) -> None:
    await conn.execute(
        """INSERT INTO identity.clients (id, session_id, token_hash, user_agent)
           VALUES ($1, $2, $3, $4)""",
        client_id,
        session_id,
        token_hash,
        user_agent,
    )


async def session_for_login(pool: asyncpg.Pool[Any], folded: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT id, nick, password_hash FROM identity.sessions WHERE nick_folded = $1", folded
    )


async def caller_by_token(pool: asyncpg.Pool[Any], token_hash: bytes) -> Caller | None:
    row = await pool.fetchrow(
        """SELECT c.id, c.session_id, s.nick, c.acked_seq
           FROM identity.clients c JOIN identity.sessions s ON s.id = c.session_id
           WHERE c.token_hash = $1""",
        token_hash,
    )
    if row is None:
        return None
    return Caller(row["id"], row["session_id"], row["nick"], row["acked_seq"])


async def delete_client(pool: asyncpg.Pool[Any], client_id: uuid.UUID) -> None:
    await pool.execute("DELETE FROM identity.clients WHERE id = $1", client_id)


async def acknowledge(pool: asyncpg.Pool[Any], client_id: uuid.UUID, seq: int) -> None:
    """Record that a client has seen its queue up to ``seq`` (never moves backwards)."""
    await pool.execute(
        """UPDATE identity.clients SET acked_seq = $2, last_seen = now()
           WHERE id = $1 AND acked_seq < $2""",
        client_id,
        seq,
    )


async def queue_after(
    pool: asyncpg.Pool[Any], client_id: uuid.UUID, after: int, limit: int
) -> list[asyncpg.Record]:
    return await pool.fetch(
        f"""SELECT q.seq, {ITEM_COLUMNS}
            FROM delivery.client_queues q JOIN delivery.messages m ON m.id = q.message_id
            WHERE q.client_id = $1 AND q.seq > $2
            ORDER BY q.seq LIMIT $3""",
        client_id,
        after,
        limit,
    )


async def last_seq(pool: asyncpg.Pool[Any], client_id: uuid.UUID) -> int:
    found = await pool.fetchval(
        "SELECT last_seq FROM delivery.client_seq WHERE client_id = $1", client_id
    )
    return int(found or 0)


async def channels_of(pool: asyncpg.Pool[Any], session_id: uuid.UUID) -> list[str]:
    rows = await pool.fetch(
        """SELECT ch.name FROM presence.members m
           JOIN presence.channels ch ON ch.name_folded = m.channel
           WHERE m.session_id = $1 ORDER BY ch.name_folded""",
        session_id,
    )
    return [r["name"] for r in rows]


async def away_of(pool: asyncpg.Pool[Any], session_id: uuid.UUID) -> str | None:
    found = await pool.fetchval(
        "SELECT away_message FROM identity.sessions WHERE id = $1", session_id
    )
    return None if found is None else str(found)


@dataclass(frozen=True)
class SendCheck:
    """What deciding a channel send needs: does it exist, its name, is the sender in it."""

    name: str | None
    is_member: bool


async def channel_send_check(
    pool: asyncpg.Pool[Any], folded: str, session_id: uuid.UUID
) -> SendCheck:
    row = await pool.fetchrow(
        """SELECT ch.name, m.session_id IS NOT NULL AS is_member
           FROM presence.channels ch
           LEFT JOIN presence.members m ON m.channel = ch.name_folded AND m.session_id = $2
           WHERE ch.name_folded = $1""",
        folded,
        session_id,
    )
    if row is None:
        return SendCheck(None, False)
    return SendCheck(row["name"], row["is_member"])


async def session_by_nick(pool: asyncpg.Pool[Any], folded: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT id, nick, away_message FROM identity.sessions WHERE nick_folded = $1", folded
    )


# --- idempotency -----------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming an idempotency key."""

    event_id: uuid.UUID
    # the stored answer of an earlier identical request, or None when this request runs
    status: int | None = None
    response: Any = None
    mismatch: bool = False
    in_flight: bool = False


async def claim_key(
    pool: asyncpg.Pool[Any],
    session_id: uuid.UUID,
    key: str,
    request_hash: bytes,
    event_id: uuid.UUID,
    lease_seconds: float,
) -> Claim:
    """Claim a key for this request, or find what an earlier request with it did.

    A claim whose holder has not answered within the lease (it crashed, or its
    publish failed) is taken over, keeping its event id so that a publish that
    did reach the stream is recognised as the same event.
    """
    async with pool.acquire() as conn, conn.transaction():
        inserted = await conn.fetchval(
            """INSERT INTO identity.idempotency (session_id, key, request_hash, event_id)
               VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING event_id""",
            session_id,
            key,
            request_hash,
            event_id,
        )
        if inserted is not None:
            return Claim(event_id)
        row = await conn.fetchrow(
            """SELECT request_hash, event_id, status, response,
                      created_at < now() - make_interval(secs => $3) AS stale
               FROM identity.idempotency WHERE session_id = $1 AND key = $2 FOR UPDATE""",
            session_id,
            key,
            lease_seconds,
        )
        assert row is not None
        if bytes(row["request_hash"]) != request_hash:
            return Claim(row["event_id"], mismatch=True)
        if row["status"] is not None:
            return Claim(row["event_id"], status=row["status"], response=row["response"])
        if not row["stale"]:
            return Claim(row["event_id"], in_flight=True)
        await conn.execute(
            """UPDATE identity.idempotency SET created_at = now()
               WHERE session_id = $1 AND key = $2""",
            session_id,
            key,
        )
        return Claim(row["event_id"])


async def complete_key(
    pool: asyncpg.Pool[Any], session_id: uuid.UUID, key: str, status: int, response: Any
) -> None:
    await pool.execute(
        """UPDATE identity.idempotency SET status = $3, response = $4
           WHERE session_id = $1 AND key = $2""",
        session_id,
        key,
        status,
        response,
    )


async def release_key(pool: asyncpg.Pool[Any], session_id: uuid.UUID, key: str) -> None:
    """Let the next retry take the key over at once (its outcome is unknown)."""
    await pool.execute(
        """UPDATE identity.idempotency SET created_at = '-infinity'
           WHERE session_id = $1 AND key = $2 AND status IS NULL""",
        session_id,
        key,
    )


async def prune_idempotency(pool: asyncpg.Pool[Any], older_than: float) -> int:
    """Forget idempotency keys older than ``older_than`` seconds."""
    result = await pool.execute(
        "DELETE FROM identity.idempotency WHERE created_at < now() - make_interval(secs => $1)",
        older_than,
    )
    return int(result.split()[-1])
