"""What the fast paths skip changes nothing a client can see.

- A token a gateway has seen is refused there as soon as another gateway logs
  it out, expires it or ends its session; a NICK is seen there at once.
- A long-poll answered from what a wake carried is the answer a read of the
  queue gives, and a batch too big to carry is read instead.
- Cursors recorded by one statement for many polls are each recorded.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from libs.items import WAKE_ITEMS
from tests.harness import ApiClient, System, polls_waiting, until_parked

META: dict[str, Any] = {"nested": {"z": [1, 2.5, None, True], "a": "ünï"}, "n": -7}


def _on(url: str, client: ApiClient) -> httpx.AsyncClient:
    """The same client (token) speaking to another gateway."""
    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {client.token}"})


async def test_a_revoked_token_is_refused_at_once_by_every_gateway(system: System) -> None:
    other = await system.start_gateway("gateway-2")
    alice = await ApiClient.create(system.base_url, "alice", password="pw-alice")
    await alice.join("#r")
    for n in range(5):  # each time cached over there, revoked here, refused there
        phone = await ApiClient.login(system.base_url, "alice", "pw-alice")
        async with _on(other, phone) as there:
            assert (await there.get("/api/v1/state")).status_code == 200
            assert (await phone.http.post("/api/v1/logout")).status_code == 200
            refused = await there.get("/api/v1/messages", params={"timeout": 0})
            assert refused.status_code == 401, n
            assert refused.json()["error"]["code"] == "ERR_UNAUTHORIZED"
            said = {"command": "PRIVMSG", "to": "#r", "body": ["still here?"]}
            assert (await there.post("/api/v1/messages", json=said)).status_code == 401
        await phone.close()
    async with _on(other, alice) as there:
        assert (await there.get("/api/v1/state")).status_code == 200
        await alice.ok("QUIT")
        assert (await there.get("/api/v1/state")).status_code == 401
    await alice.close()


async def test_a_nick_change_and_an_expiry_reach_every_gateway_at_once(system: System) -> None:
    other = await system.start_gateway("gateway-2")
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    idle = await ApiClient.create(system.base_url, "idle")
    await alice.join("#x")
    await bob.join("#x")
    async with _on(other, alice) as there, _on(other, idle) as idle_there:
        assert (await there.get("/api/v1/state")).json()["nick"] == "alice"
        assert (await idle_there.get("/api/v1/state")).status_code == 200
        await alice.ok("NICK", params=["alicia"])
        assert (await there.get("/api/v1/state")).json()["nick"] == "alicia"
        said = await there.post(
            "/api/v1/messages", json={"command": "PRIVMSG", "to": "#x", "body": ["hi"]}
        )
        assert said.status_code == 200
        got = await bob.receive_until(lambda i: i["command"] == "PRIVMSG")
        assert got[-1]["from"] == "alicia"

        assert await system.expire_idle(idle) == [1]  # a third gateway runs the sweep
        assert (await idle_there.get("/api/v1/state")).status_code == 401
    for client in (alice, bob, idle):
        await client.close()


async def test_an_answer_carried_by_a_wake_is_the_answer_the_queue_gives(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    await alice.join("#w")
    await bob.join("#w")
    await bob.receive(1)
    for round_ in range(3):
        before = bob.seen
        waiting = polls_waiting()
        parked = asyncio.create_task(bob.http.get("/api/v1/messages", params=_after(before, 10)))
        await until_parked(waiting, "bob's poll to park")
        await alice.ok("PRIVMSG", to="#w", body=[f"line {round_}"], meta=META)
        carried = await parked
        again = await bob.http.get("/api/v1/messages", params=_after(before, 0))
        assert carried.status_code == again.status_code == 200
        assert carried.json() == again.json()  # the same answer, whichever way it came
        page = carried.json()
        assert [i["body"] for i in page["messages"]] == [[f"line {round_}"]]
        assert page["messages"][0]["meta"] == META
        bob.seen = page["last_seq"]
    await alice.close()
    await bob.close()


async def test_a_batch_too_big_to_carry_is_read_from_the_queue(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    await alice.join("#big")
    await bob.join("#big")
    await bob.receive(1)
    await system.stop("fanout")  # the lines pile up in the stream …
    count = WAKE_ITEMS + 4
    for n in range(count):
        await alice.ok("PRIVMSG", to="#big", body=[f"b{n}"])
    before = bob.seen
    waiting = polls_waiting()
    parked = asyncio.create_task(bob.http.get("/api/v1/messages", params=_after(before, 20)))
    await until_parked(waiting, "bob's poll to park")
    system.start("fanout")  # … and are projected in one batch
    page = (await parked).json()
    assert [i["seq"] for i in page["messages"]] == list(range(before + 1, before + 1 + count))
    assert [i["body"] for i in page["messages"]] == [[f"b{n}"] for n in range(count)]
    await alice.close()
    await bob.close()


async def test_cursors_of_many_concurrent_polls_are_all_recorded(system: System) -> None:
    clients = [await ApiClient.create(system.base_url, f"p{n}") for n in range(12)]
    await clients[0].join("#c")
    for client in clients[1:]:
        await client.join("#c")
    await clients[0].say("#c", "hello")
    lasts = await asyncio.gather(
        *(c.receive_until(lambda i: i["command"] == "PRIVMSG") for c in clients)
    )
    await asyncio.gather(*(c.poll() for c in clients))  # each acknowledges all it has
    async with system.db() as conn:
        rows = await conn.fetch("SELECT id::text, acked_seq FROM identity.clients")
    acked = {r["id"]: r["acked_seq"] for r in rows}
    assert {c.client_id: acked[c.client_id] for c in clients} == {
        c.client_id: got[-1]["seq"] for c, got in zip(clients, lasts, strict=True)
    }
    for client in clients:
        await client.close()


def _after(seq: int, timeout: float) -> dict[str, Any]:
    return {"after": seq, "timeout": timeout}
