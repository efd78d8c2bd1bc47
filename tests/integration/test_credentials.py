"""Credentials: a test per rule (login rate limiting: test_chat.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import asyncpg
import httpx
import pytest
from argon2 import extract_parameters

from libs import credentials
from libs.hashcash import solve, stamp_bits
from services.chat.client import ChatClient
from tests.harness import ApiClient, System

POW_BITS = 12


async def _fetch(system: System, sql: str, *args: Any) -> list[asyncpg.Record]:
    async with system.db() as conn:
        return await conn.fetch(sql, *args)


async def _stored_anywhere(system: System, secret: str) -> list[str]:
    """Every column of every chinwag table whose text holds ``secret``."""
    columns = await _fetch(
        system,
        """SELECT table_schema, table_name, column_name FROM information_schema.columns
           WHERE table_schema IN ('identity', 'presence', 'delivery')""",
    )
    found = []
    for c in columns:
        name = f'{c["table_schema"]}.{c["table_name"]}."{c["column_name"]}"'
        table = f"{c['table_schema']}.{c['table_name']}"
        column = f'"{c["column_name"]}"'
        hits = await _fetch(
            system,
            f"SELECT 1 FROM {table} WHERE {column}::text LIKE '%' || $1 || '%' "
            f"OR encode(convert_to({column}::text, 'UTF8'), 'hex') LIKE '%' || $2 || '%'",
            secret,
            secret.encode().hex(),
        )
        if hits:
            found.append(name)
    return found


async def test_tokens_are_random_256_bits_and_stored_only_as_hashes(system: System) -> None:
    first = await ApiClient.create(system.base_url, "alice", password="pw-alice-1")
    second = await ApiClient.login(system.base_url, "alice", "pw-alice-1")
    third = await ApiClient.create(system.base_url, "bob")
    tokens = [first.token, second.token, third.token]
    assert len(set(tokens)) == 3
    assert all(len(base64.urlsafe_b64decode(t + "=")) == 32 for t in tokens)
    rows = await _fetch(system, "SELECT id, token_hash FROM identity.clients ORDER BY id")
    stored = {str(r["id"]): bytes(r["token_hash"]) for r in rows}
    for client in (first, second, third):
        assert stored[client.client_id] == hashlib.sha256(client.token.encode()).digest()
        assert await _stored_anywhere(system, client.token) == []
    for client in (first, second, third):
        await client.close()


async def test_passwords_are_stored_as_argon2id_hashes(system: System) -> None:
    registered = await ApiClient.create(system.base_url, "carol", password="correct horse")
    later = await ApiClient.create(system.base_url, "dave")
    await later.ok("PASS", params=["battery staple"])
    rows = await _fetch(system, "SELECT nick, password_hash FROM identity.sessions ORDER BY nick")
    hashes = {r["nick"]: r["password_hash"] for r in rows}
    for nick, password in (("carol", "correct horse"), ("dave", "battery staple")):
        parameters = extract_parameters(hashes[nick])
        assert hashes[nick].startswith("$argon2id$")
        # RFC 9106's second recommendation: 64 MiB, 3 passes.
        assert parameters.memory_cost >= 65536 and parameters.time_cost >= 3
        assert await _stored_anywhere(system, password) == []
    await registered.close()
    await later.close()


async def test_channel_keys_are_compared_in_constant_time(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(given: bytes, expected: bytes) -> bool:
        compared.append((given, expected))
        return original(given, expected)

    monkeypatch.setattr(credentials.hmac, "compare_digest", spy)
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    await alice.join("#vault")
    await alice.ok("MODE", to="#vault", params=["+k", "s3same"])
    wrong = await bob.command("JOIN", to="#vault", params=["s3samf"])
    assert wrong.status_code == 403
    await bob.ok("JOIN", to="#vault", params=["s3same"])
    assert compared == [(b"s3samf", b"s3same"), (b"s3same", b"s3same")]
    await alice.close()
    await bob.close()


# --- proof of work for new sessions --------------------------------------------------


async def _sessions(system: System) -> int:
    return len(await _fetch(system, "SELECT 1 FROM identity.sessions"))


async def test_new_sessions_pay_with_a_stamp_when_work_is_asked(system: System) -> None:
    first = await system.start_gateway("gateway-pow-1", session_pow_bits=POW_BITS)
    second = await system.start_gateway("gateway-pow-2", session_pow_bits=POW_BITS)
    async with httpx.AsyncClient(base_url=first) as one, httpx.AsyncClient(base_url=second) as two:
        unpaid = await one.post("/api/v1/session", json={"nick": "mallory"})
        assert unpaid.status_code == 403
        assert unpaid.json()["error"]["code"] == "ERR_PROOF_OF_WORK"
        assert await _sessions(system) == 0
        challenge = (await one.get("/api/v1/challenge")).json()
        assert challenge["bits"] == POW_BITS
        stamp = solve(challenge["challenge"], POW_BITS)
        assert stamp_bits(stamp) >= POW_BITS
        # The nick is taken: the stamp is not spent, and pays for the next try.
        await (await ApiClient.create(system.base_url, "taken")).close()
        taken = await two.post("/api/v1/session", json={"nick": "taken", "stamp": stamp})
        assert taken.status_code == 409
        # Solved against one replica, accepted by the other: they share the key.
        paid = await two.post("/api/v1/session", json={"nick": "alice", "stamp": stamp})
        assert paid.status_code == 201, paid.text
        for client in (one, two):
            again = await client.post("/api/v1/session", json={"nick": "eve", "stamp": stamp})
            assert again.status_code == 403
            assert "already" in again.json()["error"]["message"]
        assert await _sessions(system) == 2
    # Without work asked (the system's own gateway), no stamp is needed.
    async with httpx.AsyncClient(base_url=system.base_url) as free:
        assert (await free.get("/api/v1/challenge")).json()["bits"] == 0
        assert (await free.post("/api/v1/session", json={"nick": "bob"})).status_code == 201


async def test_the_terminal_client_solves_the_challenge(system: System) -> None:
    url = await system.start_gateway("gateway-pow", session_pow_bits=POW_BITS)
    client = ChatClient(url)
    try:
        answer = await client.create_session("tui", "pw-tui-1")
        assert answer["nick"] == "tui"
        assert (await client.state())["nick"] == "tui"
    finally:
        await client.aclose()
