"""The delivery invariants of DESIGN.md §4, each against real NATS and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from typing import Any

import asyncpg

from libs import bus
from libs.events import MessagePosted, decode_event, encode_event
from libs.irc import fold
from libs.subjects import Subjects, partition_of
from services.fanout import store as fanout_store
from tests.harness import ApiClient, System, texts


async def _queue_counts(system: System, client: ApiClient) -> tuple[int, int, int]:
    async with system.db() as conn:
        row = await conn.fetchrow(
            """SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0)
               FROM delivery.client_queues WHERE client_id = $1""",
            uuid.UUID(client.client_id),
        )
        assert row is not None
        return row[0], row[1], row[2]


async def test_nothing_accepted_is_lost_across_a_fanout_crash_mid_stream(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    await alice.join("#crash")
    await bob.join("#crash")
    reached = {40: asyncio.Event(), 80: asyncio.Event()}
    sent: list[str] = []

    async def sender() -> None:
        for n in range(150):
            await alice.say("#crash", f"m{n}")
            sent.append(f"m{n}")
            if len(sent) in reached:
                reached[len(sent)].set()

    sending = asyncio.create_task(sender())
    await reached[40].wait()
    await system.crash("fanout")  # mid-batch: its transaction is rolled back, nothing acked
    await reached[80].wait()
    system.start("fanout")
    await sending

    items = await bob.receive_until(lambda i: i["body"] == ["m149"], deadline=60)
    assert texts(items) == sent
    await bob.nothing_more()
    await alice.close()
    await bob.close()


async def test_redelivery_and_republish_add_no_second_queue_row(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    await alice.join("#dup")
    await bob.join("#dup")
    for n in range(20):
        await alice.say("#dup", f"d{n}")
    await bob.receive_until(lambda i: i["body"] == ["d19"])
    before = await _queue_counts(system, bob)
    assert before[2] == 21  # bob's JOIN and twenty lines

    # Forget every tracked position: fanout re-reads each partition from the start,
    # as it would after losing its acks, and must recognise every event.
    await system.stop("fanout")
    async with system.db() as conn:
        await conn.execute("UPDATE delivery.partition_offsets SET stream_seq = 0")
    system.start("fanout")

    # Publish one delivered event again under a new Nats-Msg-Id, past JetStream's
    # de-duplication: only the projection's unique key can stop it now.
    js_conn = await bus.connect(system.settings.nats(), "test")
    try:
        js = js_conn.jetstream()
        subjects = Subjects(system.settings.subject_prefix, system.settings.partitions)
        target = fold("#dup")
        subject = f"{system.settings.subject_prefix}.ev.{partition_of(target, 4)}.message.posted"
        stored = await js.get_last_msg(system.settings.stream_name, subject)
        event = decode_event(stored.data or b"")
        assert isinstance(event, MessagePosted)
        ack = await js.publish(
            subjects.event(event), encode_event(event), headers={"Nats-Msg-Id": "new-id"}
        )
        assert not ack.duplicate
    finally:
        await js_conn.close()

    await alice.say("#dup", "after replay")
    items = await bob.receive(1)
    assert texts(items) == ["after replay"]
    await bob.nothing_more()
    # No seq was handed out for a replayed event: the next one follows directly.
    assert items[0]["seq"] == before[2] + 1
    async with system.db() as conn:
        copies = await conn.fetchval(
            "SELECT count(*) FROM delivery.messages WHERE event_id = $1", event.event_id
        )
        assert copies == 1
    await alice.close()
    await bob.close()


async def test_a_retried_send_with_the_same_key_is_delivered_once(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    first = await alice.say("bob", "only once", key="key-1")
    again = await alice.say("bob", "only once", key="key-1")
    assert again == first
    other = await alice.command("PRIVMSG", key="key-1", to="bob", body=["something else"])
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "ERR_IDEMPOTENCY_MISMATCH"
    # The key may also travel in the body.
    via_field = await alice.ok("PRIVMSG", to="bob", body=["second"], idempotency_key="key-2")
    assert (await alice.ok("PRIVMSG", to="bob", body=["second"], idempotency_key="key-2")) == (
        via_field
    )
    # A refusal is remembered too: the same key gets the same answer.
    refused = await alice.command("PRIVMSG", key="key-3", to="nobody", body=["x"])
    assert refused.status_code == 404
    assert (await alice.command("PRIVMSG", key="key-3", to="nobody", body=["x"])).json() == (
        refused.json()
    )
    await alice.say("bob", "done")
    items = await bob.receive_until(lambda i: i["body"] == ["done"])
    assert texts(items) == ["only once", "second", "done"]
    assert items[0]["id"] == first["id"]
    await bob.nothing_more()
    await alice.close()
    await bob.close()


async def test_a_key_still_in_flight_is_refused_with_409(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    await ApiClient.create(system.base_url, "bob")
    async with system.db() as conn:
        # The state a concurrent first request leaves while it waits for its PubAck.
        from services.gateway.app import _fingerprint
        from services.gateway.commands import Command

        fingerprint = _fingerprint(Command("PRIVMSG", "bob", [], ["hello"], {}))
        await conn.execute(
            """INSERT INTO identity.idempotency (session_id, key, request_hash, event_id)
               VALUES ($1, 'busy', $2, $3)""",
            uuid.UUID(alice.session_id),
            fingerprint,
            uuid.uuid4(),
        )
    response = await alice.command("PRIVMSG", key="busy", to="bob", body=["hello"])
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "ERR_IDEMPOTENCY_IN_FLIGHT"
    await alice.close()


async def test_queues_are_gap_free_and_ordered_under_concurrent_senders(system: System) -> None:
    # Two fanout workers own two partitions each; channels span all four.
    await system.stop("fanout")
    system.start("fanout-a", system.settings.model_copy(update={"fanout_partitions": "0,1"}))
    system.start("fanout-b", system.settings.model_copy(update={"fanout_partitions": "2,3"}))
    channels: list[str] = []
    n = 0
    while len({partition_of(fold(c), 4) for c in channels}) < 4 or len(channels) < 6:
        channels.append(f"#room{n}")
        n += 1
    senders = [await ApiClient.create(system.base_url, f"sender{i}") for i in range(4)]
    readers = [await ApiClient.create(system.base_url, f"reader{i}") for i in range(3)]
    membership: dict[str, list[ApiClient]] = defaultdict(list)
    rng = random.Random(7)
    for reader in readers:
        for channel in rng.sample(channels, 4):
            await reader.join(channel)
            membership[channel].append(reader)
    for sender in senders:
        for channel in channels:
            await sender.join(channel)
    for reader in readers:  # JOINs of the senders and of later readers, then nothing else
        expected_joins = sum(
            len(membership[c][membership[c].index(reader) :]) + len(senders)
            for c in channels
            if reader in membership[c]
        )
        await reader.receive(expected_joins)

    sent_by: dict[str, list[tuple[str, str]]] = defaultdict(list)

    async def send_all(sender: ApiClient) -> None:
        for k in range(40):
            channel = rng.choice(channels)
            text = f"{sender.nick}:{k}"
            await sender.say(channel, text)
            sent_by[sender.nick].append((channel, text))

    await asyncio.gather(*(send_all(s) for s in senders))

    per_target_orders: dict[str, list[list[str]]] = defaultdict(list)
    for reader in readers:
        mine = {c for c in channels if reader in membership[c]}
        expected = [t for s in sent_by.values() for c, t in s if c in mine]
        items = await reader.receive(len(expected), deadline=60)  # asserts seq gap-free
        await reader.nothing_more()
        assert sorted(texts(items)) == sorted(expected)
        for channel in mine:
            order = [
                i["body"][0] for i in items if i["to"] == channel and i["command"] == "PRIVMSG"
            ]
            per_target_orders[channel].append(order)
            for sender in senders:  # one sender's sends to one target arrive in send order
                own = [t for c, t in sent_by[sender.nick] if c == channel]
                assert [t for t in order if t.startswith(f"{sender.nick}:")] == own
    for channel, orders in per_target_orders.items():
        assert all(order == orders[0] for order in orders), channel

    async with system.db() as conn:
        rows = await conn.fetch(
            """SELECT q.client_id, count(*) AS n, min(q.seq) AS lo, max(q.seq) AS hi,
                      c.acked_seq
               FROM delivery.client_queues q JOIN identity.clients c ON c.id = q.client_id
               GROUP BY q.client_id, c.acked_seq"""
        )
        for row in rows:  # contiguous; the trimmer may have taken a prefix at the cursor …
            assert row["hi"] - row["lo"] + 1 == row["n"], dict(row)
            assert row["lo"] <= row["acked_seq"] + 1, dict(row)  # … and nothing above it
    for client in senders + readers:
        await client.close()


async def test_membership_is_exact_at_join_and_part(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    await alice.join("#edge")
    await alice.say("#edge", "before bob joined")
    joined = await bob.join("#edge")
    await alice.say("#edge", "after bob joined")
    got = await bob.receive_until(lambda i: i["body"] == ["after bob joined"])
    assert (got[0]["id"], got[0]["ts"]) == (joined["id"], joined["ts"])
    assert [(i["command"], i["body"]) for i in got] == [
        ("JOIN", []),
        ("PRIVMSG", ["after bob joined"]),
    ]

    await bob.part("#edge")
    await alice.say("#edge", "after bob left")
    # Once alice has it, every recipient's row of it is committed (one transaction).
    await alice.receive_until(lambda i: i["body"] == ["after bob left"])
    got = await bob.receive(1)
    assert (got[0]["command"], got[0]["from"]) == ("PART", "bob")
    await bob.nothing_more()
    not_member = await bob.command("PRIVMSG", to="#edge", body=["let me in"])
    assert not_member.status_code == 403
    assert not_member.json()["error"] == {
        "code": "ERR_CANNOTSENDTOCHAN",
        "numeric": "404",
        "message": "#edge: cannot send to channel",
    }
    await alice.close()
    await bob.close()


async def test_trimming_removes_only_rows_at_or_below_the_cursor(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    for n in range(10):
        await alice.say("bob", f"line {n}")
    # A DM is queued to both sides in one transaction: once alice has her ten,
    # bob's ten are committed too. Bob has acknowledged nothing yet.
    await alice.receive(10)
    everything = (await bob.poll(after=0))["messages"]
    assert [i["seq"] for i in everything] == list(range(1, 11))
    page = await bob.poll(after=6)  # acknowledges 1..6
    assert page["messages"] == everything[6:]

    pool = await asyncpg.create_pool(system.settings.dsn(), min_size=1, max_size=1)
    try:
        while await fanout_store.trim_acknowledged(pool, limit=3):
            pass
        alice_acked = await pool.fetchval(
            "SELECT acked_seq FROM identity.clients WHERE id = $1", uuid.UUID(alice.client_id)
        )
    finally:
        await pool.close()
    assert await _queue_counts(system, bob) == (4, 7, 10)
    assert await _queue_counts(system, alice) == (10 - alice_acked, alice_acked + 1, 10)
    assert (await bob.poll(after=6))["messages"] == everything[6:]
    # A stale cursor neither brings rows back nor moves the acknowledgement backwards.
    assert (await bob.poll(after=2))["messages"] == everything[6:]
    assert await _queue_counts(system, bob) == (4, 7, 10)
    await alice.close()
    await bob.close()


async def test_no_wake_up_is_lost_when_send_and_poll_race(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    for n in range(25):
        poll = asyncio.create_task(bob.poll(timeout=10))
        await alice.say("bob", f"race {n}")
        page: dict[str, Any] = await poll  # a lost wake-up shows as an empty answer
        assert [i["body"] for i in page["messages"]] == [[f"race {n}"]]
        bob.seen = page["last_seq"]
    await alice.close()
    await bob.close()
