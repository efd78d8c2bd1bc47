"""Leases in NATS key-value against a real nats-server: one holder, lapsing, handed over."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NATS

from libs import bus
from libs.leases import Holder, Leases, bucket_name
from tests.harness import until
from tests.infra import Infra


@pytest.fixture
async def nc(infra: Infra) -> AsyncIterator[NATS]:
    client = await bus.connect(infra.nats_url, "test-leases")
    yield client
    await client.close()


async def _open(nc: NATS, bucket: str, worker: str, ttl: float = 1.0) -> Leases:
    return await Leases.open(nc.jetstream(), bucket, ttl, 1, Holder(worker, uuid.uuid4().hex))


def _bucket() -> str:
    return bucket_name(f"T{uuid.uuid4().hex[:10]}", "leases")


async def test_of_racing_workers_exactly_one_gets_the_lease(nc: NATS) -> None:
    bucket = _bucket()
    workers = [await _open(nc, bucket, f"w{i}") for i in range(5)]
    won = await asyncio.gather(*(w.acquire("partition.0") for w in workers))
    assert sum(r is not None for r in won) == 1
    winner = workers[[r is not None for r in won].index(True)]
    lease = await workers[0].read("partition.0")
    assert lease is not None and lease.holder == winner.me


async def test_a_lease_lapses_after_its_term_and_its_late_renewal_fails(nc: NATS) -> None:
    bucket = _bucket()
    a, b = await _open(nc, bucket, "a"), await _open(nc, bucket, "b")
    revision = await a.acquire("partition.1")
    assert revision is not None
    renewed = await a.renew("partition.1", revision)
    assert renewed is not None and renewed > revision
    assert await b.acquire("partition.1") is None

    async def free() -> bool:
        return await b.read("partition.1") is None

    await until(free, 10, "the unrenewed lease to lapse", every=0.05)
    assert await b.acquire("partition.1") is not None
    assert await a.renew("partition.1", renewed) is None  # a learns it lost the lease


async def test_release_frees_at_once_but_never_someone_elses_lease(nc: NATS) -> None:
    bucket = _bucket()
    a, b = await _open(nc, bucket, "a", ttl=60), await _open(nc, bucket, "b", ttl=60)
    revision = await a.acquire("partition.2")
    assert revision is not None
    await a.release("partition.2", revision)
    taken = await b.acquire("partition.2")
    assert taken is not None
    await a.release("partition.2", revision)  # stale: b keeps it
    lease = await a.read("partition.2")
    assert lease is not None and lease.holder == b.me and lease.revision == taken
    assert await a.take_over("partition.2", revision) is None
    assert await a.take_over("partition.2", taken) is not None


async def test_reopening_the_bucket_with_another_term_applies_it(nc: NATS) -> None:
    bucket = _bucket()
    await _open(nc, bucket, "a", ttl=1)
    await _open(nc, bucket, "a", ttl=7)
    info = await nc.jetstream().stream_info(f"KV_{bucket}")
    assert info.config.max_age == 7


async def test_a_bucket_lost_with_a_nats_restart_is_made_again(nc: NATS) -> None:
    # The bucket lives in memory: a nats-server restart loses it, as deleting it does here.
    bucket = _bucket()
    a = await _open(nc, bucket, "a", ttl=30.0)
    revision = await a.acquire("partition.0")
    assert revision is not None
    await nc.jetstream().delete_stream(f"KV_{bucket}")

    assert await a.renew("partition.0", revision) is None  # it lapsed with the bucket
    await a.announce("want.0")
    assert await a.read("partition.0") is None
    again = await a.acquire("partition.0")
    assert again is not None
    lease = await a.read("partition.0")
    assert lease is not None and lease.holder == a.me
    await a.release("partition.0", again)
    assert await a.read("partition.0") is None
    await nc.jetstream().delete_stream(f"KV_{bucket}")
