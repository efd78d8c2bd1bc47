"""Read markers shared by a session's clients, unread counts, and typing notices."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.harness import ApiClient, System


async def state(client: ApiClient) -> dict[str, Any]:
    response = await client.http.get("/api/v1/state")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def delivered(sender: ApiClient, to: str, text: str, reader: ApiClient) -> dict[str, Any]:
    """Send a line and wait for ``reader`` to get it; returns the reader's item."""
    answer = await sender.say(to, text)
    got = await reader.receive_until(lambda i: i["id"] == answer["id"])
    return got[-1]


async def test_reading_on_one_client_clears_the_unread_count_of_the_others(
    system: System,
) -> None:
    laptop = await ApiClient.create(system.base_url, "alice", "pw-alice")
    phone = await ApiClient.login(system.base_url, "alice", "pw-alice")
    bob = await ApiClient.create(system.base_url, "bob")
    await bob.join("#news")  # history before alice joins is not hers to read
    await delivered(bob, "#news", "before alice", bob)
    await laptop.join("#news")
    await phone.receive_until(lambda i: i["command"] == "JOIN" and i["from"] == "alice")
    lines = [await delivered(bob, "#news", f"headline {n}", phone) for n in range(3)]
    await delivered(laptop, "#news", "my own line", phone)  # never unread for alice
    dms = [await delivered(bob, "alice", f"psst {n}", phone) for n in range(2)]
    await laptop.receive(len(phone.items))

    assert (await state(laptop))["unread"] == {"#news": 3, "bob": 2}
    assert (await state(laptop))["read"] == {}

    await phone.ok("MARKREAD", to="#news", params=[str(lines[1]["pos"])])
    for client in (laptop, phone):
        (mark,) = await client.receive(1)
        assert (mark["command"], mark["from"], mark["to"], mark["params"]) == (
            "MARKREAD",
            "alice",
            "#news",
            [str(lines[1]["pos"])],
        )
    now = await state(laptop)
    assert now["unread"] == {"#news": 1, "bob": 2}
    assert now["read"] == {"#news": lines[1]["pos"]}
    assert (await bob.http.get("/api/v1/state")).json()["read"] == {}  # markers are per session

    # Backwards changes nothing and tells no one; bad positions and strangers are refused.
    answer = await laptop.ok("MARKREAD", to="#news", params=[str(lines[0]["pos"])])
    assert answer["replies"] == []
    await laptop.nothing_more()
    too_far = await laptop.command("MARKREAD", to="#news", params=[str(lines[2]["pos"] + 50)])
    assert too_far.status_code == 400, too_far.text
    for bad in (["-1"], ["x"], [], ["²"], ["1" * 19]):
        response = await laptop.command("MARKREAD", to="#news", params=bad)
        assert response.status_code == 400, response.text
    outside = await laptop.command("MARKREAD", to="#elsewhere", params=["1"])
    assert outside.status_code == 404, outside.text

    await laptop.ok("MARKREAD", to="bob", params=[str(dms[-1]["pos"])])
    await phone.receive_until(lambda i: i["command"] == "MARKREAD" and i["to"] == "bob")
    assert (await state(phone))["unread"] == {"#news": 1, "bob": 0}

    # A deleted line is not unread any more.
    await bob.ok("DELETE", to="#news", params=[lines[2]["id"]])
    await phone.receive_until(lambda i: i["command"] == "DELETE")
    assert (await state(phone))["unread"]["#news"] == 0
    for client in (laptop, phone, bob):
        await client.close()


async def test_reactions_markers_and_pins_survive_a_restart(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice", "pw-alice")
    bob = await ApiClient.create(system.base_url, "bob")
    await alice.join("#keep")
    await bob.join("#keep")
    line = await delivered(bob, "#keep", "remember me", alice)
    await alice.ok("REACT", to="#keep", params=[line["id"], "❤️"])
    await alice.ok("PIN", to="#keep", params=[line["id"]])
    await alice.ok("MARKREAD", to="#keep", params=[str(line["pos"])])
    await alice.receive_until(lambda i: i["command"] == "MARKREAD")
    await alice.close()
    await bob.close()

    await system.stop_all()
    for name in ("presence", "history", "fanout", "gateway"):
        system.start(name)
    await system.wait_ready()

    again = await ApiClient.login(system.base_url, "alice", "pw-alice")
    now = await state(again)
    assert now["read"] == {"#keep": line["pos"]}
    assert now["unread"] == {"#keep": 0}
    history = await again.http.get("/api/v1/history", params={"target": "#keep"})
    item = next(i for i in history.json()["messages"] if i["id"] == line["id"])
    assert item["reactions"] == [{"emoji": "❤️", "count": 1, "nicks": ["alice"]}]
    assert item["pinned"] is True
    await again.close()


async def test_typing_reaches_the_others_beside_the_queue_never_in_it(system: System) -> None:
    alice, bob, carol = [
        await ApiClient.create(system.base_url, nick) for nick in ("alice", "bob", "carol")
    ]
    for who in (alice, bob, carol):
        await who.join("#t")
    for who in (alice, bob, carol):
        await who.receive_until(lambda i: i["command"] == "JOIN" and i["from"] == "carol")
    outsider = await ApiClient.create(system.base_url, "dave")

    # A parked poll is answered as soon as someone starts typing.
    # Whether the notice finds the poll parked or arrives first, the poll carries it.
    parked = asyncio.create_task(bob.poll(timeout=30))
    await alice.ok("TYPING", to="#t")
    page = await asyncio.wait_for(parked, 20)  # not the 30 s of the poll's timeout
    assert page["messages"] == [] and page["last_seq"] == bob.seen
    (notice,) = page["ephemeral"]
    assert (notice["type"], notice["from"], notice["to"], notice["state"]) == (
        "typing",
        "alice",
        "#t",
        "active",
    )
    assert 0 < notice["expires_in"] <= 6
    # Collected once; not for the typist; nothing in any queue.
    assert "ephemeral" not in await bob.poll(timeout=0)
    carol_page = await carol.poll(timeout=5)
    assert [n["from"] for n in carol_page["ephemeral"]] == ["alice"]
    assert "ephemeral" not in await alice.poll(timeout=0)
    for who in (alice, bob, carol):
        await who.nothing_more()

    await alice.ok("TYPING", to="#t", params=["done"])
    done = await bob.poll(timeout=5)
    assert [n["state"] for n in done["ephemeral"]] == ["done"]

    # In a DM, only the other one hears it.
    await bob.ok("TYPING", to="alice")
    dm = await alice.poll(timeout=5)
    assert [(n["from"], n["to"]) for n in dm["ephemeral"]] == [("bob", "alice")]

    # Rate limited per client and conversation; refused outside.
    statuses = [(await alice.command("TYPING", to="#t")).status_code for _ in range(8)]
    assert 429 in statuses and statuses[0] == 200
    refused = await outsider.command("TYPING", to="#t")
    assert refused.status_code == 403, refused.text
    bad = await alice.command("TYPING", to="#t", params=["shouting"])
    assert bad.status_code == 400, bad.text

    async with system.db() as conn:
        stored = await conn.fetchval(
            "SELECT count(*) FROM delivery.messages WHERE command NOT IN ('JOIN')"
        )
    assert stored == 0
    for who in (alice, bob, carol, outsider):
        await who.close()
