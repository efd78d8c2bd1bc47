"""A gateway cut off from NATS misses wakes; once the link is back, parked polls read again."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx

from libs.embedded import free_port
from services.bench.proxy import Proxy
from tests.harness import ApiClient, System, until

WAITING = "chinwag_gateway_longpolls_waiting"


async def _waiting(http: httpx.AsyncClient) -> float:
    for line in (await http.get("/metrics/")).text.splitlines():
        if line.startswith(WAITING + " "):
            return float(line.split()[1])
    return 0.0


async def test_a_poll_parked_while_the_gateway_was_cut_off_is_answered_once_it_is_back(
    system: System,
) -> None:
    nats = urlsplit(system.settings.nats())
    proxy = Proxy(nats.hostname or "127.0.0.1", nats.port or 4222)
    await proxy.open()
    port = free_port()
    system.start(
        "gateway-cut",
        system.settings.model_copy(update={"nats_url": proxy.url(), "http_port": port}),
    )
    cut_off = f"http://127.0.0.1:{port}"
    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    bob_via_cut = ApiClient(cut_off, bob.token, "bob", bob.session_id, bob.client_id)
    try:
        async with httpx.AsyncClient(base_url=cut_off) as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await until(ready, 20, "the second gateway ready")
            await proxy.cut()
            poll = asyncio.create_task(bob_via_cut.poll(timeout=30))

            async def parked() -> bool:
                return await _waiting(http) >= 1

            await until(parked, 10, "bob's poll parked")
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
