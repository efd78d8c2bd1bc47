"""Tracing: one trace from an HTTP send to the long-poll it answers, across every service."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision
from opentelemetry.trace import SpanKind

from libs import bus, telemetry
from libs.subjects import Subjects
from tests import harness
from tests.harness import ApiClient, open_system, until
from tests.infra import Infra

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test, every span kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.enable(provider)
    try:
        yield exporter
    finally:
        telemetry.disable()
        provider.shutdown()


class Spans:
    def __init__(self, found: Sequence[ReadableSpan]) -> None:
        self.all = list(found)

    def one(self, what: str, **want: object) -> ReadableSpan:
        """The single span whose kind, name and attributes match ``want``."""
        hits = [s for s in self.all if _matches(s, want)]
        assert len(hits) == 1, f"{what}: {len(hits)} spans match {want}"
        return hits[0]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        return [s for s in self.all if s.parent and s.parent.span_id == _id(parent)]


def _matches(span: ReadableSpan, want: dict[str, object]) -> bool:
    attributes = dict(span.attributes or {})
    for key, value in want.items():
        if key == "kind":
            if span.kind != value:
                return False
        elif key == "name":
            if span.name != value:
                return False
        elif key == "parent":
            assert isinstance(value, ReadableSpan)
            if span.parent is None or span.parent.span_id != _id(value):
                return False
        elif attributes.get(key.replace("__", ".")) != value:
            return False
    return True


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def _trace(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


async def test_one_trace_covers_send_publish_fanout_wake_and_the_long_poll_it_answers(
    spans: InMemorySpanExporter, infra: Infra, database_url: str
) -> None:
    settings = harness.test_settings(infra.nats_url, database_url)
    subjects = Subjects(settings.subject_prefix, settings.partitions)
    async with AsyncExitStack() as stack:
        system = await open_system(stack, settings)
        alice = await ApiClient.create(system.base_url, "alice")
        bob = await ApiClient.create(system.base_url, "bob")
        stack.push_async_callback(alice.close)
        stack.push_async_callback(bob.close)
        await alice.join("#trace")
        joined = await bob.join("#trace")
        await bob.receive(1)  # his own JOIN: fanout is idle again

        waiting = harness.polls_waiting()
        poll = asyncio.create_task(bob.poll(timeout=20))
        await harness.until_parked(waiting, "the long-poll to park")
        sent = await alice.say("#trace", "traced line")
        page = await poll
        assert [i["id"] for i in page["messages"]] == [sent["id"]]

        async def answered() -> bool:
            done = spans.get_finished_spans()
            links = [
                link.context.span_id
                for s in done
                if s.name == "long-poll answer"
                for link in s.links
            ]
            return any(s.context and s.context.span_id in links for s in done)

        await until(answered, 10, "the long-poll's spans")
        found = Spans(spans.get_finished_spans())

    # The send: HTTP server span → JetStream publish (PRODUCER, with its Nats-Msg-Id).
    publish = found.one(
        "publish",
        kind=SpanKind.PRODUCER,
        messaging__message__id=sent["id"],
        messaging__operation__name="publish",
    )
    assert publish.parent is not None
    post = next(s for s in found.all if s.context and s.context.span_id == publish.parent.span_id)
    assert (post.name, post.kind, post.parent) == ("POST /api/v1/messages", SpanKind.SERVER, None)
    assert publish.attributes is not None
    assert publish.attributes["messaging.system"] == "nats"
    assert str(publish.attributes["messaging.destination.name"]).startswith(
        f"{settings.subject_prefix}.ev."
    )

    # Fanout: a CONSUMER span per event, child of the publish, with the statement queuing it.
    process = found.one("fanout process", kind=SpanKind.CONSUMER, parent=publish)
    assert process.attributes is not None
    assert str(process.attributes["messaging.consumer.group.name"]).startswith("fanout-")
    assert process.attributes["messaging.message.id"] == sent["id"]
    queries = [s for s in found.children(process) if s.kind == SpanKind.CLIENT]
    statements = [
        str((s.attributes or {}).get("db.statement") or (s.attributes or {}).get("db.query.text"))
        for s in queries
    ]
    assert any("INSERT INTO delivery.client_queues" in q for q in statements), statements

    # The wake: published by fanout under that span, consumed by the gateway.
    wake = found.one("wake publish", kind=SpanKind.PRODUCER, parent=process)
    assert wake.attributes is not None
    assert wake.attributes["messaging.destination.name"] == subjects.wake
    woke = found.one("wake process", kind=SpanKind.CONSUMER, parent=wake)

    # The long-poll's answer continues the wake, and links to the poll's own request.
    answer = found.one("long-poll answer", name="long-poll answer", parent=woke)
    assert len(answer.links) == 1
    get = next(s for s in found.all if _id(s) == answer.links[0].context.span_id)
    assert (get.name, get.kind, get.parent) == ("GET /api/v1/messages", SpanKind.SERVER, None)
    # Its queue read, unless the wake carried the item (and the span says so).
    carried = (answer.attributes or {}).get("chinwag.longpoll.answer") == "wake"
    assert carried or any(s.kind == SpanKind.CLIENT for s in found.children(answer))

    trace = {_trace(s) for s in (post, publish, process, wake, woke, answer)}
    assert trace == {_trace(post)}
    assert post.start_time is not None and answer.end_time is not None
    assert answer.end_time > post.start_time

    # JOIN goes through presence by request/reply: the same chain, one hop longer.
    join_publish = found.one(
        "join publish", kind=SpanKind.PRODUCER, messaging__message__id=joined["id"]
    )
    assert join_publish.parent is not None
    presence = next(s for s in found.all if _id(s) == join_publish.parent.span_id)
    assert presence.kind == SpanKind.CONSUMER
    assert presence.name == f"process {subjects.service('presence', 'join')}"
    request = next(s for s in found.all if presence.parent and _id(s) == presence.parent.span_id)
    assert (request.kind, request.name) == (
        SpanKind.PRODUCER,
        f"send {subjects.service('presence', 'join')}",
    )
    assert found.one("join fanout", kind=SpanKind.CONSUMER, parent=join_publish)
    assert _trace(request) == _trace(presence) == _trace(join_publish)


async def test_with_tracing_off_messages_carry_no_trace_headers(infra: Infra) -> None:
    assert not telemetry.enabled()
    tag = uuid.uuid4().hex[:8]
    nc = await bus.connect(infra.nats_url, "test")
    try:
        js = nc.jetstream()
        await js.add_stream(name=f"TR{tag}", subjects=[f"tr{tag}.>"])
        await bus.publish_raw(js, f"tr{tag}.x", b"{}", "id-1")
        msg = await js.get_msg(f"TR{tag}", 1)
        assert msg.headers == {"Nats-Msg-Id": "id-1"}
        await js.delete_stream(f"TR{tag}")
    finally:
        await nc.close()
    projection = object()
    assert telemetry.traced(projection, "fanout-0") is projection  # type: ignore[arg-type]


def test_the_exporter_follows_the_standard_variables() -> None:
    assert telemetry.exporter_from_env({}) is None
    assert telemetry.exporter_from_env({"OTEL_TRACES_EXPORTER": "otlp"}) is None
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert isinstance(telemetry.exporter_from_env(endpoint), OTLPSpanExporter)
    grpc = {**endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    assert isinstance(telemetry.exporter_from_env(grpc), GrpcExporter)
    traces_only = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}
    assert isinstance(telemetry.exporter_from_env(traces_only), OTLPSpanExporter)
    assert telemetry.exporter_from_env({**endpoint, "OTEL_TRACES_EXPORTER": "none"}) is None
    assert telemetry.exporter_from_env({**endpoint, "OTEL_SDK_DISABLED": "true"}) is None
    console = {"OTEL_TRACES_EXPORTER": "console"}
    assert isinstance(telemetry.exporter_from_env(console), ConsoleSpanExporter)
    with pytest.raises(ValueError, match="zipkin"):
        telemetry.exporter_from_env({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ValueError, match="http/json"):
        telemetry.exporter_from_env({**endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def test_queries_outside_any_trace_are_not_sampled() -> None:
    sampler = telemetry.QuietRoots(ALWAYS_ON)
    query = {"db.system": "postgresql"}
    assert (
        sampler.should_sample(None, 1, "SELECT", SpanKind.CLIENT, query).decision == Decision.DROP
    )
    kept = sampler.should_sample(None, 1, "GET /", SpanKind.SERVER, {"http.method": "GET"})
    assert kept.decision == Decision.RECORD_AND_SAMPLE


def test_setup_exports_spans_named_after_the_service(tmp_path: Path) -> None:
    script = (
        "from libs import telemetry\n"
        "stop = telemetry.setup('chinwag-fanout')\n"
        "headers = {}\n"
        "with telemetry.producing('chinwag.ev.0.message', headers, message_id='m-1'):\n"
        "    pass\n"
        "stop()\n"
        "print('HEADERS', sorted(headers))\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "OTEL_TRACES_EXPORTER": "console"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "HEADERS ['traceparent']" in out
    span = json.loads(out[: out.index("HEADERS")])
    assert span["name"] == "publish chinwag.ev.0.message"
    assert span["kind"] == "SpanKind.PRODUCER"
    assert span["attributes"]["messaging.message.id"] == "m-1"
    assert span["resource"]["attributes"]["service.name"] == "chinwag-fanout"

    off = subprocess.run(
        [sys.executable, "-c", script],
        env={"PATH": env["PATH"]},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert off.strip() == "HEADERS []"  # no exporter configured: no span, no header
