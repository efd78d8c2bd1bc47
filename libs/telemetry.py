"""Tracing: OpenTelemetry spans across HTTP, NATS and PostgreSQL; off unless an exporter is set.

The exporter comes from the standard ``OTEL_*`` variables: OTLP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``…_TRACES_ENDPOINT``) is set, ``console``
or ``none`` by ``OTEL_TRACES_EXPORTER``; otherwise tracing stays off and every
helper here returns before touching OpenTelemetry, so it costs nothing.

NATS carries the W3C trace context in message headers: ``producing`` opens a
PRODUCER span and injects it, ``consuming`` extracts it and opens a CONSUMER
span; both carry the OpenTelemetry messaging attributes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context as Context  # re-exported for type hints
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.sdk.trace.sampling import _get_from_env_or_default as env_sampler
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS

    from libs.bus import AfterAck, Delivery, Projection

_provider: TracerProvider | None = None  # set while tracing is on
_tracer: trace.Tracer | None = None
_NOTHING = contextlib.nullcontext()
# Health checks and scrapes would be a trace each, every few seconds.
EXCLUDED_URLS = "/livez,/readyz,/metrics,/.well-known/healthcheck.json"


def enabled() -> bool:
    """Whether spans are being recorded and exported."""
    return _tracer is not None


def exporter_from_env(environ: Mapping[str, str] = os.environ) -> SpanExporter | None:
    """The span exporter the ``OTEL_*`` variables ask for, or None for none."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    kind = environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")[0].strip().lower()
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    if kind != "otlp":
        raise ValueError(
            f"OTEL_TRACES_EXPORTER={kind!r} is not supported: use otlp, console or none"
        )
    if not (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    ):
        return None  # nowhere to send spans: stay off
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter()  # endpoint, headers, TLS and timeout from OTEL_EXPORTER_OTLP_*
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(f"OTLP protocol {protocol!r} is not supported: use http/protobuf or grpc")


class QuietRoots(Sampler):
    """Drops database queries that start a trace: background loops would make one a second."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if (
            not parent.is_valid
            and kind is SpanKind.CLIENT
            and attributes
            and ("db.system" in attributes or "db.system.name" in attributes)
        ):
            return SamplingResult(Decision.DROP)
        return self.inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"QuietRoots{{{self.inner.get_description()}}}"


def setup(service: str, environ: Mapping[str, str] = os.environ) -> Callable[[], None]:
    """Turn tracing on for this process when the environment configures an exporter.

    Returns what flushes and stops it at exit (nothing to do when it stays off).
    """
    exporter = exporter_from_env(environ)
    if exporter is None:
        return lambda: None
    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": service}))
    provider = TracerProvider(resource=resource, sampler=QuietRoots(env_sampler()))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    enable(provider)
    trace.set_tracer_provider(provider)
    return provider.shutdown


def enable(provider: TracerProvider) -> None:
    """Record spans with ``provider``: PostgreSQL queries, HTTP apps created from now on, NATS."""
    global _provider, _tracer
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    _provider = provider
    _tracer = provider.get_tracer("chinwag")
    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]


def disable() -> None:
    """Back to the no-op path (tests turn tracing on and off)."""
    global _provider, _tracer
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    if _provider is not None:
        AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    _provider = _tracer = None


def instrument_app(app: Any) -> None:
    """Server spans for every request of a FastAPI app, by route template (when tracing is on)."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_provider,
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],
    )


def _messaging(subject: str, operation: str, kind: str) -> dict[str, Any]:
    return {
        "messaging.system": "nats",
        "messaging.operation.name": operation,
        "messaging.operation.type": kind,
        "messaging.destination.name": subject,
    }


def producing(
    subject: str,
    headers: dict[str, str],
    *,
    operation: str = "publish",
    message_id: str | None = None,
    size: int | None = None,
) -> contextlib.AbstractContextManager[Any]:
    """A PRODUCER span around a publish; writes its context into ``headers``."""
    if _tracer is None:
        return _NOTHING
    return _producing(_tracer, subject, headers, operation, message_id, size)


