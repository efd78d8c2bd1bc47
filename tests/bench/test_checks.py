from __future__ import annotations

import pytest

from services.bench.checks import END, Receiver, mark, verdict
from services.bench.client import Item

RUN = "r1"


def item(seq: int, id_: str, sender: int, n: int, run: str = RUN) -> Item:
    return Item(seq=seq, id=id_, command="PRIVMSG", meta=mark(run, sender, n, 10.0))


def test_a_clean_run_passes_and_measures_from_the_intended_time() -> None:
    receiver = Receiver("bob", RUN, seen=2)
    receiver.accept([Item(seq=3, id="j", command="JOIN")], at=10.5)
    receiver.accept([item(4, "a", 0, 1), item(5, "b", 1, 1), item(6, "c", 0, 2)], at=10.25)
    receiver.accept([item(7, "end", 0, END)], at=11.0)
    result = verdict([receiver], {"a", "b", "c", "end"})
    assert result.ok, result.problems
    assert (result.delivered, receiver.other, receiver.ended) == (3, 1, True)
    assert receiver.latencies == [0.25, 0.25, 0.25]


@pytest.mark.parametrize(
    ("items", "count"),
    [
        ([item(1, "a", 0, 1), item(3, "b", 0, 2)], "out_of_order"),  # a gap in seq
        ([item(1, "a", 0, 1), item(2, "a", 0, 1)], "duplicated"),
        ([item(1, "b", 0, 2), item(2, "a", 0, 1)], "out_of_order"),  # a sender's order
    ],
    ids=["gap", "duplicate", "sender-order"],
)
def test_a_gap_a_duplicate_or_a_sender_out_of_order_fails(items: list[Item], count: str) -> None:
    receiver = Receiver("bob", RUN, seen=0)
    receiver.accept(items, at=11.0)
    result = verdict([receiver], {i.id for i in items})
    assert not result.ok
    assert getattr(result, count) == 1


def test_a_lost_message_and_one_never_accepted_fail() -> None:
    receiver = Receiver("bob", RUN, seen=0)
    receiver.accept([item(1, "a", 0, 1), item(2, "x", 1, 1)], at=11.0)
    result = verdict([receiver], {"a", "b"})
    assert not result.ok
    assert result.lost == 1
    assert any("never accepted" in p for p in result.problems)


def test_an_item_of_another_run_or_after_the_end_fails() -> None:
    receiver = Receiver("bob", RUN, seen=0)
    receiver.accept([item(1, "end", 0, END), item(2, "a", 0, 1)], at=11.0)
    receiver.accept([item(3, "old", 0, 1, run="r0")], at=11.0)
    result = verdict([receiver], {"end", "a"})
    assert not result.ok
    assert result.out_of_order == 2


def test_problems_found_elsewhere_fail_the_verdict() -> None:
    assert not verdict([], set(), ["a poll failed"]).ok
