"""Fanout's SQL: set-based writes of items, queue rows, membership and tracking."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from libs.db import Conn
from services.fanout.handlers import Change, Join, StoredItem


def _take_numbers(table: str, key: str, last: str, source: str, each: str | None = None) -> str:
    """The upsert taking, for each ``key`` of ``source``, as many numbers after its
    counter's ``last`` as ``source`` has rows of it (or, where ``source`` has one row
    per key, ``each``); it returns each new ``last`` (the rows take ``last - count +
    1`` … ``last``). Counter rows are locked in key order, so that concurrent
    writers wait for each other instead of deadlocking."""
    taken = (
        f"SELECT {key}, count(*) FROM {source} GROUP BY {key}"
        if each is None
        else f"SELECT {key}, {each} FROM {source}"
    )
    return f"""
    INSERT INTO {table} AS c ({key}, {last})
    {taken} ORDER BY {key}
    ON CONFLICT ({key}) DO UPDATE SET {last} = c.{last} + excluded.{last}
    RETURNING {key}, {last}"""


# One statement numbers the items in their targets' histories (each target's
# row locked in target order) and writes them, finds their recipients from
# membership joined with clients, takes each client's next seqs under the row
# lock of its counter (rows locked in client id order, so concurrent writers
# never deadlock and never commit a later seq before an earlier one), and writes
# one queue row per recipient client. Items whose event already has one (a
# redelivery, a republished event) are left out. Given a claim ($17-$20), it
# also moves the partition's position from $20 to $19, and writes only when it
# did: run on its own, outside a transaction, the statement is the whole of a
# batch, atomic, and a position moved meanwhile by another owner (or no
# position yet) leaves everything as it was. Each item is stored with its JSON
# as well ($21, ``StoredItem.wire``), which queue reads send as it is.
#
# ``_WRITE`` writes the items; what follows it queues them. ``_QUEUE`` finds
# each item's recipients, ``{recipients}``: those of any item
# (``_ANY_RECIPIENTS``), or, for a batch of channel items alone, the channel's
# member clients (``_CHANNEL_RECIPIENTS``), a statement PostgreSQL plans in half
# the time; it numbers each client's rows by a window over them all.
# ``_QUEUE_ONE_CHANNEL``, for the items of one channel alone (the common
# case: a channel's backlog, a single message), finds the member clients once:
# each gets every item, so its n-th item of the batch takes its counter's old
# value + n, with no window and no sort over the queue rows. The statement's
# first row is the batch's (client_id NULL): whether it claimed, which items
# (ords) it wrote, their positions and the queue rows written; then a row per
# recipient client. Positions and seqs are both taken by ``_take_numbers``.
_WRITE = """
WITH claimed AS (
    UPDATE delivery.partition_offsets SET stream_seq = $19
    WHERE $19::bigint IS NOT NULL AND stream = $17 AND partition = $18 AND stream_seq = $20
    RETURNING stream_seq
),
given AS (
    SELECT * FROM unnest(
        $1::int[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[],
        $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::text[],
        $13::uuid[], $14::uuid[], $15::text[], $21::bytea[]
    ) AS e(ord, event_id, target, command, sender, sender_id,
           to_name, params, body, meta, created_at, channel, session_a, session_b, channels, wire)
    WHERE ($19::bigint IS NULL OR EXISTS (SELECT FROM claimed))
      AND NOT EXISTS (SELECT FROM delivery.messages m WHERE m.event_id = e.event_id)
),
targets AS ({targets}),
ev AS (
    SELECT given.*,
           t.last_pos - count(*) OVER w + row_number() OVER (w ORDER BY given.ord) AS pos,
           row_number() OVER (ORDER BY given.ord) AS nth
    FROM given JOIN targets t USING (target)
    WINDOW w AS (PARTITION BY given.target)
),
msg AS (
    INSERT INTO delivery.messages
        (event_id, target, pos, command, sender, sender_id, to_name, params, body, meta, created_at,
         wire)
    SELECT event_id, target, pos, command, sender, sender_id, to_name,
           params::jsonb, body::jsonb, meta::jsonb, created_at, wire
    FROM ev ORDER BY ord
    RETURNING id, event_id
),
"""

_BATCH_ROW = """
SELECT NULL AS client_id, NULL::bigint AS last_seq, NULL::int[] AS ords,
       EXISTS (SELECT FROM claimed) AS claimed,
       ARRAY(SELECT ord FROM ev ORDER BY ord) AS written,
       ARRAY(SELECT pos FROM ev ORDER BY ord) AS positions,
       (SELECT count(*) FROM {queued}) AS queued
"""

_QUEUE = (
    """
rcpt AS ({recipients}),
counters AS ({counters}),
numbered AS (
    SELECT r.client_id, r.message_id,
           c.last_seq - count(*) OVER w + row_number() OVER (w ORDER BY r.ord) AS seq
    FROM rcpt r JOIN counters c USING (client_id)
    WINDOW w AS (PARTITION BY r.client_id)
),
queued AS (
    INSERT INTO delivery.client_queues (client_id, seq, message_id)
    SELECT client_id, seq, message_id FROM numbered
),
picks AS (
    SELECT client_id, array_agg(ord ORDER BY ord) AS ords FROM rcpt WHERE $16 GROUP BY client_id
)"""
    + _BATCH_ROW
    + """UNION ALL
SELECT c.client_id::text, c.last_seq, p.ords, NULL, NULL, NULL, NULL
FROM counters c LEFT JOIN picks p USING (client_id)
"""
)

# The items written are all of one channel: every member client gets them all.
_QUEUE_ONE_CHANNEL = (
    """
rcpt AS (
    SELECT c.id AS client_id
    FROM delivery.members m JOIN identity.clients c ON c.session_id = m.session_id
    WHERE m.channel = (SELECT channel FROM ev LIMIT 1)
),
counters AS ({counters}),
numbered AS (
    SELECT c.client_id, msg.id AS message_id,
           c.last_seq - (SELECT count(*) FROM ev) + ev.nth AS seq
    FROM counters c CROSS JOIN ev JOIN msg USING (event_id)
),
queued AS (
    INSERT INTO delivery.client_queues (client_id, seq, message_id)
    SELECT client_id, seq, message_id FROM numbered
)"""
    + _BATCH_ROW
    + """UNION ALL
SELECT c.client_id::text, c.last_seq, CASE WHEN $16 THEN ARRAY(SELECT ord FROM ev ORDER BY ord) END,
       NULL, NULL, NULL, NULL
FROM counters c
"""
)

# A channel's member sessions are distinct, and so are their clients: no dedup.
_CHANNEL_RECIPIENTS = """
    SELECT ev.ord, msg.id AS message_id, c.id AS client_id
    FROM ev
    JOIN msg USING (event_id)
    JOIN delivery.members m ON m.channel = ev.channel
    JOIN identity.clients c ON c.session_id = m.session_id
"""

_ANY_RECIPIENTS = (
    _CHANNEL_RECIPIENTS
    + """
    UNION ALL
    SELECT ord, message_id, client_id FROM (
        SELECT ev.ord, msg.id AS message_id, c.id AS client_id, c.session_id, ev.channel
        FROM ev
        JOIN msg USING (event_id)
        JOIN identity.clients c ON c.session_id = ev.session_a OR c.session_id = ev.session_b
        UNION
        SELECT ev.ord, msg.id, c.id, c.session_id, ev.channel
        FROM ev
        JOIN msg USING (event_id)
        JOIN delivery.members m
            ON ev.channels IS NOT NULL
            AND m.channel IN (SELECT jsonb_array_elements_text(ev.channels::jsonb))
        JOIN identity.clients c ON c.session_id = m.session_id
    ) more
    WHERE NOT EXISTS (  -- reached through ev.channel already
        SELECT 1 FROM delivery.members m2
        WHERE m2.channel = more.channel AND m2.session_id = more.session_id)
"""
)

_TARGETS = _take_numbers("delivery.targets", "target", "last_pos", "given")
_WRITE_ITEMS, _WRITE_CHANNEL_ITEMS = (
    (_WRITE + _QUEUE).format(
        targets=_TARGETS,
        recipients=recipients,
        counters=_take_numbers("delivery.client_seq", "client_id", "last_seq", "rcpt"),
        queued="rcpt",
    )
    for recipients in (_ANY_RECIPIENTS, _CHANNEL_RECIPIENTS)
)
_WRITE_ONE_CHANNEL = (_WRITE + _QUEUE_ONE_CHANNEL).format(
    targets=_TARGETS,
    counters=_take_numbers(
        "delivery.client_seq", "client_id", "last_seq", "rcpt", each="(SELECT count(*) FROM ev)"
    ),
    queued="numbered",
)

_encode = msgspec.json.Encoder().encode


def _json(value: Any) -> str:
    # Nested lists would be taken for a multi-dimensional array: send JSON text.
    return _encode(value).decode()


# Lock this partition's tracking row: made if missing, else locked by an update to itself.
_LOCK_POSITION = """
INSERT INTO delivery.partition_offsets AS o (stream, partition, stream_seq) VALUES ($1, $2, 0)
ON CONFLICT (stream, partition) DO UPDATE SET stream_seq = o.stream_seq
RETURNING stream_seq"""


async def lock_position(conn: Conn, stream: str, partition: int) -> int:
    """Lock this partition's tracking row for the transaction and return its position."""
    return int(await conn.fetchval(_LOCK_POSITION, stream, partition))


async def lock_position_and_find(
    conn: Conn, stream: str, partition: int, event_ids: list[uuid.UUID]
) -> tuple[int, set[uuid.UUID]]:
    """``lock_position``, and which of ``event_ids`` already have their item (a
    redelivery, or a republished event), in one round trip.

    The search sees the statement's snapshot, taken before the lock may have
    waited for another owner; but an owner committing meanwhile moved the
    position, so the caller, finding it moved, does not use the search.
    """
    row = await conn.fetchrow(
        f"""WITH locked AS ({_LOCK_POSITION})
            SELECT (SELECT stream_seq FROM locked) AS position,
                   ARRAY(SELECT event_id FROM delivery.messages
                         WHERE event_id = ANY($3::uuid[])) AS done""",
        stream,
        partition,
        event_ids,
    )
    assert row is not None
    return int(row["position"]), set(row["done"])


async def read_position(pool: asyncpg.Pool[Any], stream: str, partition: int) -> int:
    position = await pool.fetchval(
        "SELECT stream_seq FROM delivery.partition_offsets WHERE stream = $1 AND partition = $2",
        stream,
        partition,
    )
    return int(position or 0)


async def save_position(conn: Conn, stream: str, partition: int, stream_seq: int) -> None:
    await conn.execute(
        """UPDATE delivery.partition_offsets SET stream_seq = $3
           WHERE stream = $1 AND partition = $2""",
        stream,
        partition,
        stream_seq,
    )


async def apply_changes(conn: Conn, changes: list[Change]) -> None:
    """Apply membership changes to fanout's projection, in order."""
    for change in changes:
        if isinstance(change, Join):
            await conn.execute(
                """INSERT INTO delivery.members (channel, session_id) VALUES ($1, $2)
                   ON CONFLICT DO NOTHING""",
                change.channel,
                change.session_id,
            )
        else:
            await conn.execute(
                "DELETE FROM delivery.members WHERE channel = $1 AND session_id = $2",
                change.channel,
                change.session_id,
            )


@dataclass(frozen=True)
class Claim:
    """A partition's position, to move from ``after`` to ``to`` where items are written."""

    stream: str
    partition: int
    after: int
    to: int


@dataclass
class Written:
    """What one ``write_items`` did."""

    last_seqs: dict[str, int]  # each recipient client's last seq
    rows: int  # queue rows written
    written: list[int]  # the indexes of the items written (not there already), in order
    positions: list[int]  # each written item's position in its target's history
    picks: dict[str, list[int]] | None  # per client, the indexes of the items it got
    claimed: bool = False  # the claim, when given, moved the position


async def write_items(
    conn: Conn, items: list[StoredItem], with_picks: bool = False, claim: Claim | None = None
) -> Written:
    """Write items once (those whose event has none yet) and queue them to every
    recipient client.

    ``with_picks`` also returns, per recipient client, which items it got, in
    order. With a ``claim``, the statement moves the partition's position and
    writes nothing unless it did (see ``_WRITE``).
    """
    if not items:
        return Written({}, 0, [], [], {} if with_picks else None)
    rows = await conn.fetch(_statement(items), *_write_args(items, with_picks, claim))
    [batch] = [r for r in rows if r["client_id"] is None]
    clients = [r for r in rows if r["client_id"] is not None]
    last_seqs = {r["client_id"]: r["last_seq"] for r in clients}
    picks: dict[str, list[int]] | None = None
    if with_picks and len(items) == 1:  # each recipient got the one item: nothing to ask
        picks = {client: [0] for client in last_seqs}
    elif with_picks:
        picks = {r["client_id"]: r["ords"] for r in clients}
    return Written(
        last_seqs,
        int(batch["queued"]),
        list(batch["written"]),
        list(batch["positions"]),
        picks,
        bool(batch["claimed"]),
    )


def _one_channel(items: list[StoredItem]) -> bool:
    """Whether every item goes to the members of one channel, and to no one else."""
    channel = items[0].channel
    return channel is not None and all(
        i.channel == channel and not i.sessions and not i.channels for i in items
    )


def _statement(items: list[StoredItem]) -> str:
    """The statement writing ``items``: the narrowest that finds their recipients."""
    if _one_channel(items):
        return _WRITE_ONE_CHANNEL
    if not any(i.sessions or i.channels for i in items):
        return _WRITE_CHANNEL_ITEMS
    return _WRITE_ITEMS


def _write_args(items: list[StoredItem], with_picks: bool, claim: Claim | None) -> list[Any]:
    """The parameters of ``_WRITE`` for ``items``."""
    return [
        list(range(len(items))),
        [i.event_id for i in items],
        [i.target for i in items],
        [i.command for i in items],
        [i.sender for i in items],
        [i.sender_id for i in items],
        [i.to_name for i in items],
        [_json(i.params) for i in items],
        [_json(i.body) for i in items],
        [_json(i.meta) for i in items],
        [i.created_at for i in items],
        [i.channel for i in items],
        [i.sessions[0] if i.sessions else None for i in items],
        [i.sessions[-1] if i.sessions else None for i in items],
        [_json(list(i.channels)) if i.channels else None for i in items],
        with_picks and len(items) > 1,
        claim.stream if claim else "",
        claim.partition if claim else 0,
        claim.to if claim else None,
        claim.after if claim else None,
        [i.wire for i in items],
    ]


async def park(
    pool: asyncpg.Pool[Any],
    stream: str,
    partition: int,
    stream_seq: int,
    subject: str,
    payload: bytes,
    error: str,
) -> None:
    """Record a poison event and move the partition's position past it."""
    async with pool.acquire() as conn, conn.transaction():
        await lock_position(conn, stream, partition)
        await conn.execute(
            """INSERT INTO delivery.poison (stream, stream_seq, subject, payload, error)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
            stream,
            stream_seq,
            subject,
            payload,
            error,
        )
        await conn.execute(
            """UPDATE delivery.partition_offsets SET stream_seq = greatest(stream_seq, $3)
               WHERE stream = $1 AND partition = $2""",
            stream,
            partition,
            stream_seq,
        )


async def trim_acknowledged(pool: asyncpg.Pool[Any], limit: int = 10_000) -> int:
    """Delete queue rows at or below their client's acknowledged seq, or of clients gone.

    Bounded per call; rows above a live client's cursor are never touched.
    Returns how many rows it deleted.
    """
    result = await pool.execute(
        """DELETE FROM delivery.client_queues q
           WHERE (q.client_id, q.seq) IN (
               SELECT q2.client_id, q2.seq
               FROM delivery.client_queues q2
               LEFT JOIN identity.clients c ON c.id = q2.client_id
               WHERE c.id IS NULL OR q2.seq <= c.acked_seq
               LIMIT $1)""",
        limit,
    )
    trimmed = int(result.split()[-1])
    if trimmed < limit:  # the queues of clients gone are empty now: drop their counters
        await pool.execute(
            """DELETE FROM delivery.client_seq s WHERE NOT EXISTS (
                   SELECT 1 FROM identity.clients c WHERE c.id = s.client_id)"""
        )
    return trimmed


async def trim_history(pool: asyncpg.Pool[Any], keep: int, limit: int = 10_000) -> int:
    """Delete items older than the newest ``keep`` of their target, bounded per call.

    An item still waiting in some client's queue (above its cursor) stays until
    that client has acknowledged it; history hides it already.
    """
    result = await pool.execute(
        """WITH doomed AS (
               SELECT m.id FROM delivery.targets t
               JOIN delivery.messages m ON m.target = t.target AND m.pos <= t.last_pos - $1
               WHERE NOT EXISTS (
                   SELECT 1 FROM delivery.client_queues q WHERE q.message_id = m.id)
               LIMIT $2)
           DELETE FROM delivery.messages WHERE id IN (SELECT id FROM doomed)""",
        keep,
        limit,
    )
    return int(result.split()[-1])
