"""Full-text search (PostgreSQL, 'simple' configuration) over what the caller may read:
the channels it is in now and its own DMs, never anyone else's; newest first,
paged by a cursor."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from libs import errors
from libs.feature_contracts import SearchRequest, SearchResult
from libs.items import ITEM_COLUMNS, item_from_row
from services.history import summary
from services.history.access import conversation_key

MAX_LIMIT = 100
MAX_QUERY = 200
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The expression matches the index messages_search_idx (migration 0005) exactly.
_SEARCH = f"""
SELECT m.id, {ITEM_COLUMNS}
FROM delivery.messages m
JOIN delivery.targets t ON t.target = m.target
WHERE m.command IN ('PRIVMSG', 'NOTICE')
  AND jsonb_to_tsvector('simple', m.body, '["string"]') @@ websearch_to_tsquery('simple', $2)
  AND (m.target IN (SELECT mb.channel FROM presence.members mb WHERE mb.session_id = $1)
       OR (m.target LIKE 'dm:%'
           AND $1::text IN (split_part(m.target, ':', 2), split_part(m.target, ':', 3))))
  AND ($3::text IS NULL OR m.target = $3)
  AND ($4::timestamptz IS NULL OR (m.created_at, m.id) < ($4, $7))
  AND m.pos > t.last_pos - $6
ORDER BY m.created_at DESC, m.id DESC
LIMIT $5
"""


def cursor(row: Any) -> str:
    """Where the next page starts: the time (microseconds) and row id of the last result."""
    ts = row["created_at"]
    micros = (ts - EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{row['id']}"


def parse_cursor(text: str) -> tuple[datetime, int]:
    micros, _, row_id = text.partition(".")
    if not (re.fullmatch(r"[0-9]{1,20}", micros) and re.fullmatch(r"[0-9]{1,19}", row_id)):
        raise errors.validation("before must be the next cursor of a previous page")
    try:
        return EPOCH + timedelta(microseconds=int(micros)), int(row_id)
    except OverflowError:
        raise errors.validation("before must be the next cursor of a previous page") from None


class Search:
    def __init__(self, pool: asyncpg.Pool[Any], keep: int) -> None:
        self.pool = pool
        self.keep = keep

    async def search(self, request: SearchRequest) -> SearchResult:
        query = request.q.strip()
        if not query or len(query) > MAX_QUERY:
            raise errors.validation(f"q must be 1 to {MAX_QUERY} characters")
        if "\x00" in query:
            raise errors.validation("q must not contain NUL characters")
        if not 1 <= request.limit <= MAX_LIMIT:
            raise errors.validation(f"limit must be between 1 and {MAX_LIMIT}")
        key = None
        if request.target is not None:
            key = await conversation_key(self.pool, request.session_id, request.target)
        before, before_id = parse_cursor(request.before) if request.before else (None, 0)
        rows = await self.pool.fetch(
            _SEARCH,
            request.session_id,
            query,
            key,
            before,
            request.limit + 1,
            self.keep,
            before_id,
        )
        page = rows[: request.limit]
        items = await summary.attach(self.pool, [item_from_row(r) for r in page])
        more = len(rows) > request.limit
        return SearchResult(messages=items, next=cursor(page[-1]) if more else None)
