"""Logging: structlog, JSON in containers and readable in a terminal, never a secret.

Every line carries the trace and span ids when it is written inside a span;
values under secret-sounding keys are replaced, and passwords in URLs and
bearer tokens in text are masked. The standard library's records (uvicorn,
asyncpg, nats) go through the same processors and renderer.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

from libs.settings import Settings

REDACTED = "[redacted]"
_SECRET_WORDS = ("token", "password", "passwd", "secret", "authorization", "cookie", "credential")
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@")
_BEARER = re.compile(r"(\b[Bb]earer\s+)[^\s\"',]+")

_handler: logging.Handler | None = None  # the stdlib handler this module installed


def add_trace_ids(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """``trace_id`` and ``span_id`` of the current span, when there is one."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event


def scrub(text: str) -> str:
    """``text`` with URL passwords and bearer tokens masked."""
    if "://" in text:
        text = _URL_PASSWORD.sub(r"\1***@", text)
    if "earer" in text:
        text = _BEARER.sub(r"\1***", text)
    return text


def redact(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace secrets: values under secret-sounding keys, passwords and tokens inside text."""
    for key, value in event.items():
        lowered = key.lower()
        if any(word in lowered for word in _SECRET_WORDS):
            event[key] = REDACTED
        elif isinstance(value, str):
            event[key] = scrub(value)
    return event


def configure(settings: Settings, least: int = logging.NOTSET) -> None:
    """Configure stdlib logging and structlog from ``log_level`` and ``log_format``."""
    global _handler
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    level = max(level, least)
    as_json = settings.log_format == "json" or (
        settings.log_format == "auto" and not sys.stdout.isatty()
    )
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
        redact,
    ]
    exceptions = structlog.processors.format_exc_info if as_json else structlog.dev.set_exc_info
    structlog.configure(
        processors=[*shared, exceptions, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared, exceptions],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(level)
    _handler = handler
