"""Sessions, clients and channels as Prometheus gauges, read from PostgreSQL periodically.

Every gateway reports the same system-wide numbers (aggregate with ``max``);
reading them on a timer keeps a scrape from ever touching the database.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import structlog
from prometheus_client import Gauge

from libs import db
from libs.lifecycle import sleep_unless
from services.gateway import store

log = structlog.get_logger(__name__)

INTERVAL = 15.0  # seconds between refreshes

SESSIONS = Gauge("chinwag_sessions", "Sessions (users), system-wide")
CLIENTS = Gauge("chinwag_clients", "Clients (devices with a queue), system-wide")
CHANNELS = Gauge("chinwag_channels", "Channels, system-wide")


async def watch_counts(
    pool: asyncpg.Pool[Any], stop: asyncio.Event, interval: float | None = None
) -> None:
    """Refresh the gauges now and every ``interval`` seconds until ``stop``."""
    while not stop.is_set():
        try:
            counts = await store.counts(pool)
            SESSIONS.set(counts["users"])
            CLIENTS.set(counts["clients"])
            CHANNELS.set(counts["channels"])
        except db.ERRORS as error:
            log.warning("counting sessions failed", error=repr(error))
        await sleep_unless(stop, INTERVAL if interval is None else interval)
