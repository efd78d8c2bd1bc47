"""Full-text search (PostgreSQL, 'simple' configuration) over what the caller may read:
the channels it is in now and its own DMs, never anyone else's; newest first,
paged by a cursor."""

from __future__ import annotations

from typing import Any

import asyncpg

from libs import errors
from libs.feature_contracts import SearchRequest, SearchResult
from libs.items import ITEM_COLUMNS, item_from_row
from services.history import summary
from services.history.access import conversation_key

MAX_LIMIT = 100
MAX_QUERY = 200

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
  AND ($4::bigint IS NULL OR m.id < $4)
  AND m.pos > t.last_pos - $6
ORDER BY m.id DESC
LIMIT $5
"""


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
        rows = await self.pool.fetch(
            _SEARCH,
            request.session_id,
            query,
            key,
            request.before,
            request.limit + 1,
            self.keep,
        )
        page = rows[: request.limit]
        items = await summary.attach(self.pool, [item_from_row(r) for r in page])
        more = len(rows) > request.limit
        return SearchResult(messages=items, next=str(page[-1]["id"]) if more else None)
