from __future__ import annotations

import uuid

from libs.events import MemberJoined, MemberParted, MessagePosted, SessionCreated, utcnow
from services.fanout.handlers import Join, Leave, segments, stored_item

ALICE, BOB = uuid.uuid4(), uuid.uuid4()


def _msg(text: str) -> MessagePosted:
    return MessagePosted(
        event_id=uuid.uuid4(),
        ts=utcnow(),
        command="PRIVMSG",
        sender_id=ALICE,
        sender="alice",
        to="#a",
        channel="#a",
        body=[text],
    )


def _join(who: uuid.UUID) -> MemberJoined:
    return MemberJoined(
        event_id=uuid.uuid4(), ts=utcnow(), channel="#a", name="#A", session_id=who, nick="n"
    )


def _part(who: uuid.UUID, kicked_by: str | None = None) -> MemberParted:
    return MemberParted(
        event_id=uuid.uuid4(),
        ts=utcnow(),
        channel="#a",
        name="#A",
        session_id=who,
        nick="n",
        reason=["bye"],
        kicked_by=kicked_by,
    )


def test_a_run_of_messages_is_one_segment() -> None:
    result = segments([_msg("1"), _msg("2"), _msg("3")])
    assert len(result) == 1
    assert [i.body for i in result[0].items] == [["1"], ["2"], ["3"]]


def test_a_join_takes_effect_before_its_item_and_what_follows() -> None:
    result = segments([_msg("before"), _join(BOB), _msg("after")])
    assert [(s.before, [i.command for i in s.items]) for s in result] == [
        ([], ["PRIVMSG"]),
        ([Join("#a", BOB)], ["JOIN", "PRIVMSG"]),
    ]


def test_a_part_takes_effect_after_its_own_item() -> None:
    result = segments([_msg("before"), _part(BOB), _msg("after")])
    assert [[i.command for i in s.items] for s in result] == [
        ["PRIVMSG", "PART"],
        ["PRIVMSG"],
    ]
    assert result[0].after == [Leave("#a", BOB)]
    assert result[1].before == [] and result[1].after == []


def test_kick_items_name_the_kicker_and_the_kicked() -> None:
    item = stored_item(_part(BOB, kicked_by="alice"))
    assert item is not None
    assert (item.command, item.sender, item.params, item.body) == ("KICK", "alice", ["n"], ["bye"])


def test_events_that_deliver_nothing_are_left_out() -> None:
    created = SessionCreated(event_id=uuid.uuid4(), ts=utcnow(), session_id=ALICE, nick="alice")
    assert stored_item(created) is None
    assert segments([created]) == []
