"""Request/reply: stopping a service answers the requests it has already taken."""

from __future__ import annotations

import asyncio
import uuid

import msgspec

from libs import bus, rpc
from tests.harness import until
from tests.infra import Infra


class Ask(msgspec.Struct):
    text: str


async def test_stopping_finishes_and_answers_a_request_in_flight(infra: Infra) -> None:
    prefix = f"r{uuid.uuid4().hex[:8]}"
    taken, release = asyncio.Event(), asyncio.Event()

    async def slow(ask: Ask) -> str:
        taken.set()
        await release.wait()  # mid-transaction, as it were
        return ask.text.upper()

    server_nc = await bus.connect(infra.nats_url, "server")
    client_nc = await bus.connect(infra.nats_url, "client")
    try:
        server = await rpc.serve(server_nc, "echo", "0.1.0", prefix, {"echo": (Ask, slow)})
        await server_nc.flush()  # the server has its subscriptions before the request is sent
        call = asyncio.create_task(rpc.call(client_nc, f"{prefix}.echo", Ask("hi"), str, 10))
        await asyncio.wait_for(taken.wait(), 10)
        stopping = asyncio.create_task(server.stop())
        await until(lambda: _done(server), 5, "the endpoints to stop listening")
        assert not stopping.done()  # it waits for the request it holds
        release.set()
        await asyncio.wait_for(stopping, 10)
        assert await call == "HI"
    finally:
        await server_nc.close()
        await client_nc.close()


async def _done(server: rpc.Server) -> bool:
    return bool(server.service.stopped.is_set())
