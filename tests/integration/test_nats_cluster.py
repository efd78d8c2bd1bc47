"""chinwag on a real three-node NATS cluster with a replicated (R3) stream.

The stream's leader node is SIGKILLed in the middle of a send storm. Clients
retry refused or failed sends with the same idempotency key, as the API asks;
every accepted send must then reach the reader exactly once, in order.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import nats.errors

from libs import bus
from libs.embedded import EmbeddedNatsCluster
from libs.settings import Settings
from tests import harness
from tests.harness import ApiClient, open_system, texts, until

SENDERS = 4
EACH = 40
KILL_AFTER = 50  # accepted sends before the leader dies


async def _stream_ready(settings: Settings) -> None:
    """Create the R3 stream once the cluster has elected its JetStream leader."""
    nc = await bus.connect(settings.nats(), "test-bootstrap")
    try:

        async def created() -> bool:
            try:
                await bus.ensure_stream(nc.jetstream(timeout=2), settings)
            except (nats.errors.Error, TimeoutError):
                return False
            return True

        await until(created, 30, "JetStream to elect a leader", every=0.2)
    finally:
        await nc.close()


async def _send(client: ApiClient, text: str, key: str, retries: list[str]) -> None:
    """Send until accepted, retrying 5xx, 409 in-flight and broken connections."""
    end = time.monotonic() + 60
    while True:
        try:
            response = await client.command("PRIVMSG", key=key, to="#storm", body=[text])
            if response.status_code == 200:
                return
            assert response.status_code in (409, 503), response.text
            retries.append(f"{response.status_code} {text}")
        except httpx.TransportError as error:
            retries.append(f"{type(error).__name__} {text}")
        assert time.monotonic() < end, f"{text} never accepted: {retries[-5:]}"
        await asyncio.sleep(0.2)  # a client's back-off before its retry


async def test_killing_the_stream_leader_mid_storm_loses_no_accepted_send(
    database_url: str, tmp_path: Path
) -> None:
    async with AsyncExitStack() as stack:
        cluster = stack.enter_context(EmbeddedNatsCluster(tmp_path / "nats"))
        settings = harness.test_settings(
            cluster.url, database_url, stream_replicas=3, fanout_lease_ttl=2.0, request_timeout=3.0
        )
        await _stream_ready(settings)
        system = await open_system(stack, settings)
        nc = await bus.connect(settings.nats(), "test-observer")
        stack.push_async_callback(nc.close)
        js = nc.jetstream(timeout=2)
        info = await js.stream_info(settings.stream_name)
        assert info.config.num_replicas == 3 and info.cluster is not None
        assert len(info.cluster.replicas or []) == 2

        reader = await ApiClient.create(system.base_url, "reader")
        senders = [await ApiClient.create(system.base_url, f"s{i}") for i in range(SENDERS)]
        await reader.join("#storm")
        for sender in senders:
            await sender.join("#storm")
        await reader.receive(1 + SENDERS)  # the JOINs

        accepted: list[str] = []
        retries: list[str] = []
        killed: dict[str, Any] = {}

        async def storm(sender: ApiClient) -> None:
            for k in range(EACH):
                text = f"{sender.nick}:{k}"
                await _send(sender, text, f"{sender.nick}-{k}", retries)
                accepted.append(text)

        async def kill_leader() -> None:
            await until(_count(accepted, KILL_AFTER), 60, f"{KILL_AFTER} accepted sends")
            leader = (await js.stream_info(settings.stream_name)).cluster.leader
            cluster.node(leader).kill()
            killed["leader"] = leader

        await asyncio.gather(kill_leader(), *(storm(s) for s in senders))
        assert len(accepted) == SENDERS * EACH
        assert "leader" in killed  # it died with sends still to come

        got = await reader.receive(SENDERS * EACH, deadline=90)
        received = texts(got)
        assert sorted(received) == sorted(accepted), "lost or doubled"
        for sender in senders:  # one target: each sender's messages in the order it sent
            assert [t for t in received if t.startswith(f"{sender.nick}:")] == [
                f"{sender.nick}:{k}" for k in range(EACH)
            ]
        await reader.nothing_more()

        async def new_leader() -> bool:
            try:
                found = (await js.stream_info(settings.stream_name)).cluster.leader
            except (nats.errors.Error, TimeoutError):
                return False
            return found not in (None, killed["leader"])

        await until(new_leader, 30, "a new stream leader")
        for client in (reader, *senders):
            await client.close()


def _count(items: list[str], n: int) -> Any:
    async def reached() -> bool:
        return len(items) >= n

    return reached
