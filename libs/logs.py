"""Logging: structlog, JSON in containers and readable in a terminal."""

from __future__ import annotations

import logging
import sys

import structlog

from libs.settings import Settings


def configure(settings: Settings, least: int = logging.NOTSET) -> None:
    """Configure stdlib logging and structlog from ``log_level`` and ``log_format``."""
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    level = max(level, least)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    as_json = settings.log_format == "json" or (
        settings.log_format == "auto" and not sys.stdout.isatty()
    )
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info if as_json else structlog.dev.set_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
