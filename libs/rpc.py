"""Internal request/reply over NATS: nats-py ``micro`` services in queue groups.

A request is a msgspec Struct encoded as JSON; the reply is ``{"result": …}``
or ``{"error": ErrorBody}``, so a refusal raised by a service reaches the
gateway as the same ``ChatError``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
import nats.errors
import structlog
from nats.aio.client import Client as NATS
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import Service
from prometheus_client import Counter, Histogram

from libs import errors, telemetry
from libs.errors import ChatError, ErrorBody

log = structlog.get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")


_NULL = msgspec.Raw(b"null")

REQUESTS = Counter(
    "chinwag_rpc_requests_total",
    "Internal requests answered, by service, endpoint and outcome (ok, refused, error)",
    ["service", "endpoint", "outcome"],
)
SECONDS = Histogram(
    "chinwag_rpc_request_duration_seconds",
    "Time to answer an internal request",
    ["service", "endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class Reply(msgspec.Struct):
    result: msgspec.Raw = _NULL
    error: ErrorBody | None = None


_encoder = msgspec.json.Encoder()
_reply_decoder = msgspec.json.Decoder(Reply)

Handler = Callable[[Any], Awaitable[Any]]


class Server:
    """A running micro service; ``stop`` finishes and answers the requests it has taken."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.inflight: set[asyncio.Future[None]] = set()

    async def stop(self) -> None:
        await self.service.stop()
        if self.inflight:
            await asyncio.gather(*self.inflight, return_exceptions=True)


async def serve(
    nc: NATS,
    name: str,
    version: str,
    subject_prefix: str,
    endpoints: dict[str, tuple[type[Any], Handler]],
) -> Server:
    """Start a micro service whose endpoints decode a request struct and run a handler.

    Endpoint ``x`` listens on ``<subject_prefix>.x`` in the service's queue
    group, so replicas share the load.
    """
    server = Server(await add_service(nc, name=name, version=version, queue_group=name))
    for endpoint, (request_type, handler) in endpoints.items():
        await server.service.add_endpoint(
            name=endpoint,
            subject=f"{subject_prefix}.{endpoint}",
            handler=_wrap(request_type, handler, name, endpoint, server.inflight),
        )
    return server


def _wrap(
    request_type: type[Any],
    handler: Handler,
    service: str,
    name: str,
    inflight: set[asyncio.Future[None]],
) -> Callable[[Request], Awaitable[None]]:
    decoder = msgspec.json.Decoder(request_type)
    timer = SECONDS.labels(service, name)

    async def endpoint(request: Request) -> None:
        # Shielded: stopping the service cancels its subscriptions' tasks, but a request
        # already taken is finished and answered (``Server.stop`` waits for it).
        task = asyncio.ensure_future(answer(request))
        inflight.add(task)
        task.add_done_callback(inflight.discard)
        await asyncio.shield(task)

    async def answer(request: Request) -> None:
        started = time.perf_counter()
        with telemetry.consuming(request.subject, request.headers, group=service):
            try:
                payload = decoder.decode(request.data)
                result = await handler(payload)
                reply = Reply(result=msgspec.Raw(_encoder.encode(result)))
            except msgspec.ValidationError as error:
                reply = Reply(error=errors.validation(str(error)).body)
            except ChatError as error:
                reply = Reply(error=error.body)
            except Exception as error:
                log.exception("endpoint failed", subject=request.subject)
                reply = Reply(
                    error=errors.unavailable(f"internal error: {type(error).__name__}").body
                )
            await request.respond(_encoder.encode(reply))
        timer.observe(time.perf_counter() - started)
        REQUESTS.labels(service, name, _outcome(reply)).inc()

    return endpoint


def _outcome(reply: Reply) -> str:
    if reply.error is None:
        return "ok"
    return "refused" if reply.error.status < 500 else "error"


async def call(
    nc: NATS, subject: str, request: Any, result_type: type[R], timeout: float = 5.0
) -> R:
    """Send a request and decode its result; a refusal is raised as ``ChatError``."""
    headers: dict[str, str] = {}
    try:
        with telemetry.producing(subject, headers, operation="send"):
            msg = await nc.request(
                subject, _encoder.encode(request), timeout=timeout, headers=headers or None
            )
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as error:
        raise errors.unavailable(f"{subject}: no answer ({type(error).__name__})") from error
    reply = _reply_decoder.decode(msg.data)
    if reply.error is not None:
        raise ChatError.from_body(reply.error)
    return msgspec.json.decode(reply.result, type=result_type)
