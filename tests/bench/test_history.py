"""The fault runs' checker, on hand-made histories: one clean, and each kind of fault."""

from __future__ import annotations

import msgspec

from services.bench.checks import (
    HistoryReceiver,
    Outcome,
    Send,
    Verdict,
    check_history,
    mark,
    send_key,
)
from services.bench.client import Item

RUN = "f1"
ROOM = "#room"
DM = "alice|bob"
RECIPIENTS = {ROOM: ["alice", "bob", "bob2"], DM: ["alice", "bob", "bob2"]}


def item(seq: int, sender: int, n: int, to: str = ROOM, pos: int = 0, id_: str = "") -> Item:
    who = ("alice", "bob")[sender]
    return Item(
        seq=seq,
        id=id_ or f"ev-{sender}-{n}",
        command="PRIVMSG",
        meta=mark(RUN, sender, n, 0.0),
        to=to,
        from_=who,
        pos=pos or n,
    )


def send(sender: int, n: int, outcome: Outcome = "acked", target: str = ROOM) -> Send:
    return Send(send_key(sender, n), target, outcome)


def receivers(pages: dict[str, list[Item]]) -> list[HistoryReceiver]:
    found = []
    for name, items in pages.items():
        receiver = HistoryReceiver(name, RUN, seen=0)
        receiver.accept(items, at=1.0)
        found.append(receiver)
    return found


def check(pages: dict[str, list[Item]], sends: list[Send]) -> Verdict:
    return check_history(receivers(pages), sends, RECIPIENTS)


CLEAN = [item(1, 0, 1), item(2, 0, 2), item(3, 1, 1, to="alice", pos=1)]
CLEAN_SENDS = [send(0, 1), send(0, 2), send(1, 1, target=DM)]


def test_a_clean_history_passes_with_unknown_sends_absent_or_everywhere() -> None:
    pages = {name: [*CLEAN, item(4, 0, 4)] for name in RECIPIENTS[ROOM]}
    sends = [*CLEAN_SENDS, send(0, 3, "unknown"), send(0, 4, "unknown"), send(0, 5, "failed")]
    result = check(pages, sends)
    assert result.ok, result.problems
    assert (result.expected, result.delivered, result.lost) == (3, 12, 0)


def test_an_acknowledged_send_missing_from_one_client_is_lost() -> None:
    pages = {name: list(CLEAN) for name in RECIPIENTS[ROOM]}
    pages["bob2"] = [CLEAN[0], msgspec.structs.replace(CLEAN[2], seq=2)]
    result = check(pages, CLEAN_SENDS)
    assert not result.ok
    assert result.lost == 1
    assert any("bob2: 1 lost" in p for p in result.problems)


def test_a_send_delivered_twice_under_two_event_ids_is_a_duplicate() -> None:
    pages = {name: list(CLEAN) for name in RECIPIENTS[ROOM]}
    pages["bob"] = [*CLEAN, item(4, 0, 2, pos=3, id_="another-event-id")]
    result = check(pages, CLEAN_SENDS)
    assert not result.ok
    assert result.duplicated == 1


def test_an_unknown_send_delivered_twice_fails() -> None:
    pages = {name: [*CLEAN, item(4, 0, 3)] for name in RECIPIENTS[ROOM]}
    pages["alice"].append(item(5, 0, 3, pos=4, id_="again"))
    result = check(pages, [*CLEAN_SENDS, send(0, 3, "unknown")])
    assert not result.ok
    assert result.duplicated == 1


def test_an_unknown_send_that_reached_only_some_recipients_fails() -> None:
    pages = {name: list(CLEAN) for name in RECIPIENTS[ROOM]}
    pages["bob"].append(item(4, 0, 3))
    result = check(pages, [*CLEAN_SENDS, send(0, 3, "unknown")])
    assert not result.ok
    assert any("reached only some recipients" in p for p in result.problems)


def test_a_failed_send_or_one_never_made_must_not_appear() -> None:
    for sends in ([*CLEAN_SENDS, send(0, 3, "failed")], CLEAN_SENDS):
        pages = {name: [*CLEAN, item(4, 0, 3)] for name in RECIPIENTS[ROOM]}
        result = check(pages, sends)
        assert not result.ok
        assert any("never sent to it" in p for p in result.problems)


def test_a_send_to_another_target_must_not_reach_a_non_recipient() -> None:
    recipients = {ROOM: ["alice", "bob"], DM: ["alice", "bob"], "#other": ["alice"]}
    other = item(4, 0, 3, to="#other", pos=1)
    pages = {"alice": [*CLEAN, other], "bob": [*CLEAN, other]}
    sends = [*CLEAN_SENDS, send(0, 3, target="#other")]
    result = check_history(receivers(pages), sends, recipients)
    assert not result.ok
    assert result.lost == 0
    assert any("bob: 1 never sent to it" in p for p in result.problems)


def test_a_gap_in_seq_fails() -> None:
    pages = {name: list(CLEAN) for name in RECIPIENTS[ROOM]}
    pages["bob"] = [CLEAN[0], item(3, 0, 2), item(4, 1, 1, to="alice", pos=1)]
    result = check(pages, CLEAN_SENDS)
    assert not result.ok
    assert result.out_of_order == 1


def test_one_senders_sends_to_a_target_out_of_order_fail() -> None:
    pages = {name: list(CLEAN) for name in RECIPIENTS[ROOM]}
    pages["bob"] = [item(1, 0, 2, pos=1), item(2, 0, 1, pos=2), CLEAN[2]]
    result = check(pages, CLEAN_SENDS)
    assert not result.ok
    assert any("sender 0 message 1 after 2" in p for p in result.problems)


def test_a_targets_items_out_of_their_history_order_fail() -> None:
    # Two senders: each one's own order holds, but bob sees the room's history
    # (pos) in another order than the others do.
    sends = [send(0, 1), send(1, 1)]
    first, second = item(1, 0, 1, pos=1), item(2, 1, 1, pos=2)
    pages = {"alice": [first, second], "bob2": [first, second]}
    pages["bob"] = [item(1, 1, 1, pos=2), item(2, 0, 1, pos=1)]
    result = check(pages, sends)
    assert not result.ok
    assert any(f"{ROOM}: pos 1 after 2" in p for p in result.problems)


def test_sends_on_different_targets_may_interleave_in_any_order() -> None:
    sends = [send(0, 1), send(0, 2, target=DM)]
    dm = item(1, 0, 2, to="bob", pos=1)
    room = item(2, 0, 1, pos=1)
    pages = {name: [dm, room] for name in RECIPIENTS[ROOM]}
    result = check(pages, sends)
    assert result.ok, result.problems


def test_an_acknowledged_send_to_a_target_nobody_is_checked_for_fails() -> None:
    pages = {name: CLEAN for name in RECIPIENTS[ROOM]}
    result = check(pages, [*CLEAN_SENDS, send(0, 3, target="#elsewhere")])
    assert not result.ok
    assert any("#elsewhere" in problem for problem in result.problems)
    assert check(pages, [*CLEAN_SENDS, send(0, 3, "failed", target="#elsewhere")]).ok
