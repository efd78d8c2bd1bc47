"""Trimming history takes reactions, edits, pins, replies and their change items along;
nothing is left pointing at nothing."""

from __future__ import annotations

import asyncpg

from services.fanout import extras
from services.fanout import store as fanout_store
from tests.harness import ApiClient, System

ORPHANS = {
    "side items whose message is gone": """
        SELECT count(*) FROM delivery.messages s
        WHERE s.target LIKE 'x:%' AND NOT EXISTS (
            SELECT 1 FROM delivery.messages m WHERE m.event_id::text = s.params->>0)""",
    "notes without a message": "SELECT count(*) FROM delivery.notes WHERE message_id IS NULL",
    "read markers of sessions gone": """
        SELECT count(*) FROM delivery.read_markers r WHERE NOT EXISTS (
            SELECT 1 FROM identity.sessions s WHERE s.id = r.session_id)""",
}


async def trim(pool: asyncpg.Pool, keep: int) -> None:
    while await fanout_store.trim_acknowledged(pool):
        pass
    while await fanout_store.trim_history(pool, keep=keep):
        pass
    while await extras.sweep(pool):
        pass


async def count(pool: asyncpg.Pool, table: str) -> int:
    return int(await pool.fetchval(f"SELECT count(*) FROM delivery.{table}"))


async def test_trimming_leaves_no_orphans(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    carol = await ApiClient.create(system.base_url, "carol")
    for who in (alice, bob, carol):
        await who.join("#r")
    old = (await bob.say("#r", "old news"))["id"]
    await alice.receive_until(lambda i: i["id"] == old)
    reply = (await alice.ok("PRIVMSG", to="#r", body=["re"], meta={"reply_to": old}))["id"]
    await alice.receive_until(lambda i: i["id"] == reply)
    await alice.ok("REACT", to="#r", params=[old, "👍"])
    await carol.ok("REACT", to="#r", params=[old, "👎"])
    await bob.ok("EDIT", to="#r", params=[old], body=["old news, corrected"])
    await alice.ok("PIN", to="#r", params=[old])
    await bob.ok("REACT", to="#r", params=[reply, "🙂"])
    await alice.ok("DELETE", to="#r", params=[reply])
    await alice.receive_until(lambda i: i["command"] == "DELETE")
    await carol.receive_until(lambda i: i["command"] == "DELETE")
    await carol.ok("MARKREAD", to="#r", params=["3"])
    await carol.receive_until(lambda i: i["command"] == "MARKREAD")
    kept = [(await bob.say("#r", f"new {n}"))["id"] for n in range(3)]
    for who in (alice, bob, carol):
        await who.receive_until(lambda i: i["id"] == kept[-1])
        await who.poll()  # acknowledges everything
    await carol.ok("QUIT")
    await alice.receive_until(lambda i: i["command"] == "QUIT")  # projected: markers gone
    await alice.poll()

    pool = await asyncpg.create_pool(system.settings.dsn(), min_size=1, max_size=1)
    try:
        assert await count(pool, "reactions") == 2 and await count(pool, "pins") == 1
        assert await count(pool, "edits") == 1 and await count(pool, "replies") == 1
        assert await count(pool, "tombstones") == 1
        await trim(pool, keep=3)
        remaining = await pool.fetch(
            "SELECT event_id::text AS id FROM delivery.messages WHERE target = '#r'"
        )
        assert {r["id"] for r in remaining} == set(kept)
        for table in ("reactions", "edits", "pins", "replies", "tombstones", "notes"):
            assert await count(pool, table) == 0, table
        for what, query in ORPHANS.items():
            assert await pool.fetchval(query) == 0, what
        assert (
            await pool.fetchval("SELECT count(*) FROM delivery.messages WHERE target LIKE 'x:%'")
            == 0
        )
    finally:
        await pool.close()
    history = (await alice.http.get("/api/v1/history", params={"target": "#r"})).json()
    assert [i["id"] for i in history["messages"]] == kept
    pins = (await alice.http.get("/api/v1/channels/r/pins")).json()
    assert pins == {"messages": []}
    await alice.close()
    await bob.close()
    await carol.close()


async def test_a_change_item_stays_while_a_queue_holds_it(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    await alice.join("#q")
    await bob.join("#q")
    line = (await bob.say("#q", "react to me"))["id"]
    await alice.receive_until(lambda i: i["id"] == line)
    await alice.ok("REACT", to="#q", params=[line, "🔥"])
    await alice.receive_until(lambda i: i["command"] == "REACT")
    for n in range(4):
        await alice.say("#q", f"more {n}")
    await alice.receive_until(lambda i: i["body"] == ["more 3"])
    await alice.poll()
    pool = await asyncpg.create_pool(system.settings.dsn(), min_size=1, max_size=1)
    try:
        # Bob has acknowledged nothing: the line waits in his queue, so it stays, and so
        # does the reaction's item.
        await trim(pool, keep=2)
        assert await count(pool, "reactions") == 1
        got = await bob.receive_until(lambda i: i["body"] == ["more 3"])
        assert [i["params"] for i in got if i["command"] == "REACT"] == [[line, "🔥"]]
        await bob.poll()
        await trim(pool, keep=2)
        assert await count(pool, "reactions") == 0
        for what, query in ORPHANS.items():
            assert await pool.fetchval(query) == 0, what
    finally:
        await pool.close()
    await alice.close()
    await bob.close()
