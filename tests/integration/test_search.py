"""Full-text search: only what the caller may read, newest first, by cursor."""

from __future__ import annotations

from typing import Any

from tests.harness import ApiClient, System


async def search(client: ApiClient, q: str, **params: Any) -> dict[str, Any]:
    response = await client.http.get("/api/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def bodies(result: dict[str, Any]) -> list[str]:
    return [" ".join(i["body"]) for i in result["messages"]]


async def test_search_finds_only_what_the_caller_may_read(system: System) -> None:
    alice, bob, carol, dave, eve = [
        await ApiClient.create(system.base_url, nick)
        for nick in ("alice", "bob", "carol", "dave", "eve")
    ]
    await alice.join("#dev")
    await bob.join("#dev")
    await carol.join("#secret")
    await carol.ok("MODE", to="#secret", params=["+s"])
    await bob.say("#dev", "the parser ships friday")
    await carol.say("#secret", "the parser has a secret flaw")
    await bob.say("alice", "parser notes, just for you")
    await carol.say("dave", "parser gossip between carol and dave")
    await alice.say("#dev", "Parsers are fun")  # 'simple': no stemming
    # Channels and DMs are projected on their own partitions: wait for each.
    for reader, texts in (
        (alice, ["the parser ships friday", "parser notes, just for you", "Parsers are fun"]),
        (carol, ["the parser has a secret flaw", "parser gossip between carol and dave"]),
    ):
        while not set(texts) <= {" ".join(i["body"]) for i in reader.items}:
            await reader.receive(1)

    found = await search(alice, "parser")
    assert bodies(found) == ["parser notes, just for you", "the parser ships friday"]
    assert found["next"] is None
    assert {i["to"] for i in found["messages"]} == {"#dev", "alice"}
    # Not a member, not a participant: nothing, not even from a secret channel or others' DMs.
    assert (await search(eve, "parser"))["messages"] == []
    assert bodies(await search(dave, "parser")) == ["parser gossip between carol and dave"]
    assert bodies(await search(carol, "secret flaw")) == ["the parser has a secret flaw"]
    assert (await search(alice, "secret flaw"))["messages"] == []

    # Narrowed to one conversation; a channel the caller is not in is refused (a secret
    # one as if it did not exist, as every read endpoint answers outsiders).
    assert bodies(await search(alice, "parser", target="#dev")) == ["the parser ships friday"]
    assert bodies(await search(alice, "parser", target="bob")) == ["parser notes, just for you"]
    refused = await eve.http.get("/api/v1/search", params={"q": "parser", "target": "#dev"})
    assert refused.status_code == 403, refused.text
    hidden = await eve.http.get("/api/v1/search", params={"q": "parser", "target": "#secret"})
    assert hidden.status_code == 404, hidden.text
    assert hidden.json()["error"]["code"] == "ERR_NOSUCHCHANNEL"
    for bad in (
        {"q": ""},
        {"q": "x" * 201},
        {"q": "x", "limit": 0},
        {"q": "x", "before": "no"},
        {"q": "x", "before": "¹.²"},
        {"q": "x", "before": "99999999999999999999.1"},
    ):
        response = await alice.http.get("/api/v1/search", params=bad)
        assert response.status_code == 400, response.text

    # Leaving a channel takes its history out of reach.
    await alice.part("#dev")
    assert bodies(await search(alice, "parser")) == ["parser notes, just for you"]
    for who in (alice, bob, carol, dave, eve):
        await who.close()


async def test_search_pages_by_cursor_and_sees_edits_and_deletes(system: System) -> None:
    alice, bob = [await ApiClient.create(system.base_url, n) for n in ("alice", "bob")]
    await alice.join("#hay")
    await bob.join("#hay")
    ids = [(await bob.say("#hay", f"needle number {n}"))["id"] for n in range(5)]
    await bob.say("#hay", "just hay")
    await alice.receive_until(lambda i: i["body"] == ["just hay"])

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": 2} | ({"before": cursor} if cursor else {})
        page = await search(alice, "needle", **params)
        seen += [i["id"] for i in page["messages"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == list(reversed(ids)) and pages == 3

    await bob.ok("EDIT", to="#hay", params=[ids[0]], body=["a pin, not that word"])
    await bob.ok("DELETE", to="#hay", params=[ids[1]])
    await alice.receive_until(lambda i: i["command"] == "DELETE")
    assert [i["id"] for i in (await search(alice, "needle"))["messages"]] == list(reversed(ids[2:]))
    (edited,) = (await search(alice, "pin"))["messages"]
    assert edited["id"] == ids[0] and edited["edited"]
    await alice.close()
    await bob.close()
