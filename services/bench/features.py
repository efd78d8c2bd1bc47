"""What the features beyond IRC cost: the search index on the write path, search and
unread-count latency. On a fresh embedded PostgreSQL; prints a table, writes JSON.

    python -m services.bench.features [--rows 200000] [--out bench-features.json]

1. Chat rows written as fanout writes them (batches of 256 through ``unnest``),
   with the full-text index and without it: the index's price per message.
2. Search, as the history service runs it, by a member of 5 of the 100
   channels holding those rows: a word in nearly every line (the worst case:
   every match is read, then sorted), a word of medium frequency, a rare one.
3. ``/state``'s unread counts for a session in 20 channels with read markers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from libs import db
from libs.embedded import EmbeddedPostgres
from libs.feature_contracts import SearchRequest
from services.bench.stats import percentiles
from services.gateway import feature_store
from services.history.search import Search

BATCH = 256
CHANNELS = 100
WORDS = [f"w{n}" for n in range(2000)]  # a vocabulary: w0 common, w1999 rare (Zipf-like)

_INSERT = """
INSERT INTO delivery.messages
    (event_id, target, pos, command, sender, sender_id, to_name, params, body, meta, created_at)
SELECT e, t, p, 'PRIVMSG', 'bench', s, t, '[]', b::jsonb, '{}', c
FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::uuid[], $5::text[], $6::timestamptz[])
    AS u(e, t, p, s, b, c)
"""


def _line(rng: random.Random) -> str:
    words = [WORDS[min(int(rng.paretovariate(1.1)) - 1, len(WORDS) - 1)] for _ in range(8)]
    return json.dumps([" ".join(words)])


async def _write(pool: asyncpg.Pool[Any], rows: int, seed: int) -> float:
    """Write ``rows`` chat rows in fanout-sized batches; returns rows per second."""
    rng = random.Random(seed)
    senders = [uuid.uuid4() for _ in range(50)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    positions = dict.fromkeys(range(CHANNELS), 0)
    began = time.perf_counter()
    for first in range(0, rows, BATCH):
        count = min(BATCH, rows - first)
        channels = [rng.randrange(CHANNELS) for _ in range(count)]
        pos = []
        for c in channels:
            positions[c] += 1
            pos.append(positions[c])
        await pool.execute(
            _INSERT,
            [uuid.uuid4() for _ in range(count)],
            [f"#c{c}" for c in channels],
            pos,
            [rng.choice(senders) for _ in range(count)],
            [_line(rng) for _ in range(count)],
            [start + timedelta(milliseconds=first + n) for n in range(count)],
        )
    seconds = time.perf_counter() - began
    await pool.execute(
        """INSERT INTO delivery.targets (target, last_pos)
           SELECT unnest($1::text[]), unnest($2::bigint[])
           ON CONFLICT (target) DO UPDATE SET last_pos = excluded.last_pos""",
        [f"#c{c}" for c in positions],
        list(positions.values()),
    )
    return rows / seconds


async def _timed(work: Any, repeat: int) -> dict[str, float | None]:
    """p50, p95 and max of ``repeat`` runs, in milliseconds."""
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        await work()
        samples.append(time.perf_counter() - began)
    return percentiles(samples, (50, 95))


async def measure(url: str, rows: int) -> dict[str, Any]:
    await db.migrate(url)
    pool = await db.create_pool(url, 4)
    try:
        result: dict[str, Any] = {"rows": rows, "batch": BATCH}
        # The index as the migrations made it, to be made again after the run without it.
        index = await pool.fetchval(
            "SELECT pg_get_indexdef('delivery.messages_search_idx'::regclass)"
        )
        await pool.execute("DROP INDEX delivery.messages_search_idx")
        result["write_rows_per_s_without_index"] = round(await _write(pool, rows, 1))
        await pool.execute("TRUNCATE delivery.messages, delivery.targets CASCADE")
        await pool.execute(index)
        result["write_rows_per_s_with_index"] = round(await _write(pool, rows, 1))
        await pool.execute("VACUUM ANALYZE delivery.messages")

        me = uuid.uuid4()
        await pool.execute(
            """INSERT INTO presence.channels (name_folded, name)
               SELECT '#c' || n, '#c' || n FROM generate_series(0, 19) n"""
        )
        await pool.execute(
            """INSERT INTO presence.members (channel, session_id)
               SELECT '#c' || n, $1 FROM generate_series(0, 19) n""",
            me,
        )
        await pool.execute(
            """INSERT INTO identity.sessions (id, nick, nick_folded) VALUES ($1, 'me', 'me')""",
            me,
        )
        search = Search(pool, keep=10_000)
        member_of_five = uuid.uuid4()
        await pool.execute(
            """INSERT INTO presence.members (channel, session_id)
               SELECT '#c' || n, $1 FROM generate_series(0, 4) n""",
            member_of_five,
        )
        for word, label in (
            (WORDS[0], "in_every_line"),
            (WORDS[50], "medium"),
            (WORDS[300], "rare"),
        ):
            request = SearchRequest(member_of_five, word, limit=20)
            found = await search.search(request)
            result[f"search_{label}_ms"] = await _timed(lambda r=request: search.search(r), 30)
            result[f"search_{label}_hits_on_page"] = len(found.messages)
        await pool.execute(
            """INSERT INTO delivery.read_markers (session_id, target, pos, updated_at)
               SELECT $1, '#c' || n, t.last_pos - 50, now() FROM generate_series(0, 19) n
               JOIN delivery.targets t ON t.target = '#c' || n""",
            me,
        )
        result["unread_20_channels_ms"] = await _timed(
            lambda: feature_store.unread(pool, me, 10_000), 30
        )
        return result
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=Path("bench-features.json"))
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedPostgres(Path(tmp) / "pg", fsync="off", synchronous_commit="off") as pg,
    ):
        result = asyncio.run(measure(pg.url, args.rows))
    width = max(map(len, result))
    for name, value in result.items():
        print(f"{name:<{width}}  {value}")
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