@contextlib.contextmanager
def _producing(
    tracer: trace.Tracer,
    subject: str,
    headers: dict[str, str],
    operation: str,
    message_id: str | None,
    size: int | None,
) -> Iterator[trace.Span]:
    attributes = _messaging(subject, operation, "send")
    if message_id is not None:
        attributes["messaging.message.id"] = message_id
    if size is not None:
        attributes["messaging.message.body.size"] = size
    with tracer.start_as_current_span(
        f"{operation} {subject}", kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        propagate.inject(headers)
        yield span


def consuming(
    subject: str,
    headers: Mapping[str, str] | None,
    *,
    operation: str = "process",
    group: str | None = None,
) -> contextlib.AbstractContextManager[Any]:
    """A CONSUMER span, child of the context the message's headers carry."""
    if _tracer is None:
        return _NOTHING
    attributes = _messaging(subject, operation, "process")
    if group is not None:
        attributes["messaging.consumer.group.name"] = group
    return _tracer.start_as_current_span(
        f"{operation} {subject}",
        context=propagate.extract(headers or {}),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    )


async def publish(nc: NATS, subject: str, payload: bytes) -> None:
    """A core NATS publish that carries the trace context when tracing is on."""
    if _tracer is None:
        await nc.publish(subject, payload)
        return
    headers: dict[str, str] = {}
    with producing(subject, headers, size=len(payload)):
        await nc.publish(subject, payload, headers=headers)


def current() -> Context | None:
    """The current context to resume later elsewhere (None when tracing is off)."""
    return None if _tracer is None else otel_context.get_current()


def resumed(name: str, parent: Context | None) -> contextlib.AbstractContextManager[Any]:
    """A span continuing ``parent`` (what caused this work), linked to the current span.

    A long-poll is woken by a message: its answer belongs to the trace of
    that message, and the link leads back to the poll's own request.
    """
    if _tracer is None or parent is None:
        return _NOTHING
    here = trace.get_current_span().get_span_context()
    return _tracer.start_as_current_span(
        name, context=parent, links=[Link(here)] if here.is_valid else None
    )


def traced(projection: Projection, durable: str) -> Projection:
    """``projection`` with a CONSUMER span per event around each batch (itself when off)."""
    if _tracer is None:
        return projection
    return _TracedProjection(projection, durable, _tracer)


class _TracedProjection:
    """One CONSUMER span per event, child of its publisher, spanning the batch's transaction.

    The first event's span is the current one (the queries nest under it) and
    the others link to it; what runs after the ack (the wake) continues it.
    """

    def __init__(self, inner: Projection, durable: str, tracer: trace.Tracer) -> None:
        self.inner = inner
        self.durable = durable
        self.tracer = tracer

    async def position(self, partition: int) -> int:
        return await self.inner.position(partition)

    async def park(self, partition: int, delivery: Delivery, error: str) -> None:
        await self.inner.park(partition, delivery, error)

    async def apply(self, partition: int, after: int, batch: Sequence[Delivery]) -> AfterAck | None:
        spans = self._start(partition, batch)
        try:
            with trace.use_span(spans[0], end_on_exit=False):
                after_ack = await self.inner.apply(partition, after, batch)
                resume = otel_context.get_current()
        except BaseException as error:
            for span in spans:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            raise
        finally:
            for span in spans:
                span.end()
        if after_ack is None:
            return None
        return _within(resume, after_ack)

    def _start(self, partition: int, batch: Sequence[Delivery]) -> list[trace.Span]:
        spans: list[trace.Span] = []
        for delivery in batch:
            attributes = _messaging(delivery.subject, "process", "process")
            attributes["messaging.consumer.group.name"] = self.durable
            attributes["messaging.destination.partition.id"] = str(partition)
            attributes["messaging.batch.message_count"] = len(batch)
            attributes["messaging.nats.stream_sequence"] = delivery.stream_seq
            headers = delivery.headers or {}
            if "Nats-Msg-Id" in headers:
                attributes["messaging.message.id"] = headers["Nats-Msg-Id"]
            links = [Link(spans[0].get_span_context())] if spans else None
            spans.append(
                self.tracer.start_span(
                    f"process {delivery.subject}",
                    context=propagate.extract(headers),
                    kind=SpanKind.CONSUMER,
                    attributes=attributes,
                    links=links,
                )
            )
        return spans


def _within(ctx: Context, then: Callable[[], Awaitable[None]]) -> AfterAck:
    async def resumed_after_ack() -> None:
        token = otel_context.attach(ctx)
        try:
            await then()
        finally:
            otel_context.detach(token)

    return resumed_after_ack
