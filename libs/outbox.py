"""The transactional outbox: events decided in a PostgreSQL transaction leave through it.

A command writes its state and its event rows in one transaction; after the
commit the rows of that target are published in id order (awaiting each
PubAck) and marked published. Should the process die in between, the relay
publishes them later with the same ``Nats-Msg-Id``, so no event is lost and
JetStream (then the projection's unique key) discards any second copy.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import structlog
from nats.js import JetStreamContext

from libs.bus import publish_raw
from libs.db import Conn
from libs.events import AnyEvent, encode_event
from libs.lifecycle import sleep_unless
from libs.subjects import Subjects

log = structlog.get_logger(__name__)


class Outbox:
    """The outbox table ``<schema>.outbox`` of one owner."""

    def __init__(self, schema: str, subjects: Subjects) -> None:
        self.table = f"{schema}.outbox"
        self.subjects = subjects

    async def add(self, conn: Conn, events: list[AnyEvent]) -> None:
        """Record events inside the caller's transaction."""
        await conn.executemany(
            f"""INSERT INTO {self.table} (target, subject, event_id, payload)
                VALUES ($1, $2, $3, $4)""",
            [(e.target, self.subjects.event(e), e.event_id, encode_event(e)) for e in events],
        )

    async def flush(self, pool: asyncpg.Pool[Any], js: JetStreamContext, target: str) -> int:
        """Publish every unpublished event of one target, in the order they were committed.

        Rows are locked in id order, so two flushers of one target publish in
        turn rather than interleaved.
        """
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"""SELECT id, subject, event_id, payload FROM {self.table}
                    WHERE target = $1 AND published_at IS NULL
                    ORDER BY id FOR UPDATE""",
                target,
            )
            for row in rows:
                await publish_raw(js, row["subject"], row["payload"], str(row["event_id"]))
            if rows:
                await conn.execute(
                    f"UPDATE {self.table} SET published_at = now() WHERE id = ANY($1::bigint[])",
                    [r["id"] for r in rows],
                )
        return len(rows)

    async def relay(
        self,
        pool: asyncpg.Pool[Any],
        js: JetStreamContext,
        stop: asyncio.Event,
        interval: float = 1.0,
        retention: float = 86_400.0,
    ) -> None:
        """Publish what a crashed or failed flush left behind; prune old published rows."""
        while not stop.is_set():
            try:
                targets = await pool.fetch(
                    f"""SELECT DISTINCT target FROM {self.table}
                        WHERE published_at IS NULL AND created_at < now() - interval '1 second'"""
                )
                for row in targets:
                    sent = await self.flush(pool, js, row["target"])
                    if sent:
                        log.info("outbox relayed", table=self.table, count=sent)
                await pool.execute(
                    f"""DELETE FROM {self.table} WHERE published_at IS NOT NULL
                        AND published_at < now() - make_interval(secs => $1)""",
                    retention,
                )
            except Exception as error:  # noqa: BLE001 - the relay keeps trying
                log.warning("outbox relay failed", table=self.table, error=repr(error))
            await sleep_unless(stop, interval)
