"""Poison events are parked in delivery.poison, never silently dropped, and never block."""

from __future__ import annotations

from libs import bus
from libs.events import MessagePosted, new_event_id, utcnow
from libs.irc import fold
from libs.subjects import Subjects, partition_of
from tests.harness import ApiClient, System, texts


async def test_bad_events_are_parked_and_the_partition_moves_on(system: System) -> None:
    await system.stop("fanout")
    system.start("fanout", system.settings.model_copy(update={"max_deliver_attempts": 2}))
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    await alice.join("#p")
    await bob.join("#p")
    await bob.receive(1)

    settings = system.settings
    subjects = Subjects(settings.subject_prefix, settings.partitions)
    partition = partition_of(fold("#p"), settings.partitions)
    # One that cannot be decoded, and one that decodes but can never be stored
    # (PostgreSQL's jsonb refuses NUL; the gateway would have refused it).
    unstorable = MessagePosted(
        event_id=new_event_id(),
        ts=utcnow(),
        command="PRIVMSG",
        sender_id=await _session_id(system, "alice"),
        sender="alice",
        to="#p",
        channel=fold("#p"),
        body=["never stored"],
        meta={"k": "\x00"},
    )
    nc = await bus.connect(settings.nats(), "test")
    try:
        js = nc.jetstream()
        subject = f"{settings.subject_prefix}.ev.{partition}.message.posted"
        await bus.publish_raw(js, subject, b"{not an event", "garbage-1")
        await bus.publish_event(js, subjects, unstorable)
    finally:
        await nc.close()
    await alice.say("#p", "still flowing")

    items = await bob.receive_until(lambda i: i["body"] == ["still flowing"], deadline=30)
    assert texts(items) == ["still flowing"]
    async with system.db() as conn:
        parked = await conn.fetch(
            "SELECT subject, payload, error FROM delivery.poison ORDER BY stream_seq"
        )
    assert len(parked) == 2
    assert bytes(parked[0]["payload"]) == b"{not an event"
    assert b"never stored" in bytes(parked[1]["payload"])
    assert "CharacterNotInRepertoire" in parked[1]["error"] or "Unicode" in parked[1]["error"]
    assert all(p["subject"] == subject for p in parked)
    await alice.close()
    await bob.close()


async def _session_id(system: System, nick: str) -> object:
    async with system.db() as conn:
        return await conn.fetchval("SELECT id FROM identity.sessions WHERE nick = $1", nick)
