from __future__ import annotations

import msgspec

from libs.items import Wake, page_json
from services.gateway.longpoll import KEPT, STALE, WaiterHub


async def test_a_wake_between_the_read_and_the_wait_is_not_lost() -> None:
    hub = WaiterHub()
    waiter = hub.register("c1", after=4)  # registered first ...
    # ... the queue read finds nothing; the wake lands before the wait starts ...
    hub.on_wake_message(msgspec.json.encode(Wake(clients=[("c1", 5)])))
    assert await waiter.wait(0.0)  # ... and the wait returns at once.
    hub.unregister(waiter)
    assert hub.waiting == 0


async def test_a_wake_for_seqs_the_poll_has_seen_or_another_client_does_not_wake_it() -> None:
    hub = WaiterHub()
    waiter = hub.register("c1", after=9)
    hub.wake("c1", 9)
    hub.wake("c2", 100)
    assert not await waiter.wait(0.01)


async def test_closing_answers_parked_and_later_polls() -> None:
    hub = WaiterHub()
    parked = hub.register("c1", after=0)
    hub.close()
    assert await parked.wait(0.0)
    assert await hub.register("c2", after=0).wait(0.0)


async def test_an_undecodable_wake_is_ignored() -> None:
    hub = WaiterHub()
    waiter = hub.register("c1", after=0)
    hub.on_wake_message(b"garbage")  # no error ...
    assert not await waiter.wait(0.01)  # ... and no poll woken


async def test_a_recheck_answers_every_parked_poll_but_not_later_ones() -> None:
    hub = WaiterHub()
    parked = [hub.register("c1", after=3), hub.register("c2", after=0)]
    hub.recheck()
    assert all([await waiter.wait(0.0) for waiter in parked])
    assert not await hub.register("c3", after=0).wait(0.01)


def _carried(clients: list[tuple[str, int]], items: list[bytes], picks: list[list[int]]) -> bytes:
    raw = [msgspec.Raw(item) for item in items]
    return msgspec.json.encode(Wake(clients=clients, items=raw, picks=picks))


async def test_a_wake_that_carries_the_items_leaves_the_poll_its_answer() -> None:
    hub = WaiterHub()
    behind, level, capped = hub.register("c1", 4), hub.register("c1", 5), hub.register("c2", 0, 1)
    items = [b'{"pos":1,"id":"a"}', b'{"pos":2,"id":"b"}', b'{"pos":3,"id":"c"}']
    # c1's queue got items 0 and 2 as seqs 5 and 6; c2's got all three as 1, 2 and 3.
    hub.on_wake_message(_carried([("c1", 6), ("c2", 3)], items, [[0, 2], [0, 1, 2]]))
    assert await behind.wait(0) and await level.wait(0) and await capped.wait(0)
    assert msgspec.json.decode(behind.page or b"") == {
        "messages": [{"seq": 5, "pos": 1, "id": "a"}, {"seq": 6, "pos": 3, "id": "c"}],
        "last_seq": 6,
    }
    assert msgspec.json.decode(level.page or b"") == {
        "messages": [{"seq": 6, "pos": 3, "id": "c"}],
        "last_seq": 6,
    }
    assert msgspec.json.decode(capped.page or b"") == {  # limit=1
        "messages": [{"seq": 1, "pos": 1, "id": "a"}],
        "last_seq": 1,
    }


async def test_a_wake_without_every_missing_item_wakes_the_poll_to_read_the_queue() -> None:
    hub = WaiterHub()
    waiter = hub.register("c1", 3)  # lacks seq 4, which an earlier batch wrote
    hub.on_wake_message(_carried([("c1", 6)], [b'{"pos":1}', b'{"pos":2}'], [[0, 1]]))
    assert await waiter.wait(0)
    assert waiter.page is None


async def test_a_read_teaches_the_tip_and_wakes_raise_it() -> None:
    hub = WaiterHub()
    assert hub.tip("c1") is None  # nothing known: a poll reads
    waiter = hub.register("c1", after=4)
    hub.on_wake_message(msgspec.json.encode(Wake(clients=[("c1", 6)])))  # during the read
    hub.learn(waiter, 5)  # the read found up to seq 5
    hub.unregister(waiter)
    assert hub.tip("c1") == 6
    hub.on_wake_message(msgspec.json.encode(Wake(clients=[("c1", 7), ("c2", 3)])))
    assert hub.tip("c1") == 7
    assert hub.tip("c2") is None  # a wake alone teaches nothing: an earlier one may be late
    hub.on_wake_message(msgspec.json.encode(Wake(clients=[("c1", 5)])))  # out of order
    assert hub.tip("c1") == 7


