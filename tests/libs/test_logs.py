"""Logs: JSON lines with trace and span ids, and never a secret."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from libs import logs
from libs.settings import Settings


@pytest.fixture
def json_logs() -> Iterator[None]:
    """Puts logging back as it was; the test configures JSON logs once capsys captures."""
    try:
        yield
    finally:
        structlog.reset_defaults()
        if logs._handler is not None:
            logging.getLogger().removeHandler(logs._handler)
            logs._handler = None


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_lines_are_json_with_the_current_trace_and_span(
    json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(Settings(log_format="json", log_level="debug"))
    log = structlog.get_logger("test")
    log.info("outside")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        log.info("inside", partition=3)
        context = span.get_span_context()
    outside, inside = lines(capsys.readouterr().out)
    assert outside["event"] == "outside" and "trace_id" not in outside
    assert inside["event"] == "inside" and inside["partition"] == 3
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert inside["level"] == "info" and "timestamp" in inside


def test_secrets_never_reach_a_line(json_logs: None, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(Settings(log_format="json", log_level="debug"))
    log = structlog.get_logger("test")
    log.warning(
        "connect failed",
        token="tok-abc123",
        password="hunter22",
        database_url="postgresql://chinwag:s3cret@db:5432/chinwag",
        error="could not reach nats://user:pa55@nats:4222 with Bearer tok-xyz789",
    )
    logging.getLogger("uvicorn.error").error("header Authorization: Bearer tok-zzz999")
    out = capsys.readouterr()
    text = out.out + out.err
    for secret in ("tok-abc123", "hunter22", "s3cret", "pa55", "tok-xyz789", "tok-zzz999"):
        assert secret not in text
    (line,) = lines(out.out)
    assert line["token"] == line["password"] == logs.REDACTED
    assert line["database_url"] == "postgresql://chinwag:***@db:5432/chinwag"
    assert line["error"] == "could not reach nats://user:***@nats:4222 with Bearer ***"
    (stdlib,) = lines(out.err)  # the standard library's records: the same JSON
    assert stdlib["logger"] == "uvicorn.error" and stdlib["level"] == "error"
    assert stdlib["event"] == "header Authorization: Bearer ***"


def test_a_url_without_a_password_is_left_alone() -> None:
    assert (
        logs.scrub("nats://nats:4222 and http://a/b:c@d") == "nats://nats:4222 and http://a/b:c@d"
    )
