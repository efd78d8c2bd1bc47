from __future__ import annotations

import uuid

import msgspec
import pytest

from libs.events import (
    MemberJoined,
    MessagePosted,
    decode_event,
    dm_target,
    encode_event,
    event_type,
    new_event_id,
    utcnow,
)
from libs.subjects import Subjects, partition_of


def _message(**overrides: object) -> MessagePosted:
    values: dict[str, object] = {
        "event_id": new_event_id(),
        "ts": utcnow(),
        "command": "PRIVMSG",
        "sender_id": uuid.uuid4(),
        "sender": "alice",
        "to": "#General",
        "channel": "#general",
        "body": ["hi"],
        **overrides,
    }
    return MessagePosted(**values)  # type: ignore[arg-type]


def test_events_round_trip_through_the_tagged_union() -> None:
    event = _message(meta={"sig": "x"})
    data = encode_event(event)
    assert msgspec.json.decode(data)["type"] == "message.posted"
    assert decode_event(data) == event
    joined = MemberJoined(
        event_id=new_event_id(),
        ts=utcnow(),
        channel="#a",
        name="#A",
        session_id=uuid.uuid4(),
        nick="bob",
    )
    assert decode_event(encode_event(joined)) == joined
    assert event_type(joined) == "member.joined"


def test_an_older_payload_without_newer_optional_fields_still_decodes() -> None:
    old = {
        "type": "message.posted",
        "event_id": str(uuid.uuid4()),
        "ts": "2026-11-23T10:00:00.123456Z",
        "command": "NOTICE",
        "sender_id": str(uuid.uuid4()),
        "sender": "a",
        "to": "b",
        "peer_id": str(uuid.uuid4()),
    }
    event = decode_event(msgspec.json.encode(old))
    assert isinstance(event, MessagePosted)
    assert (event.params, event.body, event.meta) == ([], [], {})


def test_unknown_or_malformed_events_are_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_event(b'{"type": "no.such.event", "event_id": "x"}')
    with pytest.raises(msgspec.DecodeError):
        decode_event(b"not json")


def test_a_dm_target_is_the_unordered_pair() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert dm_target(a, b) == dm_target(b, a)
    dm = _message(channel=None, peer_id=b, sender_id=a, to="bob")
    reply = _message(channel=None, peer_id=a, sender_id=b, to="alice")
    assert dm.target == reply.target


def test_subjects_partition_by_target_stably() -> None:
    subjects = Subjects("chinwag", 8)
    event = _message()
    partition = partition_of("#general", 8)
    assert subjects.event(event) == f"chinwag.ev.{partition}.message.posted"
    assert partition_of("#general", 8) == partition  # no per-process hash seed
    assert {partition_of(f"#c{n}", 8) for n in range(200)} == set(range(8))
    assert subjects.partition_filter(3) == "chinwag.ev.3.>"


def test_events_beyond_irc_evolve_by_defaults() -> None:
    from libs.events import MessageEdited, ReactionChanged

    old_style = msgspec.json.encode(
        {
            "type": "message.reaction",
            "event_id": str(uuid.uuid4()),
            "ts": "2026-11-23T10:00:00.000000Z",
            "message_id": str(uuid.uuid4()),
            "actor_id": str(uuid.uuid4()),
            "actor": "alice",
            "to": "#a",
            "channel": "#a",
            "emoji": "👍",
        }
    )
    event = decode_event(old_style)
    assert isinstance(event, ReactionChanged) and event.added is True
    assert event.target == "#a"
    edit = MessageEdited(
        event_id=new_event_id(),
        ts=utcnow(),
        message_id=uuid.uuid4(),
        actor_id=uuid.uuid4(),
        actor="bob",
        to="alice",
        peer_id=uuid.uuid4(),
    )
    assert decode_event(encode_event(edit)) == edit
    assert edit.target == dm_target(edit.actor_id, edit.peer_id)  # type: ignore[arg-type]
