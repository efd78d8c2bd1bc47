from __future__ import annotations

import uuid

import msgspec

from services.gateway.ephemeral import Broadcast, EphemeralHub, Notice, encode
from services.gateway.longpoll import WaiterHub

ALICE, BOB = uuid.uuid4(), uuid.uuid4()


def _notice(state: str = "active", ttl: float = 6.0) -> Notice:
    return Notice(type="typing", from_="bob", to="#a", state=state, ts="t", expires_in=ttl)


def test_a_notice_wakes_a_parked_poll_of_the_session_and_is_collected_once() -> None:
    hub, waiters = EphemeralHub(), WaiterHub()
    phone, laptop, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    parked = waiters.register(str(phone), 0)
    hub.attach(phone, ALICE, parked)
    hub.attach(laptop, ALICE, waiters.register(str(laptop), 0))
    hub.attach(other, BOB, waiters.register(str(other), 0))
    hub.deliver(Broadcast(sessions=[ALICE], notice=_notice()))
    assert parked.event.is_set()
    (notice,) = hub.drain(phone)
    assert notice.from_ == "bob" and 0 < notice.expires_in <= 6
    assert hub.drain(phone) == []
    assert len(hub.drain(laptop)) == 1  # every client of the session gets its own copy
    assert hub.drain(other) == []


def test_a_notice_kept_between_polls_answers_the_next_poll_at_once() -> None:
    hub, waiters = EphemeralHub(), WaiterHub()
    client = uuid.uuid4()
    first = waiters.register(str(client), 0)
    hub.attach(client, ALICE, first)
    waiters.unregister(first)
    hub.deliver(Broadcast(sessions=[ALICE], notice=_notice()))
    second = waiters.register(str(client), 0)
    hub.attach(client, ALICE, second)
    assert second.event.is_set()


def test_notices_expire_on_their_own_and_unknown_clients_get_nothing() -> None:
    hub, waiters = EphemeralHub(), WaiterHub()
    client = uuid.uuid4()
    hub.attach(client, ALICE, waiters.register(str(client), 0))
    hub.deliver(Broadcast(sessions=[ALICE], notice=_notice(ttl=0.0)))
    assert hub.drain(client) == []
    hub.deliver(Broadcast(sessions=[uuid.uuid4()], notice=_notice()))
    assert hub.drain(uuid.uuid4()) == []
    hub.on_message(b"not json")  # ignored
    wire = encode(Broadcast(sessions=[ALICE], notice=_notice()))
    assert msgspec.json.decode(wire)["notice"]["from"] == "bob"
