"""NATS helpers against a real nats-server with JetStream."""

from __future__ import annotations

import uuid

from libs import bus
from libs.events import MessagePosted, new_event_id, utcnow
from libs.settings import Settings
from libs.subjects import Subjects
from tests.infra import Infra


def _settings(infra: Infra, **overrides: object) -> Settings:
    tag = uuid.uuid4().hex[:10]
    values: dict[str, object] = {
        "nats_url": infra.nats_url,
        "stream_name": f"B{tag}",
        "subject_prefix": f"b{tag}",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


async def test_stream_bootstrap_is_idempotent_and_converges(infra: Infra) -> None:
    settings = _settings(infra)
    nc = await bus.connect(infra.nats_url, "test")
    try:
        js = nc.jetstream()
        await bus.ensure_stream(js, settings)
        await bus.ensure_stream(js, settings)
        changed = settings.model_copy(update={"duplicate_window": 30.0})
        await bus.ensure_stream(js, changed)
        info = await js.stream_info(settings.stream_name)
        assert info.config.duplicate_window == 30.0
        assert info.config.subjects == [f"{settings.subject_prefix}.ev.>"]
        await js.delete_stream(settings.stream_name)
    finally:
        await nc.close()


async def test_publishing_one_event_twice_stores_it_once(infra: Infra) -> None:
    settings = _settings(infra)
    subjects = Subjects(settings.subject_prefix, settings.partitions)
    event = MessagePosted(
        event_id=new_event_id(),
        ts=utcnow(),
        command="PRIVMSG",
        sender_id=uuid.uuid4(),
        sender="a",
        to="#x",
        channel="#x",
        body=["once"],
    )
    nc = await bus.connect(infra.nats_url, "test")
    try:
        js = nc.jetstream()
        await bus.ensure_stream(js, settings)
        first = await bus.publish_event(js, subjects, event)
        second = await bus.publish_event(js, subjects, event)
        assert not first.duplicate
        assert second.duplicate and second.seq == first.seq
        info = await js.stream_info(settings.stream_name)
        assert info.state.messages == 1
        await js.delete_stream(settings.stream_name)
    finally:
        await nc.close()
