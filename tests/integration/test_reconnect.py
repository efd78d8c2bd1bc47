"""A gateway cut off from NATS misses wakes; once the link is back, parked polls read again."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from services.bench.proxy import Proxy
from tests.harness import ApiClient, System, polls_waiting, until_parked


async def test_a_poll_parked_while_the_gateway_was_cut_off_is_answered_once_it_is_back(
    system: System,
) -> None:
    nats = urlsplit(system.settings.nats())
    proxy = Proxy(nats.hostname or "127.0.0.1", nats.port or 4222)
    await proxy.open()
    cut_off = await system.start_gateway("gateway-cut", nats_url=proxy.url())
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    bob_via_cut = ApiClient(cut_off, bob.token, "bob", bob.session_id, bob.client_id)
    try:
        await proxy.cut()
        waiting = polls_waiting()
        poll = asyncio.create_task(bob_via_cut.poll(timeout=30))
        await until_parked(waiting, "bob's poll parked")
        # Fanout's wake for this DM is published while the gateway holding the poll
        # is cut off from NATS: it never arrives there.
        sent = await alice.say("bob", "while you were away")
        await alice.receive(1)  # committed: alice's own copy is in the same transaction
        assert not poll.done()
        await proxy.open()
        page = await asyncio.wait_for(poll, 20)  # not the 30 s of the poll's timeout
        assert [item["id"] for item in page["messages"]] == [sent["id"]]
    finally:
        await proxy.close()
        await system.stop("gateway-cut")
        for client in (alice, bob, bob_via_cut):
            await client.close()
