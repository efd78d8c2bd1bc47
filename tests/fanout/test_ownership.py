"""Partition ownership between fanout workers, on real NATS key-value, ticked by hand.

The consumers are stand-ins that record which worker runs which partition,
so every test can check the one property that matters at every step: no
partition is consumed by two workers at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NATS

from libs import bus
from libs.leases import Holder, Leases, bucket_name
from services.fanout.ownership import Ownership
from tests.harness import until
from tests.infra import Infra

PARTITIONS = 4
TTL = 1.0


@pytest.fixture
async def nc(infra: Infra) -> AsyncIterator[NATS]:
    client = await bus.connect(infra.nats_url, "test-ownership")
    yield client
    await client.close()


class Cluster:
    """Workers sharing one bucket; ``running`` maps partition → the workers consuming it."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self.bucket = bucket_name(f"T{uuid.uuid4().hex[:10]}", "fanout")
        self.running: dict[int, set[str]] = {p: set() for p in range(PARTITIONS)}

    async def worker(
        self, name: str, preferred: list[int], clock: list[float] | None = None
    ) -> Ownership:
        me = Holder(name, uuid.uuid4().hex)
        leases = await Leases.open(self.nc.jetstream(), self.bucket, TTL, 1, me)

        async def consume(partition: int, stop: asyncio.Event) -> None:
            self.running[partition].add(me.incarnation)
            try:
                await stop.wait()
            finally:
                self.running[partition].discard(me.incarnation)

        if clock is None:
            return Ownership(leases, preferred, PARTITIONS, TTL, consume)
        return Ownership(leases, preferred, PARTITIONS, TTL, consume, clock=lambda: clock[0])

    def check(self) -> None:
        doubled = {p: w for p, w in self.running.items() if len(w) > 1}
        assert not doubled, f"partitions consumed twice: {doubled}"


async def _tick(cluster: Cluster, *workers: Ownership, first: bool = False) -> None:
    for worker in workers:
        await worker.tick(first=first)
        cluster.check()


async def test_each_worker_takes_its_share_and_nobody_else_s(nc: NATS) -> None:
    cluster = Cluster(nc)
    a = await cluster.worker("host/0", [0, 2])
    b = await cluster.worker("host/1", [1, 3])
    for _ in range(3):
        await _tick(cluster, a, b, first=_ == 0)
    assert (a.owned, b.owned) == ([0, 2], [1, 3])
    assert all(len(w) == 1 for w in cluster.running.values())


async def test_a_dead_worker_s_partitions_move_and_come_back_when_it_returns(nc: NATS) -> None:
    cluster = Cluster(nc)
    a = await cluster.worker("host/0", [0, 2])
    b = await cluster.worker("host/1", [1, 3])
    await _tick(cluster, a, b, first=True)
    # b dies: no more ticks, no release. Its stand-in consumers stop as its process would.
    for p in b.owned:
        b.held[p].stop.set()
    await until(lambda: _settled(b), 5, "b's consumers to stop")

    async def moved() -> bool:
        await _tick(cluster, a)
        return a.owned == [0, 1, 2, 3]

    await until(moved, 10, "a to take b's partitions over", every=0.1)

    # b restarts as a new incarnation under the same name: a hands its partitions back.
    b2 = await cluster.worker("host/1", [1, 3])

    async def back() -> bool:
        await _tick(cluster, b2, a)
        return (a.owned, b2.owned) == ([0, 2], [1, 3])

    await until(back, 10, "b's partitions to come back", every=0.05)


async def test_a_restarted_worker_resumes_its_own_partitions_at_once(nc: NATS) -> None:
    cluster = Cluster(nc)
    old = await cluster.worker("host/0", [0, 1, 2, 3])
    await _tick(cluster, old, first=True)
    for p in old.owned:  # killed: its leases stay until their term ends
        old.held[p].stop.set()
    await until(lambda: _settled(old), 5, "the old consumers to stop")
    new = await cluster.worker("host/0", [0, 1, 2, 3])
    await _tick(cluster, new, first=True)
    assert new.owned == [0, 1, 2, 3]  # no wait for the term: the holder was its predecessor
    assert await old.leases.renew("partition.0", old.held[0].revision) is None

    stranger = await cluster.worker("other/0", [0, 1, 2, 3])
    await _tick(cluster, stranger, first=True)
    assert stranger.owned == []  # another worker's name: it waits for the term


async def test_a_worker_that_cannot_renew_stops_before_its_term_ends(nc: NATS) -> None:
    cluster = Cluster(nc)
    now = [0.0]
    a = await cluster.worker("host/0", [0, 1, 2, 3], clock=now)
    await _tick(cluster, a, first=True)
    assert a.owned == [0, 1, 2, 3]
    now[0] += TTL / 2
    await a._fence()
    assert a.owned == [0, 1, 2, 3]
    now[0] += TTL / 4  # three quarters of the term without a renewal
    await a._fence()
    assert a.owned == []
    assert all(not w for w in cluster.running.values())


async def test_stopping_gives_every_lease_back_for_an_immediate_takeover(nc: NATS) -> None:
    cluster = Cluster(nc)
    a = await cluster.worker("host/0", [0, 1])
    b = await cluster.worker("host/1", [2, 3])
    stop = asyncio.Event()
    running = asyncio.create_task(a.run(stop))
    await until(lambda: _owns(a, [0, 1]), 5, "a to own its partitions")
    stop.set()
    await running
    assert all(not w for w in cluster.running.values())
    await _tick(cluster, b)  # settled: a's partitions are free and wanted by no one
    assert b.owned == [0, 1, 2, 3]


async def _settled(worker: Ownership) -> bool:
    return all(h.task.done() for h in worker.held.values())


async def _owns(worker: Ownership, partitions: list[int]) -> bool:
    return worker.owned == partitions
