from __future__ import annotations

import uuid

from libs import db
from libs.events import (
    KeyAnnounced,
    MessageDeleted,
    PinChanged,
    ReactionChanged,
    ReadMarked,
    SessionQuit,
    dm_target,
    user_target,
    utcnow,
)
from services.fanout.extras import _State, project, reply_parent
from services.fanout.handlers import segments, stored_item

ALICE, BOB = uuid.uuid4(), uuid.uuid4()
LINE = uuid.uuid4()


def _react(
    added: bool = True, who: uuid.UUID = ALICE, channel: str | None = "#a"
) -> ReactionChanged:
    return ReactionChanged(
        event_id=uuid.uuid4(),
        ts=utcnow(),
        message_id=LINE,
        actor_id=who,
        actor="alice",
        to="#A" if channel else "bob",
        channel=channel,
        peer_id=None if channel else BOB,
        emoji="👍",
        added=added,
    )


def test_changes_are_items_of_the_side_target_on_the_messages_partition() -> None:
    event = _react()
    item = stored_item(event)
    assert item is not None
    assert (item.command, item.target, item.params) == ("REACT", "x:#a", [str(LINE), "👍"])
    assert item.channel == "#a" and event.target == "#a"
    dm = stored_item(_react(False, channel=None))
    assert dm is not None
    assert (dm.command, dm.target, dm.sessions) == (
        "UNREACT",
        "x:" + dm_target(ALICE, BOB),
        (ALICE, BOB),
    )
    (segment,) = segments([event, _react(False)])
    assert [i.command for i in segment.items] == ["REACT", "UNREACT"]


def test_markers_and_keys_reach_the_session_and_keys_its_channels() -> None:
    mark = ReadMarked(
        event_id=uuid.uuid4(),
        ts=utcnow(),
        session_id=ALICE,
        nick="alice",
        conversation="#a",
        to="#A",
        pos=7,
    )
    item = stored_item(mark)
    assert item is not None
    assert (item.command, item.params, item.sessions, item.target) == (
        "MARKREAD",
        ["7"],
        (ALICE,),
        user_target(ALICE),
    )
    key = KeyAnnounced(
        event_id=uuid.uuid4(),
        ts=utcnow(),
        session_id=ALICE,
        nick="alice",
        alg="ed25519",
        key="k",
        channels=["#a"],
    )
    item = stored_item(key)
    assert item is not None
    assert (item.command, item.body, item.channels) == (
        "PUBKEY",
        {"alg": "ed25519", "key": "k"},
        ("#a",),
    )


def test_changes_that_change_nothing_are_not_admitted() -> None:
    state = _State()
    assert state.admits(_react())
    assert not state.admits(_react())  # already there
    assert state.admits(_react(who=BOB))
    assert state.admits(_react(False))
    assert not state.admits(_react(False))  # already gone
    for kind in (PinChanged, MessageDeleted):  # the pin first: a deleted line takes none
        change = kind(
            event_id=uuid.uuid4(),
            ts=utcnow(),
            message_id=LINE,
            actor_id=ALICE,
            actor="alice",
            to="#A",
            channel="#a",
        )
        assert state.admits(change) and not state.admits(change), kind
    assert not state.admits(_react(who=ALICE))  # a deleted message takes no reactions


def test_reply_parent_is_read_from_meta() -> None:
    assert reply_parent({"reply_to": str(LINE)}) == LINE
    assert reply_parent({"reply_to": "nope"}) is None
    assert reply_parent({"reply_to": 5}) is None
    assert reply_parent({}) is None


def _mark(session: uuid.UUID, conversation: str, pos: int) -> ReadMarked:
    return ReadMarked(
        event_id=uuid.uuid4(),
        ts=utcnow(),
        session_id=session,
        nick="alice",
        conversation=conversation,
        to=conversation,
        pos=pos,
    )


async def test_a_batch_of_markers_keeps_the_last_of_each_and_a_quit_ends_those_before_it(
    database_url: str,
) -> None:
    quit_ = SessionQuit(event_id=uuid.uuid4(), ts=utcnow(), session_id=ALICE, nick="alice")
    batch = [
        _mark(ALICE, "#a", 3),
        _mark(ALICE, "#a", 5),
        _mark(BOB, "#a", 2),
        quit_,
        _mark(BOB, "#a", 4),
        _mark(BOB, "#b", 1),
        _mark(BOB, "#a", 6),
    ]
    pool = await db.create_pool(database_url, 2)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await project(conn, batch)
        rows = await pool.fetch("SELECT session_id, target, pos FROM delivery.read_markers")
    finally:
        await pool.close()
    assert sorted((r["session_id"] == BOB, r["target"], r["pos"]) for r in rows) == [
        (True, "#a", 6),
        (True, "#b", 1),
    ]
