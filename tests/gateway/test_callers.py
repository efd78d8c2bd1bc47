"""The token memo on its own: it remembers which client a token names, never that it is valid."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.gateway import store
from services.gateway.callers import Callers, Client
from services.gateway.store import Caller

ALICE = Caller(uuid.uuid4(), uuid.uuid4(), "alice")


class FakeStore:
    def __init__(self) -> None:
        self.tokens = {b"alice": ALICE}
        self.reads = 0

    async def caller_by_token(self, pool: Any, token_hash: bytes) -> Caller | None:
        self.reads += 1
        return self.tokens.get(token_hash)


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> FakeStore:
    fake = FakeStore()
    monkeypatch.setattr(store, "caller_by_token", fake.caller_by_token)
    return fake


async def test_a_caller_is_read_every_time_and_its_client_remembered(db: FakeStore) -> None:
    callers = Callers(pool=None)  # type: ignore[arg-type]
    assert callers.client(b"alice") is None
    assert await callers.caller(b"alice") == ALICE
    assert callers.client(b"alice") == Client(ALICE.client_id, ALICE.session_id)
    del db.tokens[b"alice"]  # logged out elsewhere
    assert await callers.caller(b"alice") is None  # validity is never taken from memory
    assert db.reads == 2
    assert await callers.caller(b"nobody") is None
    assert callers.client(b"nobody") is None


def test_the_memo_is_bounded() -> None:
    callers = Callers(pool=None, max_entries=3)  # type: ignore[arg-type]
    for n in range(10):
        callers.remember(b"t%d" % n, uuid.uuid4(), uuid.uuid4())
        assert len(callers) <= 3
