"""Who a bearer token belongs to.

A token belongs to one client of one session for as long as it is valid, so
that pair is remembered once read. Whether the token is *still* valid is never
remembered: every request checks it in PostgreSQL — the long-poll in the very
statement that reads its queue, so it costs no query of its own. A token that
any replica logged out, expired or ended (QUIT) is refused by every replica at
once, with nothing to invalidate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.gateway import store
from services.gateway.store import Caller


@dataclass(frozen=True)
class Client:
    """What a token names and never stops naming: its client and that client's session."""

    client_id: uuid.UUID
    session_id: uuid.UUID


class Callers:
    """Token → client of one gateway process."""

    def __init__(self, pool: asyncpg.Pool[Any], max_entries: int = 200_000) -> None:
        self.pool = pool
        self.max_entries = max_entries
        self._clients: dict[bytes, Client] = {}

    def client(self, token_hash: bytes) -> Client | None:
        """The client a token named when it was last seen valid here; it may be revoked since."""
        return self._clients.get(token_hash)

    async def caller(self, token_hash: bytes) -> Caller | None:
        """The caller of a valid token (read now), or None."""
        caller = await store.caller_by_token(self.pool, token_hash)
        if caller is not None:
            self.remember(token_hash, caller.client_id, caller.session_id)
        return caller

    def remember(self, token_hash: bytes, client_id: uuid.UUID, session_id: uuid.UUID) -> None:
        if len(self._clients) >= self.max_entries:
            self._clients.clear()
        self._clients[token_hash] = Client(client_id, session_id)

    def __len__(self) -> int:
        return len(self._clients)
