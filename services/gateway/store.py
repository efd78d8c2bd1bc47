"""The gateway's SQL: identities and clients (its own), and reads of queues and channels."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from libs.db import Conn
from libs.irc import fold
from libs.items import QUEUE_COLUMNS


@dataclass(frozen=True)
class Caller:
    """The client of a request: authenticated, or with ``token_hash`` set, its token still
    to be checked by the first statement the request runs (its nick is read there too)."""

    client_id: uuid.UUID
    session_id: uuid.UUID
    nick: str
    token_hash: bytes | None = None


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
        """SELECT c.id, c.session_id, s.nick
           FROM identity.clients c JOIN identity.sessions s ON s.id = c.session_id
           WHERE c.token_hash = $1""",
        token_hash,
    )
    if row is None:
        return None
    return Caller(row["id"], row["session_id"], row["nick"])


async def delete_client(pool: asyncpg.Pool[Any], client_id: uuid.UUID) -> None:
    await pool.execute("DELETE FROM identity.clients WHERE id = $1", client_id)


async def acknowledge_many(
    pool: asyncpg.Pool[Any], cursors: dict[uuid.UUID, int]
) -> frozenset[uuid.UUID]:
    """Record polls: each client has seen its queue up to its seq (a cursor never moves
    backwards) and is online now; returns the clients written (a revoked client's row
    is gone). Rows are locked in id order, as every writer of many client rows
    should, so that two such statements wait for each other instead of deadlocking."""
    rows = await pool.fetch(
        """WITH polled AS (
               SELECT * FROM unnest($1::uuid[], $2::bigint[]) AS p(id, seq)
           ), locked AS (
               SELECT c.id FROM identity.clients c JOIN polled p USING (id)
               ORDER BY c.id FOR NO KEY UPDATE OF c
           )
           UPDATE identity.clients c
           SET acked_seq = greatest(c.acked_seq, polled.seq), last_seen = now()
           FROM polled JOIN locked USING (id)
           WHERE c.id = polled.id
           RETURNING c.id""",
        list(cursors),
        list(cursors.values()),
    )
    return frozenset(r["id"] for r in rows)


async def queue_of_token(
    pool: asyncpg.Pool[Any], client_id: uuid.UUID, token_hash: bytes, after: int, limit: int
) -> list[asyncpg.Record] | None:
    """``queue_after``, in the same statement checking that the token is still the
    client's: None when it is not (logged out, expired, ended)."""
    rows = await pool.fetch(
        f"""SELECT {QUEUE_COLUMNS}
            FROM identity.clients c
            LEFT JOIN LATERAL (
                SELECT q.seq, q.message_id FROM delivery.client_queues q
                WHERE q.client_id = c.id AND q.seq > $2 ORDER BY q.seq LIMIT $3
            ) q ON true
            LEFT JOIN delivery.messages m ON m.id = q.message_id
            WHERE c.id = $1 AND c.token_hash = $4
            ORDER BY q.seq""",
        client_id,
        after,
        limit,
        token_hash,
    )
    if not rows:
        return None
    return [] if rows[0]["seq"] is None else rows


