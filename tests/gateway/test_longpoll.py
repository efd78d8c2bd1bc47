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


def test_an_undecodable_wake_is_ignored() -> None:
    WaiterHub().on_wake_message(b"garbage")


async def test_a_recheck_answers_every_parked_poll_but_not_later_ones() -> None:
    hub = WaiterHub()
    parked = [hub.register("c1", after=3), hub.register("c2", after=0)]
    hub.recheck()
    assert all([await waiter.wait(0.0) for waiter in parked])
    assert not await hub.register("c3", after=0).wait(0.01)