async def test_whatever_may_lose_a_wake_forgets_tips() -> None:
    hub = WaiterHub()
    for client in ("c1", "c2"):
        hub.learn(hub.register(client, after=1), 1)
    hub.forget("c1")  # its poll timed out
    assert (hub.tip("c1"), hub.tip("c2")) == (None, 1)
    reading = hub.register("c3", after=0)  # a read in flight when the link drops
    hub.forget()
    assert hub.tip("c2") is None
    hub.learn(reading, 0)  # too late: wakes may have been lost since it registered
    assert hub.tip("c3") is None
    hub.learn(hub.register("c2", after=2), 2)
    hub.on_wake_message(msgspec.json.encode(Wake(clients=[], recheck=True)))  # a fanout restarted
    assert hub.tip("c2") is None


async def test_a_recheck_marks_the_polls_it_wakes() -> None:
    hub = WaiterHub()
    parked = hub.register("c1", after=0)
    hub.on_wake_message(msgspec.json.encode(Wake(clients=[], recheck=True)))
    assert await parked.wait(0)
    assert parked.rechecked and parked.woken_at is None


async def test_tips_are_bounded() -> None:
    hub = WaiterHub(max_tips=3)
    for n in range(4):
        hub.learn(hub.register(f"c{n}", after=n), n)
    assert [hub.tip(f"c{n}") for n in range(4)] == [None, None, None, 3]


async def test_a_poll_behind_the_tip_is_answered_from_the_items_wakes_carried() -> None:
    hub = WaiterHub()
    hub.learn(hub.register("c1", after=4), 4)
    items = [b'{"pos":1}', b'{"pos":2}', b'{"pos":3}']
    hub.on_wake_message(_carried([("c1", 6)], items[:2], [[0, 1]]))  # seqs 5 and 6
    hub.on_wake_message(_carried([("c1", 7)], items[2:], [[0]]))  # seq 7
    assert hub.tip("c1") == 7
    assert msgspec.json.decode(hub.kept("c1", 4, 100) or b"") == {
        "messages": [{"seq": 5, "pos": 1}, {"seq": 6, "pos": 2}, {"seq": 7, "pos": 3}],
        "last_seq": 7,
    }
    assert msgspec.json.decode(hub.kept("c1", 5, 1) or b"") == {  # limit=1
        "messages": [{"seq": 6, "pos": 2}],
        "last_seq": 6,
    }
    assert hub.kept("c1", 3, 100) is None  # seq 4 was never carried: read it
    assert hub.kept("c1", 7, 100) is None  # level with the tip: nothing to answer


async def test_kept_items_are_dropped_when_a_wake_leaves_a_gap() -> None:
    hub = WaiterHub()
    hub.learn(hub.register("c1", after=0), 0)
    hub.on_wake_message(_carried([("c1", 1)], [b'{"pos":1}'], [[0]]))
    hub.on_wake_message(msgspec.json.encode(Wake(clients=[("c1", 3)])))  # 2 and 3 not carried
    hub.on_wake_message(_carried([("c1", 4)], [b'{"pos":4}'], [[0]]))
    assert hub.tip("c1") == 4
    assert hub.kept("c1", 0, 100) is None  # seqs 2 and 3 are not kept
    assert msgspec.json.decode(hub.kept("c1", 3, 100) or b"")["last_seq"] == 4


async def test_each_client_keeps_its_newest_items_only() -> None:
    hub = WaiterHub()
    hub.learn(hub.register("c1", after=0), 0)
    for seq in range(1, KEPT + 6):
        hub.on_wake_message(_carried([("c1", seq)], [b'{"pos":%d}' % seq], [[0]]))
    assert hub.kept("c1", 4, 1000) is None
    page = msgspec.json.decode(hub.kept("c1", 5, 1000) or b"")
    assert [i["seq"] for i in page["messages"]] == list(range(6, KEPT + 6))


async def test_a_wake_that_carries_nothing_drops_the_kept_items() -> None:
    hub = WaiterHub()
    hub.learn(hub.register("c1", after=0), 0)
    hub.on_wake_message(_carried([("c1", 2)], [b'{"pos":1}', b'{"pos":2}'], [[0, 1]]))
    assert hub.kept("c1", 0, 2) is not None
    # An edit of item 1 is not carried: a poll for 1 and 2 reads them as they are now.
    hub.on_wake_message(msgspec.json.encode(Wake(clients=[("c1", 3)])))
    assert hub.kept("c1", 0, 2) is None