async def queue_after(
    pool: asyncpg.Pool[Any], client_id: uuid.UUID, after: int, limit: int
) -> list[asyncpg.Record]:
    return await pool.fetch(
        f"""SELECT {QUEUE_COLUMNS}
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
    """What deciding a channel send needs, read by one statement."""

    name: str | None  # None: no such channel
    modes: str
    is_member: bool
    privileged: bool  # +o or +v
    bans: list[str]  # only read for members without +o or +v
    nick: str | None  # the caller's, when its token was checked: None if no longer valid


async def channel_send_check(pool: asyncpg.Pool[Any], folded: str, caller: Caller) -> SendCheck:
    """The channel and the sender's standing in it; and, for a caller whose token is
    still to be checked, whether it is valid and the nick it has now."""
    row = await pool.fetchrow(
        """SELECT ch.name, coalesce(ch.modes, '') AS modes,
                  m.session_id IS NOT NULL AS is_member,
                  coalesce(m.is_op OR m.is_voiced, false) AS privileged,
                  CASE WHEN ch.name IS NULL OR coalesce(m.is_op OR m.is_voiced, false)
                       THEN '{}'::text[]
                       ELSE ARRAY(SELECT b.mask FROM presence.bans b
                                  WHERE b.channel = ch.name_folded) END AS bans,
                  (SELECT s.nick FROM identity.clients c
                   JOIN identity.sessions s ON s.id = c.session_id
                   WHERE c.id = $3 AND c.token_hash = $4) AS nick
           FROM (VALUES (1)) AS one (x)
           LEFT JOIN presence.channels ch ON ch.name_folded = $1
           LEFT JOIN presence.members m ON m.channel = ch.name_folded AND m.session_id = $2""",
        folded,
        caller.session_id,
        caller.client_id if caller.token_hash is not None else None,
        caller.token_hash,
    )
    assert row is not None
    return SendCheck(
        row["name"], row["modes"], row["is_member"], row["privileged"], row["bans"], row["nick"]
    )


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


# --- identity changes ----------------------------------------------------------------


async def change_nick(conn: Conn, session_id: uuid.UUID, nick: str) -> None:
    try:
        await conn.execute(
            "UPDATE identity.sessions SET nick = $2, nick_folded = $3 WHERE id = $1",
            session_id,
            nick,
            fold(nick),
        )
    except asyncpg.UniqueViolationError as error:
        raise NickInUse(nick) from error


async def set_away(pool: Conn | asyncpg.Pool[Any], session_id: uuid.UUID, away: str | None) -> None:
    await pool.execute(
        "UPDATE identity.sessions SET away_message = $2 WHERE id = $1", session_id, away
    )


async def set_password(pool: asyncpg.Pool[Any], session_id: uuid.UUID, password_hash: str) -> bool:
    """Set a password on a session that has none; False when it already had one."""
    done = await pool.execute(
        """UPDATE identity.sessions SET password_hash = $2
           WHERE id = $1 AND password_hash IS NULL""",
        session_id,
        password_hash,
    )
    return bool(done.endswith(" 1"))


async def set_oper(pool: asyncpg.Pool[Any], session_id: uuid.UUID, value: bool) -> None:
    await pool.execute("UPDATE identity.sessions SET is_oper = $2 WHERE id = $1", session_id, value)


async def delete_session(pool: asyncpg.Pool[Any], session_id: uuid.UUID) -> None:
    """Remove a session and (by cascade) its clients and keys; its nick is free again."""
    await pool.execute("DELETE FROM identity.sessions WHERE id = $1", session_id)


async def spoke(pool: asyncpg.Pool[Any], sessions: list[uuid.UUID]) -> None:
    """Record that sessions sent a message (WHOIS idle), each at most once a second.
    Rows are locked in id order (see ``acknowledge_many``)."""
    await pool.execute(
        """WITH locked AS (
               SELECT id FROM identity.sessions
               WHERE id = ANY($1::uuid[]) AND last_spoke < now() - interval '1 second'
               ORDER BY id FOR NO KEY UPDATE)
           UPDATE identity.sessions s SET last_spoke = now()
           FROM locked WHERE s.id = locked.id""",
        sessions,
    )


async def channel_folds_of(conn: Conn | asyncpg.Pool[Any], session_id: uuid.UUID) -> list[str]:
    rows = await conn.fetch(
        "SELECT channel FROM presence.members WHERE session_id = $1 ORDER BY channel", session_id
    )
    return [r["channel"] for r in rows]


# --- reads for informational commands and the read endpoints -------------------------


async def channel_row(pool: asyncpg.Pool[Any], folded: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        """SELECT ch.*, (SELECT count(*) FROM presence.members m
                         WHERE m.channel = ch.name_folded) AS member_count
           FROM presence.channels ch WHERE ch.name_folded = $1""",
        folded,
    )


async def membership(
    pool: asyncpg.Pool[Any], folded: str, session_id: uuid.UUID
) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT is_op, is_voiced FROM presence.members WHERE channel = $1 AND session_id = $2",
        folded,
        session_id,
    )


async def ban_masks(pool: asyncpg.Pool[Any], folded: str) -> list[str]:
    rows = await pool.fetch("SELECT mask FROM presence.bans WHERE channel = $1", folded)
    return [r["mask"] for r in rows]


async def members_of(
    pool: asyncpg.Pool[Any], folded: str, online_window: float
) -> list[asyncpg.Record]:
    """Members with their prefixes, away state and whether any client is online."""
    return await pool.fetch(
        """SELECT s.nick, s.away_message, s.is_oper, m.is_op, m.is_voiced,
                  EXISTS (SELECT 1 FROM identity.clients c WHERE c.session_id = s.id
                          AND c.last_seen > now() - make_interval(secs => $2)) AS online
           FROM presence.members m JOIN identity.sessions s ON s.id = m.session_id
           WHERE m.channel = $1
           ORDER BY NOT m.is_op, NOT m.is_voiced, s.nick_folded""",
        folded,
        online_window,
    )


async def visible_channels(
    pool: asyncpg.Pool[Any], session_id: uuid.UUID, pattern: str = "%"
) -> list[asyncpg.Record]:
    """Channels the caller may see (not secret, or secret with the caller in it) whose
    folded name matches a LIKE pattern."""
    return await pool.fetch(
        """SELECT ch.name, ch.topic, count(m.session_id) AS members
           FROM presence.channels ch JOIN presence.members m ON m.channel = ch.name_folded
           WHERE ch.name_folded LIKE $2 AND (position('s' in ch.modes) = 0 OR EXISTS (
               SELECT 1 FROM presence.members me
               WHERE me.channel = ch.name_folded AND me.session_id = $1))
           GROUP BY ch.name_folded, ch.name, ch.topic ORDER BY ch.name_folded""",
        session_id,
        pattern,
    )


async def user_info(
    pool: asyncpg.Pool[Any], folded_nick: str, online_window: float
) -> asyncpg.Record | None:
    return await pool.fetchrow(
        """SELECT s.id, s.nick, s.away_message, s.is_oper, s.created_at, s.last_spoke,
                  EXISTS (SELECT 1 FROM identity.clients c WHERE c.session_id = s.id
                          AND c.last_seen > now() - make_interval(secs => $2)) AS online,
                  extract(epoch FROM now() - s.last_spoke)::bigint AS idle_seconds
           FROM identity.sessions s WHERE s.nick_folded = $1""",
        folded_nick,
        online_window,
    )


async def user_channels(
    pool: asyncpg.Pool[Any], session_id: uuid.UUID, viewer: uuid.UUID
) -> list[asyncpg.Record]:
    """The channels of a user the viewer may see (secret ones only if the viewer is in them)."""
    return await pool.fetch(
        """SELECT ch.name, m.is_op, m.is_voiced
           FROM presence.members m JOIN presence.channels ch ON ch.name_folded = m.channel
           WHERE m.session_id = $1 AND (position('s' in ch.modes) = 0 OR EXISTS (
               SELECT 1 FROM presence.members me
               WHERE me.channel = m.channel AND me.session_id = $2))
           ORDER BY ch.name_folded""",
        session_id,
        viewer,
    )


async def who_mask(
    pool: asyncpg.Pool[Any], pattern: str, online_window: float
) -> list[asyncpg.Record]:
    """Sessions whose folded nick matches a LIKE pattern."""
    return await pool.fetch(
        """SELECT s.nick, s.away_message, s.is_oper, false AS is_op, false AS is_voiced,
                  EXISTS (SELECT 1 FROM identity.clients c WHERE c.session_id = s.id
                          AND c.last_seen > now() - make_interval(secs => $2)) AS online
           FROM identity.sessions s WHERE s.nick_folded LIKE $1 ORDER BY s.nick_folded LIMIT 500""",
        pattern,
        online_window,
    )


async def counts(pool: asyncpg.Pool[Any]) -> asyncpg.Record:
    row = await pool.fetchrow(
        """SELECT (SELECT count(*) FROM identity.sessions) AS users,
                  (SELECT count(*) FROM identity.sessions WHERE is_oper) AS opers,
                  (SELECT count(*) FROM identity.clients) AS clients,
                  (SELECT count(*) FROM presence.channels) AS channels"""
    )
    assert row is not None
    found: asyncpg.Record = row
    return found


# --- expiry -----------------------------------------------------------------------


async def has_clients(pool: asyncpg.Pool[Any], session_id: uuid.UUID) -> bool:
    found = await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM identity.clients WHERE session_id = $1)", session_id
    )
    return bool(found)


async def delete_idle_clients(pool: asyncpg.Pool[Any], idle_seconds: float) -> int:
    done = await pool.execute(
        "DELETE FROM identity.clients WHERE last_seen < now() - make_interval(secs => $1)",
        idle_seconds,
    )
    return int(done.split()[-1])


async def sessions_without_clients(pool: asyncpg.Pool[Any], limit: int) -> list[asyncpg.Record]:
    return await pool.fetch(
        """SELECT s.id, s.nick FROM identity.sessions s
           WHERE NOT EXISTS (SELECT 1 FROM identity.clients c WHERE c.session_id = s.id)
           LIMIT $1""",
        limit,
    )


# --- proof of work -------------------------------------------------------------------


async def server_key(pool: asyncpg.Pool[Any], name: str, fresh: bytes) -> bytes:
    """The shared key ``name``: ``fresh`` if this is the first call anywhere, else the
    one stored by whoever came first."""
    await pool.execute(
        "INSERT INTO identity.server_keys (name, key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        name,
        fresh,
    )
    key = await pool.fetchval("SELECT key FROM identity.server_keys WHERE name = $1", name)
    return bytes(key)


async def spend_challenge(conn: Conn, challenge: str, expires: float) -> bool:
    """Record a challenge as paid for; False when it already was. Expired ones go."""
    await conn.execute("DELETE FROM identity.spent_challenges WHERE expires_at < now()")
    spent = await conn.fetchval(
        """INSERT INTO identity.spent_challenges (challenge, expires_at)
           VALUES ($1, to_timestamp($2)) ON CONFLICT DO NOTHING RETURNING true""",
        challenge,
        expires,
    )
    return spent is True
