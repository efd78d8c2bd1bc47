"""Reading what chat lines became: a thread of replies, a message's edit history,
a channel's pins. Readable by whom the conversation's history is."""

from __future__ import annotations

from typing import Any

import asyncpg

from libs import errors
from libs.feature_contracts import (
    EditsRequest,
    EditsResult,
    PinsRequest,
    PinsResult,
    ThreadRequest,
    ThreadResult,
    Version,
)
from libs.irc import is_channel
from libs.items import ITEM_COLUMNS, item_from_row, rfc3339
from services.history import summary
from services.history.access import conversation_key

MAX_LIMIT = 500
MAX_DEPTH = 100

_THREAD = f"""
WITH RECURSIVE thread AS (
    SELECT m.id, 0 AS depth FROM delivery.messages m
    WHERE m.event_id = $1 AND m.target = $2 AND m.command IN ('PRIVMSG', 'NOTICE')
    UNION ALL
    SELECT r.message_id, thread.depth + 1
    FROM delivery.replies r JOIN thread ON r.parent_id = thread.id
    WHERE thread.depth < {MAX_DEPTH}
)
SELECT {ITEM_COLUMNS} FROM thread JOIN delivery.messages m ON m.id = thread.id
WHERE m.pos > $3 ORDER BY m.pos LIMIT $4
"""

_MESSAGE = f"""
SELECT m.id, {ITEM_COLUMNS} FROM delivery.messages m
WHERE m.event_id = $1 AND m.target = $2 AND m.command IN ('PRIVMSG', 'NOTICE')
"""

_PINS = f"""
SELECT {ITEM_COLUMNS} FROM delivery.pins p JOIN delivery.messages m ON m.id = p.message_id
WHERE p.channel = $1 ORDER BY p.pinned_at, m.pos
"""


class Threads:
    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self.pool = pool

    async def thread(self, request: ThreadRequest) -> ThreadResult:
        if not 1 <= request.limit <= MAX_LIMIT:
            raise errors.validation(f"limit must be between 1 and {MAX_LIMIT}")
        key = await conversation_key(self.pool, request.session_id, request.target)
        rows = await self.pool.fetch(
            _THREAD, request.id, key, request.after or 0, request.limit + 1
        )
        if not rows and request.after is None:
            raise errors.no_such_message(str(request.id))
        items = [item_from_row(r) for r in rows[: request.limit]]
        return ThreadResult(
            messages=await summary.attach(self.pool, items), has_more=len(rows) > request.limit
        )

    async def edits(self, request: EditsRequest) -> EditsResult:
        key = await conversation_key(self.pool, request.session_id, request.target)
        row = await self.pool.fetchrow(_MESSAGE, request.id, key)
        if row is None:
            raise errors.no_such_message(str(request.id))
        versions = await self.pool.fetch(
            """SELECT previous, edited_at FROM delivery.edits
               WHERE message_id = $1 ORDER BY edited_at, edit_event""",
            row["id"],
        )
        (item,) = await summary.attach(self.pool, [item_from_row(row)])
        return EditsResult(
            message=item,
            versions=[
                Version(body=v["previous"], replaced_at=rfc3339(v["edited_at"])) for v in versions
            ],
        )

    async def pins(self, request: PinsRequest) -> PinsResult:
        if not is_channel(request.channel):
            raise errors.validation("pins belong to channels")
        key = await conversation_key(self.pool, request.session_id, request.channel)
        rows = await self.pool.fetch(_PINS, key)
        return PinsResult(
            messages=await summary.attach(self.pool, [item_from_row(r) for r in rows])
        )
