"""Pulling from a durable consumer against a real nats-server: nothing lost, nothing early."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from libs import bus
from libs.pull import Puller, PullError
from tests.infra import Infra


@asynccontextmanager
async def _consumer(infra: Infra) -> AsyncIterator[tuple[NATS, str, Puller]]:
    tag = uuid.uuid4().hex[:8]
    stream, subject = f"P{tag}", f"p{tag}.x"
    nc = await bus.connect(infra.nats_url, "test-pull")
    js = nc.jetstream()
    try:
        await js.add_stream(StreamConfig(name=stream, subjects=[f"p{tag}.>"]))
        await js.add_consumer(
            stream, ConsumerConfig(durable_name="d", ack_policy=AckPolicy.EXPLICIT)
        )
        puller = await Puller.bind(nc, stream, "d")
        yield nc, subject, puller
        await puller.unsubscribe()
        await js.delete_stream(stream)
    finally:
        await nc.close()


async def test_an_idle_fetch_ends_empty_and_a_backlog_comes_in_batches_in_order(
    infra: Infra,
) -> None:
    async with _consumer(infra) as (nc, subject, puller):
        assert await puller.fetch(10, timeout=0.1) == []
        js = nc.jetstream()
        for n in range(25):
            await js.publish(subject, b"%d" % n)
        got: list[bytes] = []
        while len(got) < 25:
            batch = await puller.fetch(10, timeout=1.0)
            assert 0 < len(batch) <= 10
            got += [m.data for m in batch]
            for m in batch:
                await m.ack()
        assert got == [b"%d" % n for n in range(25)]


async def test_messages_published_around_each_fetchs_expiry_all_arrive_once_in_order(
    infra: Infra,
) -> None:
    # Requests expire every 0.1 s while messages come 0.05 to 0.15 s apart: some
    # land as a request expires, the case a fetch must neither lose nor wait out.
    async with _consumer(infra) as (nc, subject, puller):
        js = nc.jetstream()
        count = 40
        got: list[bytes] = []

        async def consume() -> None:
            while len(got) < count:
                batch = await puller.fetch(8, timeout=0.1)
                got.extend(m.data for m in batch)
                for m in batch:
                    await m.ack()

        consuming = asyncio.create_task(consume())
        pace = random.Random(7)
        for n in range(count):
            await asyncio.sleep(pace.uniform(0.05, 0.15))
            await js.publish(subject, b"%d" % n)
        await asyncio.wait_for(consuming, timeout=30)
        assert got == [b"%d" % n for n in range(count)]


async def test_a_deleted_consumer_is_an_error_not_an_empty_batch(infra: Infra) -> None:
    async with _consumer(infra) as (nc, _, puller):
        stream = puller.subject.split(".")[-2]
        await nc.jetstream().delete_consumer(stream, "d")
        with pytest.raises(PullError):
            await puller.fetch(5, timeout=1.0)
