from __future__ import annotations

import msgspec

from libs.items import Wake
from services.gateway.longpoll import WaiterHub


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
