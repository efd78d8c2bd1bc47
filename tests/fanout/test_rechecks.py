"""A fanout worker that takes many partitions at once asks gateways for one recheck."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import msgspec
from nats.aio.client import Client as NATS

from libs.items import Wake
from libs.settings import Settings
from services.fanout.app import DeliveryProjection


class _Bus:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, subject: str, payload: bytes, **_: Any) -> None:
        self.published.append((subject, payload))


def _projection(bus: _Bus) -> DeliveryProjection:
    return DeliveryProjection(cast(Any, None), cast(NATS, bus), Settings())


async def test_the_partitions_taken_together_share_one_recheck() -> None:
    bus = _Bus()
    projection = _projection(bus)
    for _ in range(16):  # as consume() does for each partition it takes
        projection.ask_recheck()
    await asyncio.sleep(0)  # one turn of the loop: the publish runs
    assert [msgspec.json.decode(p, type=Wake).recheck for _, p in bus.published] == [True]
    projection.ask_recheck()  # a partition taken later asks again
    await asyncio.sleep(0)
    assert len(bus.published) == 2
    assert {subject for subject, _ in bus.published} == {projection.wake_subject}
