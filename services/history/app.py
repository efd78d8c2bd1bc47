"""The history service: scrollback by keyset pagination, readable only by whom it concerns."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import structlog

from libs import bus, db, errors, lifecycle, ops, rpc
from libs.contracts import HISTORY, HistoryRequest, HistoryResult
from libs.feature_contracts import EditsRequest, PinsRequest, SearchRequest, ThreadRequest
from libs.settings import Settings
from libs.subjects import Subjects
from services.history import access, store, summary
from services.history.search import Search
from services.history.threads import Threads

log = structlog.get_logger(__name__)

MAX_LIMIT = 500


class History:
    def __init__(self, pool: asyncpg.Pool[Any], keep: int) -> None:
        self.pool = pool
        self.keep = keep

    async def fetch(self, request: HistoryRequest) -> HistoryResult:
        if not 1 <= request.limit <= MAX_LIMIT:
            raise errors.validation(f"limit must be between 1 and {MAX_LIMIT}")
        key = await access.conversation_key(self.pool, request.session_id, request.target)
        items, more = await store.page(
            self.pool, key, request.before, request.after, request.limit, self.keep
        )
        return HistoryResult(messages=await summary.attach(self.pool, items), has_more=more)


def extra_endpoints(pool: asyncpg.Pool[Any], settings: Settings) -> dict[str, Any]:
    """Search, threads, edit histories and pins."""
    search, threads = Search(pool, settings.max_history), Threads(pool)
    return {
        "search": (SearchRequest, search.search),
        "thread": (ThreadRequest, threads.thread),
        "edits": (EditsRequest, threads.edits),
        "pins": (PinsRequest, threads.pins),
    }


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Serve history requests until ``stop`` is set."""
    async with AsyncExitStack() as stack:
        pool = await db.service_pool(settings, "history")
        stack.push_async_callback(pool.close)
        nc = await bus.connect(settings.nats(), "chinwag-history")
        stack.push_async_callback(nc.drain)
        await stack.enter_async_context(ops.probe_server(settings, pool, nc))
        subjects = Subjects(settings.subject_prefix, settings.partitions)
        history = History(pool, settings.max_history)
        service = await rpc.serve(
            nc,
            name="chinwag-history",
            version="0.1.0",
            subject_prefix=subjects.service(HISTORY, "").rstrip("."),
            endpoints={"fetch": (HistoryRequest, history.fetch), **extra_endpoints(pool, settings)},
        )
        stack.push_async_callback(service.stop)
        log.info("history started")
        lifecycle.started()
        await stop.wait()
        log.info("history stopped")
