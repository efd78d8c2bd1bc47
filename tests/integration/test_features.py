"""Beyond IRC through the API: replies and threads, reactions, edits and deletes, pins."""

from __future__ import annotations

from typing import Any

from tests.harness import ApiClient, System, close, people, refused


async def said(sender: ApiClient, to: str, text: str, *readers: ApiClient, **meta: Any) -> str:
    """Send a line and wait until every reader has it; returns its id."""
    answer = await sender.ok("PRIVMSG", to=to, body=[text], meta=meta)
    for reader in readers:
        await reader.receive_until(lambda i: i["id"] == answer["id"])
    return str(answer["id"])


async def history(client: ApiClient, target: str, **params: Any) -> list[dict[str, Any]]:
    response = await client.http.get("/api/v1/history", params={"target": target, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["messages"]
    return items


def by_id(items: list[dict[str, Any]], message_id: str) -> dict[str, Any]:
    return next(i for i in items if i["id"] == message_id)


async def test_replies_are_checked_and_a_thread_is_fetched_whole(system: System) -> None:
    alice, bob, eve = await people(system, "alice", "bob", "eve")
    for who in (alice, bob, eve):
        await who.join("#t")
    await eve.ok("JOIN", to="#other")
    root = await said(alice, "#t", "what do we ship?", alice, bob)
    first = await said(bob, "#t", "the parser", alice, bob, reply_to=root)
    second = await said(alice, "#t", "and the docs", alice, bob, reply_to=first)
    await said(bob, "#t", "unrelated", alice, bob)
    elsewhere = await said(eve, "#other", "not here", eve)

    # The parent must exist in the same conversation, and be an id.
    await refused(
        bob,
        404,
        "ERR_NO_SUCH_MESSAGE",
        "PRIVMSG",
        to="#t",
        body=["x"],
        meta={"reply_to": elsewhere},
    )
    await refused(
        bob, 400, "ERR_VALIDATION", "PRIVMSG", to="#t", body=["x"], meta={"reply_to": "not-an-id"}
    )
    await refused(
        bob, 404, "ERR_NO_SUCH_MESSAGE", "PRIVMSG", to="alice", body=["x"], meta={"reply_to": root}
    )

    response = await bob.http.get("/api/v1/thread", params={"target": "#t", "id": root})
    assert response.status_code == 200, response.text
    thread = response.json()
    assert [i["body"] for i in thread["messages"]] == [
        ["what do we ship?"],
        ["the parser"],
        ["and the docs"],
    ]
    assert thread["messages"][1]["meta"] == {"reply_to": root}
    assert thread["has_more"] is False
    page = await bob.http.get("/api/v1/thread", params={"target": "#t", "id": root, "limit": 2})
    assert [i["id"] for i in page.json()["messages"]] == [root, first]
    assert page.json()["has_more"] is True
    summary = by_id(await history(bob, "#t"), root)
    assert summary["reply_count"] == 1
    assert by_id(await history(bob, "#t"), first)["reply_count"] == 1

    # Only members read a thread.
    outsider = await eve.http.get("/api/v1/thread", params={"target": "#other", "id": root})
    assert outsider.status_code == 404, outsider.text
    await eve.part("#t")
    gone = await eve.http.get("/api/v1/thread", params={"target": "#t", "id": root})
    assert gone.status_code == 403, gone.text
    assert second
    await close(alice, bob, eve)


async def test_reactions_reach_members_once_each_and_summarise_history(system: System) -> None:
    alice, bob, carol = await people(system, "alice", "bob", "carol")
    for who in (alice, bob, carol):
        await who.join("#r")
    for who in (alice, bob):
        await who.receive_until(lambda i: i["command"] == "JOIN" and i["from"] == "carol")
    line = await said(alice, "#r", "release is out", alice, bob, carol)

    await bob.ok("REACT", to="#r", params=[line, "🎉"])
    again = await bob.ok("REACT", to="#r", params=[line, "🎉"])  # already there: no change
    await carol.ok("REACT", to="#r", params=[line, "🎉"])
    await carol.ok("REACT", to="#r", params=[line, "👍🏽"])
    reacts = await alice.receive(3)
    assert [(i["command"], i["from"], i["to"], i["params"]) for i in reacts] == [
        ("REACT", "bob", "#r", [line, "🎉"]),
        ("REACT", "carol", "#r", [line, "🎉"]),
        ("REACT", "carol", "#r", [line, "👍🏽"]),
    ]
    assert again["replies"] == []
    await alice.nothing_more()

    item = by_id(await history(alice, "#r"), line)
    assert item["reactions"] == [
        {"emoji": "🎉", "count": 2, "nicks": ["bob", "carol"]},
        {"emoji": "👍🏽", "count": 1, "nicks": ["carol"]},
    ]
    # History shows what was said, not the reactions themselves.
    assert [i["command"] for i in await history(alice, "#r")].count("REACT") == 0

    await bob.ok("UNREACT", to="#r", params=[line, "🎉"])
    (took_back,) = await alice.receive(1)
    assert (took_back["command"], took_back["from"]) == ("UNREACT", "bob")
    item = by_id(await history(carol, "#r"), line)
    assert item["reactions"][0] == {"emoji": "🎉", "count": 1, "nicks": ["carol"]}

    await refused(bob, 400, "ERR_VALIDATION", "REACT", to="#r", params=[line, "lol"])
    await refused(bob, 400, "ERR_VALIDATION", "REACT", to="#r", params=[line, "🎉 🎉"])
    await refused(
        bob,
        404,
        "ERR_NO_SUCH_MESSAGE",
        "REACT",
        to="#r",
        params=["00000000-0000-0000-0000-000000000000", "🎉"],
    )
    outsider = await ApiClient.create(system.base_url, "dave")
    await refused(outsider, 403, "ERR_NOTONCHANNEL", "REACT", to="#r", params=[line, "🎉"])
    await close(alice, bob, carol, outsider)


async def test_edits_and_deletes_reach_every_client_and_only_whom_they_may(
    system: System,
) -> None:
    alice = await ApiClient.create(system.base_url, "alice", "pw-alice")
    phone = await ApiClient.login(system.base_url, "alice", "pw-alice")
    bob, eve = await people(system, "bob", "eve")
    for who in (alice, bob, eve):
        await who.join("#e")
    await phone.receive_until(lambda i: i["command"] == "JOIN" and i["from"] == "eve")
    line = await said(bob, "#e", "teh plan", alice, phone, bob, eve)

    # Only the author edits; an operator (alice created #e) may delete, others not.
    await refused(eve, 403, "ERR_NOT_AUTHOR", "EDIT", to="#e", params=[line], body=["x"])
    await refused(alice, 403, "ERR_NOT_AUTHOR", "EDIT", to="#e", params=[line], body=["x"])
    await refused(eve, 403, "ERR_CHANOPRIVSNEEDED", "DELETE", to="#e", params=[line])
    await refused(bob, 400, "ERR_NOTEXTTOSEND", "EDIT", to="#e", params=[line], body=[])
    await refused(bob, 400, "ERR_NEEDMOREPARAMS", "EDIT", to="#e", body=["x"])

    await bob.ok("EDIT", to="#e", params=[line], body=["the plan"])
    await bob.ok("EDIT", to="#e", params=[line], body=["the plan, v2"])
    for client in (alice, phone, eve):
        edits = await client.receive(2)
        assert [(i["command"], i["params"], i["body"]) for i in edits] == [
            ("EDIT", [line], ["the plan"]),
            ("EDIT", [line], ["the plan, v2"]),
        ]
    item = by_id(await history(eve, "#e"), line)
    assert item["body"] == ["the plan, v2"]
    assert item["edited"] is not None
    versions = (await eve.http.get("/api/v1/edits", params={"target": "#e", "id": line})).json()
    assert [v["body"] for v in versions["versions"]] == [["teh plan"], ["the plan"]]
    assert versions["message"]["body"] == ["the plan, v2"]

    await bob.ok("REACT", to="#e", params=[line, "👀"])
    await alice.ok("DELETE", to="#e", params=[line])  # the operator
    for client in (alice, phone, bob, eve):
        got = await client.receive_until(lambda i: i["command"] == "DELETE")
        assert got[-1]["params"] == [line] and got[-1]["from"] == "alice"
    item = by_id(await history(eve, "#e"), line)
    assert item["body"] == [] and item["meta"] == {}
    assert item["deleted"]["by"] == "alice"
    assert "reactions" not in item and "edited" not in item
    # The text is gone everywhere: the message, its edits, its edit history.
    versions = (await eve.http.get("/api/v1/edits", params={"target": "#e", "id": line})).json()
    assert versions["versions"] == []
    async with system.db() as conn:
        stored = await conn.fetch(
            "SELECT body::text AS body FROM delivery.messages WHERE command IN ('PRIVMSG', 'EDIT')"
        )
    assert {r["body"] for r in stored} == {"[]"}  # no copy of the text is left anywhere
    late = await ApiClient.create(system.base_url, "late")
    await late.join("#e")
    texts = [i["body"] for i in await history(late, "#e") if i["command"] == "PRIVMSG"]
    assert texts == [[]]
    await refused(bob, 404, "ERR_NO_SUCH_MESSAGE", "EDIT", to="#e", params=[line], body=["back"])
    await refused(bob, 404, "ERR_NO_SUCH_MESSAGE", "REACT", to="#e", params=[line, "👀"])

    # In a DM only the author deletes.
    dm = await said(bob, "eve", "between us", bob, eve)
    await refused(eve, 403, "ERR_NOT_AUTHOR", "DELETE", to="bob", params=[dm])
    await bob.ok("DELETE", to="eve", params=[dm])
    got = await eve.receive_until(lambda i: i["command"] == "DELETE")
    assert (got[-1]["from"], got[-1]["to"]) == ("bob", "eve")
    assert by_id(await history(eve, "bob"), dm)["deleted"]["by"] == "bob"
    await close(alice, phone, bob, eve, late)


async def test_pins_are_for_operators_and_listed_for_members(system: System) -> None:
    alice, bob = await people(system, "alice", "bob")
    await alice.join("#p")
    await bob.join("#p")
    first = await said(bob, "#p", "meeting at 3", alice, bob)
    second = await said(alice, "#p", "agenda: ship it", alice, bob)
    await refused(bob, 403, "ERR_CHANOPRIVSNEEDED", "PIN", to="#p", params=[first])
    await alice.ok("PIN", to="#p", params=[second])
    await alice.ok("PIN", to="#p", params=[first])
    got = await bob.receive(2)
    assert [(i["command"], i["params"]) for i in got] == [("PIN", [second]), ("PIN", [first])]
    pins = (await bob.http.get("/api/v1/channels/p/pins")).json()["messages"]
    assert [p["id"] for p in pins] == [second, first]
    assert all(p["pinned"] for p in pins)
    await alice.ok("UNPIN", to="#p", params=[second])
    (unpinned,) = await bob.receive(1)
    assert unpinned["command"] == "UNPIN"
    pins = (await bob.http.get("/api/v1/channels/p/pins")).json()["messages"]
    assert [p["id"] for p in pins] == [first]
    outsider = await ApiClient.create(system.base_url, "eve")
    assert (await outsider.http.get("/api/v1/channels/p/pins")).status_code == 403
    await refused(alice, 400, "ERR_VALIDATION", "PIN", to="bob", params=[first])
    await close(alice, bob, outsider)
