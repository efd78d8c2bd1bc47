"""What the fast paths skip changes nothing a client can see.

- A token a gateway has seen is refused there as soon as another gateway logs
  it out, expires it or ends its session; a NICK is seen there at once.
- A long-poll answered from what a wake carried is the answer a read of the
  queue gives, and a batch too big to carry is read instead.
- A queue read sends each item's JSON as fanout stored it, the item its columns
  make; an item edited or deleted since is built from its columns.
- Cursors recorded by one statement for many polls are each recorded.
- A batch of channel items alone is queued by a statement of its own exactly
  as the general statement queues it; a batch of channel messages alone is
  applied by that one statement, outside a transaction, and where the
  partition's position is not where the batch expects it writes nothing.
- A poll level with its client's known tip parks without reading the queue, and
  still gets every item, refuses a revoked token at once, and is answered when
  a fanout worker that starts again asks for a recheck after a lost wake.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import nats
import pytest
from nats.aio.msg import Msg
from prometheus_client import REGISTRY

from libs import db
from libs.bus import Delivery, PositionConflict
from libs.events import MessagePosted, encode_event
from libs.items import WAKE_ITEMS, Wake
from libs.subjects import Subjects
from services.fanout import store
from services.fanout.app import DeliveryProjection
from services.fanout.handlers import StoredItem
from tests.harness import (
    ApiClient,
    System,
    close,
    people,
    texts,
)

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
    alice, bob = await people(system, "alice", "bob")
    await alice.join("#w")
    await bob.join("#w")
    await bob.receive(1)
    for round_ in range(3):
        before = bob.seen
        parked = await bob.parked(before, 10)
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


async def test_an_item_sent_as_stored_is_the_item_its_columns_make(system: System) -> None:
    """A queue read sends each item's JSON as fanout stored it; an item rewritten
    since (edited, deleted) has none, and is built from its columns."""
    alice, bob = await people(system, "alice", "bob")
    await alice.join("#s")
    await bob.join("#s")
    await bob.receive(1)
    before = bob.seen
    await alice.say("#s", "plain")
    await alice.ok("NOTICE", to="#s", body=["ünï", "two lines"], meta=META)
    await alice.ok("TOPIC", to="#s", body=["the topic"])
    stored = await bob.receive(3)
    assert [i["command"] for i in stored] == ["PRIVMSG", "NOTICE", "TOPIC"]
    assert stored[1]["meta"] == META and stored[1]["body"] == ["ünï", "two lines"]
    async with system.db() as conn:
        kept = await conn.fetchval(
            """SELECT count(*) FROM delivery.client_queues q
               JOIN delivery.messages m ON m.id = q.message_id
               WHERE q.client_id = $1 AND q.seq > $2 AND m.wire IS NOT NULL""",
            uuid.UUID(bob.client_id),
            before,
        )
        assert kept == 3  # the three were sent as stored …
        await conn.execute("UPDATE delivery.messages SET wire = NULL")
    built = await bob.http.get("/api/v1/messages", params=_after(before, 0))
    assert built.json()["messages"] == stored  # … and are the items their columns make

    since = bob.seen
    line = (await alice.say("#s", "teh plan"))["id"]
    await bob.receive(1)
    await alice.ok("EDIT", to="#s", params=[line], body=["the plan"])
    await bob.receive_until(lambda i: i["command"] == "EDIT")
    page = (await bob.http.get("/api/v1/messages", params=_after(since, 0))).json()
    assert page["messages"][0]["id"] == line
    assert page["messages"][0]["body"] == ["the plan"]  # as edited, not as stored
    await alice.ok("DELETE", to="#s", params=[line])
    await bob.receive_until(lambda i: i["command"] == "DELETE")
    page = (await bob.http.get("/api/v1/messages", params=_after(since, 0))).json()
    assert page["messages"][0]["body"] == []  # and as deleted
    await alice.close()
    await bob.close()


async def test_a_batch_too_big_to_carry_is_read_from_the_queue(system: System) -> None:
    alice, bob = await people(system, "alice", "bob")
    await alice.join("#big")
    await bob.join("#big")
    await bob.receive(1)
    await system.stop("fanout")  # the lines pile up in the stream …
    count = WAKE_ITEMS + 4
    for n in range(count):
        await alice.ok("PRIVMSG", to="#big", body=[f"b{n}"])
    before = bob.seen
    parked = await bob.parked(before, 20)
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


async def test_a_poll_level_with_its_tip_parks_without_reading(system: System) -> None:
    alice, bob = await people(system, "alice", "bob")
    await alice.join("#t")
    await bob.join("#t")
    await bob.receive(1)  # the read taught the gateway bob's tip
    for n in range(5):
        skipped = _skipped()
        parked = await bob.parked(timeout=20)
        await alice.say("#t", f"line {n}")
        page = (await parked).json()
        assert [i["seq"] for i in page["messages"]] == [bob.seen + 1]
        assert texts(page["messages"]) == [f"line {n}"]
        assert _skipped() == skipped + 1  # it parked without reading
        bob.seen = page["last_seq"]
    await alice.close()
    await bob.close()


async def test_a_poll_behind_its_tip_is_answered_from_what_wakes_carried(system: System) -> None:
    other = await system.start_gateway("gateway-2")
    alice, bob, carol = await people(system, "alice", "bob", "carol")
    for member in (alice, bob, carol):
        await member.join("#k")
    # bob reads up to carol's JOIN: the gateway knows his tip, level with what he has
    await bob.receive_until(lambda i: i["command"] == "JOIN" and i["from"] == "carol")
    await carol.receive(1)
    before = bob.seen
    for n in range(3):
        await alice.ok("PRIVMSG", to="#k", body=[f"k{n}"], meta=META)
    # carol's polls on the same gateway are answered by the wakes that also reach bob
    await carol.receive_until(lambda i: i.get("body") == ["k2"])
    kept = _skipped("kept")
    answered = await bob.http.get("/api/v1/messages", params=_after(before, 10))
    assert _skipped("kept") == kept + 1  # answered from the carried items, no read
    async with _on(other, bob) as there:  # a gateway that knows nothing reads the queue
        read = await there.get("/api/v1/messages", params=_after(before, 0))
    assert answered.status_code == read.status_code == 200
    assert answered.json() == read.json()
    assert texts(answered.json()["messages"]) == ["k0", "k1", "k2"]
    await close(alice, bob, carol)


async def test_a_poll_that_skips_its_read_still_refuses_a_revoked_token(system: System) -> None:
    other = await system.start_gateway("gateway-2")
    alice = await ApiClient.create(system.base_url, "alice", password="pw-alice")
    await alice.join("#r")
    phone = await ApiClient.login(system.base_url, "alice", "pw-alice")
    await alice.say("#r", "to every device")
    await phone.receive(1)  # the first gateway knows the phone's tip
    async with _on(other, phone) as there:
        assert (await there.post("/api/v1/logout")).status_code == 200
    skipped = _skipped()
    refused = await phone.http.get("/api/v1/messages", params=_after(phone.seen, 60))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "ERR_UNAUTHORIZED"
    assert _skipped() == skipped + 1  # refused by the statement that records the cursor
    await alice.close()
    await phone.close()


async def test_a_recheck_from_a_starting_fanout_brings_an_item_whose_wake_was_lost(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await people(system, "alice", "bob")
    await alice.join("#l")
    await bob.join("#l")
    await bob.receive(1)
    lost = asyncio.Event()

    async def drop(self: DeliveryProjection, *args: Any) -> None:
        lost.set()  # committed, as a worker that dies before its wake leaves it

    monkeypatch.setattr(DeliveryProjection, "publish_wakes", drop)
    await alice.say("#l", "never woken")
    await asyncio.wait_for(lost.wait(), 20)
    skipped = _skipped()
    parked = await bob.parked(timeout=60)
    assert _skipped() == skipped + 1  # level with the tip it knows, it did not read
    monkeypatch.undo()
    await system.stop("fanout")
    system.start("fanout")  # the worker taking the partitions asks for a recheck
    page = (await parked).json()
    assert texts(page["messages"]) == ["never woken"]
    await alice.close()
    await bob.close()


async def test_a_fanout_that_finds_its_partition_moved_on_asks_for_a_recheck(
    system: System,
) -> None:
    """The other owner that committed there may have died before its wakes."""
    rechecked = asyncio.Event()

    async def heard(msg: Msg) -> None:
        if msgspec.json.decode(msg.data, type=Wake).recheck:
            rechecked.set()

    nc = await nats.connect(system.settings.nats())
    subjects = Subjects(system.settings.subject_prefix, system.settings.partitions)
    await nc.subscribe(subjects.wake, cb=heard)
    await nc.flush()
    pool = await db.create_pool(system.settings.dsn(), size=1)
    try:
        projection = DeliveryProjection(pool, nc, system.settings)
        stale = await projection.position(0) - 1  # behind what another owner committed
        with pytest.raises(PositionConflict):
            await projection.apply(0, stale, [Delivery(stale + 1, subjects.wake, b"{}")])
        await asyncio.wait_for(rechecked.wait(), 10)
    finally:
        await pool.close()
        await nc.close()


async def test_a_batch_that_rewrites_an_item_tells_every_gateway(system: System) -> None:
    """Kept items of clients the batch does not wake (they left) go too (test_longpoll);
    only edits and deletes rewrite items."""
    wakes: list[Wake] = []

    async def heard(msg: Msg) -> None:
        wakes.append(msgspec.json.decode(msg.data, type=Wake))

    nc = await nats.connect(system.settings.nats())
    subjects = Subjects(system.settings.subject_prefix, system.settings.partitions)
    await nc.subscribe(subjects.wake, cb=heard)
    (alice,) = await people(system, "alice")
    await alice.join("#r")
    line = (await alice.say("#r", "oops"))["id"]
    await alice.receive_until(lambda i: i["command"] == "PRIVMSG")
    # Reactions and pins change tables no queue item is read from: nothing rewritten.
    await alice.ok("REACT", to="#r", params=[line, "👍"])
    await alice.ok("PIN", to="#r", params=[line])
    await alice.receive_until(lambda i: i["command"] == "PIN")
    await nc.flush()
    assert not any(w.rewrote for w in wakes)
    await alice.ok("DELETE", to="#r", params=[line])
    await alice.receive_until(lambda i: i["command"] == "DELETE")
    await nc.flush()
    assert any(w.rewrote and w.clients for w in wakes)
    await nc.close()
    await alice.close()


def _skipped(answer: str = "park") -> float:
    """Polls that read no queue: parked level with the tip, or answered from kept items."""
    name = "chinwag_gateway_longpoll_reads_skipped_total"
    return REGISTRY.get_sample_value(name, {"answer": answer}) or 0.0


def _after(seq: int, timeout: float) -> dict[str, Any]:
    return {"after": seq, "timeout": timeout}


async def _queued_by(
    conn: Any, statement: str, items: list[StoredItem], before: list[StoredItem] | None = None
) -> tuple[list[tuple[Any, ...]], list[Any]]:
    """What ``statement`` answers for ``items`` and the queue rows it writes (``before``
    written first by the general statement), all rolled back after."""
    written = conn.transaction()
    await written.start()
    try:
        if before:
            await conn.fetch(store._WRITE_ITEMS, *store._write_args(before, True, None))
        rows = await conn.fetch(statement, *store._write_args(items, True, None))
        queued = await conn.fetch(
            """SELECT q.client_id, q.seq, m.event_id, m.pos FROM delivery.client_queues q
               JOIN delivery.messages m ON m.id = q.message_id
               WHERE m.event_id = ANY($1::uuid[]) ORDER BY q.client_id, q.seq""",
            [i.event_id for i in items],
        )
    finally:
        await written.rollback()  # the other statement writes the same
    return sorted((tuple(r) for r in rows), key=str), list(queued)


async def test_a_batch_of_channel_items_is_queued_as_the_general_statement_queues_it(
    system: System,
) -> None:
    """Fanout writes a batch of channel items alone with a statement of their own."""
    alice = await ApiClient.create(system.base_url, "alice", password="pw-alice")
    bob = await ApiClient.create(system.base_url, "bob")
    phone = await ApiClient.login(system.base_url, "alice", "pw-alice")  # a second client
    for member, channels in ((alice, ("#a", "#b")), (bob, ("#a", "#c"))):
        for channel in channels:
            await member.join(channel)
    now = datetime.now(UTC)
    items = [
        StoredItem(uuid.uuid4(), c, "PRIVMSG", "alice", None, c, [], [f"to {c}"], {}, now, c)
        for c in ("#a", "#b", "#a", "#c", "#nobody")
    ]
    async with system.db() as conn:
        answers, queues = zip(
            *[
                await _queued_by(conn, statement, items)
                for statement in (store._WRITE_CHANNEL_ITEMS, store._WRITE_ITEMS)
            ],
            strict=True,
        )
    assert answers[0] == answers[1]
    assert queues[0] == queues[1]
    assert len(queues[0]) == 3 * 2 + 3  # three items for each of alice's clients, three for bob

    # Items of one channel alone, one of them written already: the statement that
    # finds the members once queues what the general one queues, and skips it too.
    one = [
        StoredItem(uuid.uuid4(), "#a", "PRIVMSG", "alice", None, "#a", [], [f"{n}"], {}, now, "#a")
        for n in range(4)
    ]
    async with system.db() as conn:
        answers, queues = zip(
            *[
                await _queued_by(conn, statement, one, before=one[1:2])
                for statement in (store._WRITE_ONE_CHANNEL, store._WRITE_ITEMS)
            ],
            strict=True,
        )
    assert answers[0] == answers[1]
    assert queues[0] == queues[1]
    assert len(queues[0]) == 4 * 3  # four items for each of alice's two clients and bob's
    [batch] = [r for r in answers[0] if r[0] is None]
    assert batch[4] == [0, 2, 3] and batch[6] == 3 * 3  # the one written before is left out
    assert store._statement(one) is store._WRITE_ONE_CHANNEL
    assert store._statement(items) is store._WRITE_CHANNEL_ITEMS
    await close(alice, bob, phone)


async def test_a_batch_of_channel_messages_writes_nothing_off_its_position(
    system: System,
) -> None:
    """Without a position yet the batch is applied in a transaction that starts one;
    a batch whose position moved on is a conflict and leaves no item behind."""
    alice = await ApiClient.create(system.base_url, "alice")
    await alice.join("#r")
    settings = system.settings.model_copy(update={"stream_name": "another-stream"})
    subjects = Subjects(settings.subject_prefix, settings.partitions)
    nc = await nats.connect(settings.nats())
    pool = await db.create_pool(settings.dsn(), size=1)

    def said(text: str) -> MessagePosted:
        return MessagePosted(
            event_id=uuid.uuid4(),
            ts=datetime.now(UTC),
            command="PRIVMSG",
            sender_id=uuid.uuid4(),
            sender="someone",
            to="#r",
            channel="#r",
            body=[text],
        )

    first, late, second = said("first"), said("late"), said("second")

    def delivery(seq: int, event: MessagePosted) -> Delivery:
        return Delivery(seq, subjects.event(event), encode_event(event))

    try:
        projection = DeliveryProjection(pool, nc, settings)
        assert await projection.position(0) == 0  # no position yet for this stream
        woke = await projection.apply(0, 0, [delivery(1, first)])
        assert woke is not None
        await woke()
        assert await projection.position(0) == 1
        with pytest.raises(PositionConflict):  # a replay from before the position
            await projection.apply(0, 0, [delivery(1, late)])
        woke = await projection.apply(0, 1, [delivery(2, second)])
        assert woke is not None
        await woke()
        assert await projection.position(0) == 2
        async with system.db() as conn:
            found = await conn.fetch(
                "SELECT event_id FROM delivery.messages WHERE event_id = ANY($1::uuid[])",
                [first.event_id, late.event_id, second.event_id],
            )
        assert {r["event_id"] for r in found} == {first.event_id, second.event_id}
        items = await alice.receive_until(lambda i: i["body"] == ["second"])
        assert texts(items) == ["first", "second"]
    finally:
        await pool.close()
        await nc.close()
        await alice.close()