async def test_after_a_silence_no_tip_is_trusted_until_wakes_come_again() -> None:
    hub = WaiterHub()
    hub.heard_now(100.0)
    hub.learn(hub.register("c1", after=1), 1)
    hub.check(100.0 + STALE / 2)
    assert hub.tip("c1") == 1
    parked = hub.register("c2", after=0)
    hub.check(100.0 + STALE + 1)  # silence: wakes may be lost without a disconnect
    assert hub.tip("c1") is None and await parked.wait(0) and parked.rechecked
    hub.learn(hub.register("c1", after=1), 1)
    assert hub.tip("c1") is None  # not while silent
    again = hub.register("c3", after=0)
    hub.heard_now(200.0)  # heard again: what the silence lost is read
    assert await again.wait(0) and again.rechecked
    hub.learn(hub.register("c1", after=1), 1)
    assert hub.tip("c1") == 1


async def test_a_disconnect_trusts_no_tip_until_wakes_come_again() -> None:
    hub = WaiterHub()
    hub.learn(hub.register("c1", after=1), 1)
    hub.lost()
    assert hub.tip("c1") is None
    hub.learn(hub.register("c1", after=1), 1)  # a read while the link is down
    assert hub.tip("c1") is None


async def test_a_batch_that_rewrote_items_drops_every_client_s_kept_items() -> None:
    hub = WaiterHub()
    for client in ("c1", "c2"):
        hub.learn(hub.register(client, after=0), 0)
    hub.on_wake_message(_carried([("c1", 1), ("c2", 1)], [b'{"pos":1}'], [[0], [0]]))
    assert hub.kept("c2", 0, 10) is not None
    # A delete of that item reached c1 only (c2 has left the channel since):
    hub.on_wake_message(msgspec.json.encode(Wake(clients=[("c1", 2)], rewrote=True)))
    assert hub.kept("c1", 0, 10) is None
    assert hub.kept("c2", 0, 10) is None  # c2 reads the item as it is now
    assert hub.tip("c2") == 1
    # Items carried after the rewrite are as written: kept and answered from again.
    hub.on_wake_message(_carried([("c2", 2)], [b'{"pos":2}'], [[0]]))
    assert hub.kept("c2", 1, 10) == page_json([b'{"pos":2}'], 2, 1)
    assert hub.kept("c2", 0, 10) is None  # the item before the rewrite is not


def _numbered(origin: str, number: int, clients: list[tuple[str, int]] | None = None) -> bytes:
    return msgspec.json.encode(Wake(clients=clients or [], origin=origin, number=number))


async def test_a_gap_in_a_worker_s_wakes_forgets_tips_and_rechecks_parked_polls() -> None:
    hub = WaiterHub()
    hub.on_wake_message(_numbered("w1", 1))  # its worker's first: nothing missed
    hub.learn(hub.register("c1", after=1), 1)
    hub.on_wake_message(_numbered("w1", 2, [("c1", 2)]))
    assert hub.tip("c1") == 2  # in order: the tip holds, and rises
    parked = hub.register("c2", after=0)
    woken = hub.register("c1", after=2)
    hub.on_wake_message(_numbered("w1", 4, [("c1", 4)]))  # number 3 was lost on the way
    assert hub.tip("c1") is None
    assert await parked.wait(0) and parked.rechecked and parked.woken_at is None
    assert await woken.wait(0) and woken.woken_at is not None  # the wake itself still wakes


async def test_a_worker_first_heard_past_its_first_wake_may_have_lost_some() -> None:
    hub = WaiterHub()
    hub.learn(hub.register("c1", after=1), 1)
    hub.on_wake_message(_numbered("w1", 1))
    assert hub.tip("c1") == 1
    hub.on_wake_message(_numbered("w2", 7))  # a gateway started late, or its link was cut
    assert hub.tip("c1") is None


async def test_one_worker_s_silence_is_a_loss_though_others_are_heard() -> None:
    hub = WaiterHub()
    hub.on_wake_message(_numbered("w1", 1), now=100.0)
    hub.on_wake_message(_numbered("w2", 1), now=100.0)
    hub.learn(hub.register("c1", after=1), 1)
    hub.on_wake_message(_numbered("w2", 2), now=99.5 + STALE)
    hub.check(99.5 + STALE)
    assert hub.tip("c1") == 1  # w1 silent for less than STALE yet
    parked = hub.register("c2", after=0)
    hub.on_wake_message(_numbered("w2", 3), now=101.0 + STALE)
    hub.check(101.5 + STALE)  # w1 silent past STALE while w2 is heard
    assert not hub.stale and hub.tip("c1") is None
    assert await parked.wait(0) and parked.rechecked
    hub.learn(hub.register("c1", after=1), 1)
    assert hub.tip("c1") == 1  # w2's wakes are heard: tips are trusted again
    hub.on_wake_message(_numbered("w1", 9), now=102.0 + STALE)  # w1 back: what it sent is lost
    assert hub.tip("c1") is None
