"""End to end through the public API: sessions, clients, channels, DMs and history."""

from __future__ import annotations

from typing import Any

import httpx

from tests.harness import ApiClient, System, texts, unique


async def test_two_sessions_chat_in_a_channel_and_by_dm(system: System) -> None:
    url = system.base_url
    alice_laptop = await ApiClient.create(url, "alice", password="s3cret-pass")
    alice_phone = await ApiClient.login(url, "alice", "s3cret-pass")
    bob = await ApiClient.create(url, "bob")
    assert alice_phone.session_id == alice_laptop.session_id
    assert alice_phone.client_id != alice_laptop.client_id

    await alice_laptop.join("#General")
    await bob.join("#general")
    await alice_laptop.say("#general", "hi bob")
    await bob.say("#GENERAL", "hi alice")
    await alice_phone.say("bob", "psst, a DM")
    await bob.ok("NOTICE", to="Alice", body=["DM back"])

    everyone = [alice_laptop, alice_phone, bob]
    lines = {"hi bob", "hi alice", "psst, a DM", "DM back"}
    for client in everyone:
        items: list[dict[str, Any]] = []
        while not lines <= {" ".join(i["body"]) for i in items}:
            items.extend(await client.receive(1))
        await client.nothing_more()
        assert [i["seq"] for i in items] == list(range(1, len(items) + 1))
        # Order is promised per target: the channel and the DM are two targets.
        channel = [i for i in items if i["to"] == "#General" and i["command"] == "PRIVMSG"]
        assert texts(channel) == ["hi bob", "hi alice"]
        dm = [(i["command"], i["to"], i["body"]) for i in items if not i["to"].startswith("#")]
        assert dm == [("PRIVMSG", "bob", ["psst, a DM"]), ("NOTICE", "alice", ["DM back"])]
    # Alice's clients see both JOINs; Bob joined second and sees only his own.
    for client in (alice_laptop, alice_phone):
        joins = [(i["from"], i["to"]) for i in client.items if i["command"] == "JOIN"]
        assert joins == [("alice", "#General"), ("bob", "#General")]
    assert [i["from"] for i in bob.items if i["command"] == "JOIN"] == ["bob"]
    dm = next(i for i in bob.items if i["body"] == ["psst, a DM"])
    assert (dm["from"], dm["to"]) == ("alice", "bob")
    assert set(dm) == {"seq", "pos", "id", "ts", "command", "from", "to", "params", "body", "meta"}
    assert dm["ts"].endswith("Z") and len(dm["ts"]) == len("2026-11-23T10:00:00.123456Z")

    state = (await alice_phone.http.get("/api/v1/state")).json()
    assert state["nick"] == "alice"
    assert state["channels"] == ["#General"]
    assert state["away"] is None
    assert state["last_seq"] == alice_phone.seen
    for client in everyone:
        await client.close()


async def test_history_pages_back_and_forth_without_gaps_or_repeats(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    await alice.join("#hist")
    await bob.join("#hist")
    sent = [f"line {n}" for n in range(320)]
    for text in sent:
        await alice.say("#hist", text)
    await bob.receive_until(lambda i: i["body"] == [sent[-1]], deadline=60)

    backwards: list[str] = []
    params: dict[str, object] = {"target": "#HIST", "limit": 47}
    while True:
        page = (await bob.http.get("/api/v1/history", params=params)).json()
        backwards = texts(page["messages"]) + backwards
        positions = [i["pos"] for i in page["messages"]]
        assert positions == sorted(positions)
        if not page["has_more"]:
            break
        params["before"] = positions[0]
    assert backwards == sent

    forwards: list[str] = []
    params = {"target": "#hist", "limit": 50, "after": 0}
    while True:
        page = (await bob.http.get("/api/v1/history", params=params)).json()
        forwards += texts(page["messages"])
        if not page["has_more"]:
            break
        params["after"] = page["messages"][-1]["pos"]
    assert forwards == sent

    between = (
        await bob.http.get(
            "/api/v1/history", params={"target": "#hist", "after": 10, "before": 20, "limit": 5}
        )
    ).json()
    assert [i["pos"] for i in between["messages"]] == [11, 12, 13, 14, 15]
    assert between["has_more"] is True
    dm_page = (await bob.http.get("/api/v1/history", params={"target": "alice"})).json()
    assert dm_page == {"messages": [], "has_more": False}
    await alice.close()
    await bob.close()


async def test_history_is_for_members_and_dm_participants_only(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    eve = await ApiClient.create(system.base_url, "eve")
    await alice.join("#private")
    await alice.say("bob", "for bob only")
    await bob.receive(1)

    refused = await eve.http.get("/api/v1/history", params={"target": "#private"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "ERR_NOTONCHANNEL"
    missing = await eve.http.get("/api/v1/history", params={"target": "#nowhere"})
    assert missing.status_code == 404
    # Eve's DM history with alice is her own pair, which holds nothing.
    eve_view = await eve.http.get("/api/v1/history", params={"target": "alice"})
    assert eve_view.json()["messages"] == []
    bob_view = await bob.http.get("/api/v1/history", params={"target": "alice"})
    assert texts(bob_view.json()["messages"]) == ["for bob only"]
    for client in (alice, bob, eve):
        await client.close()


async def test_logout_revokes_only_that_client(system: System) -> None:
    first = await ApiClient.create(system.base_url, "carol", password="hunter22")
    second = await ApiClient.login(system.base_url, "carol", "hunter22")
    response = await first.http.post("/api/v1/logout")
    assert response.json() == {"status": "ok"}
    assert (await first.http.get("/api/v1/state")).status_code == 401
    assert (await second.http.get("/api/v1/state")).status_code == 200
    await first.close()
    await second.close()


async def test_login_checks_password_and_is_rate_limited(system: System) -> None:
    # The bucket refills one login per 1000 s: however slowly a loaded machine runs the
    # Argon2 checks below, no refill lands within the test, so the count is exact.
    url = await system.start_gateway("gateway-logins", login_rate=0.001, login_burst=5)
    await (await ApiClient.create(url, "dave", password="right-one")).close()
    async with httpx.AsyncClient(base_url=url) as http:
        wrong = await http.post("/api/v1/login", json={"nick": "dave", "password": "wrong"})
        assert wrong.status_code == 401
        anon = await ApiClient.create(url, unique("anon"))
        no_pw = await http.post("/api/v1/login", json={"nick": anon.nick, "password": "x"})
        assert no_pw.status_code == 401
        statuses = [
            (await http.post("/api/v1/login", json={"nick": "dave", "password": "wrong"}))
            for _ in range(4)
        ]
        assert [s.status_code for s in statuses] == [401, 401, 401, 429]
        limited = statuses[-1]
        assert int(limited.headers["Retry-After"]) >= 1
        assert limited.json()["error"]["code"] == "ERR_RATE_LIMITED"
        right = await http.post("/api/v1/login", json={"nick": "dave", "password": "right-one"})
        assert right.status_code == 429  # the right password waits its turn too
        await anon.close()
