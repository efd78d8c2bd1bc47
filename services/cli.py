"""The ``chinwag`` command: run one service, the whole system (``up``) or the migrations.

This is the composition root: it imports each service by name, so the services
never import one another.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from libs import lifecycle, telemetry
from libs.lifecycle import run_until_signalled
from libs.logs import configure as configure_logging
from libs.settings import Settings

SERVICES = ("gateway", "fanout", "history", "presence")

ServiceMain = Callable[[Settings, asyncio.Event], Coroutine[Any, Any, None]]


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "doctor":
        from services.doctor import main as doctor

        return doctor(args.json, args.timeout)  # reports invalid settings as a failed check
    if args.command == "config" and (args.markdown or args.write):
        return _config_doc(args.write)
    if args.command == "chat":
        from services.chat.main import main as chat

        return chat(args)  # a client of the public API: no server settings needed
    try:
        settings = load_settings()
    except ValidationError as error:
        print(f"chinwag: invalid settings:\n{error}", file=sys.stderr)
        return 2
    if args.command == "up":
        return _up(settings, args.data_dir, args.port, args.scale)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "config":
        from services.config import effective

        print(effective(settings))
        return 0
    if args.command == "bench":
        return _bench(settings, args)
    if args.command == "soak":
        return _soak(settings, args)
    return _serve(args.command, settings)


def load_settings() -> Settings:
    """Settings from the ``CHINWAG_*`` environment."""
    return Settings()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chinwag",
        description="An IRC-like chat server: services over NATS JetStream and PostgreSQL.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser(
        "up",
        help="run everything on this machine (embedded NATS and PostgreSQL by default)",
        description="Run every service as a process of its own; Ctrl-C stops everything.",
    )
    up.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the embedded servers keep their data (default: CHINWAG_DATA_DIR or .chinwag)",
    )
    up.add_argument(
        "--port",
        type=int,
        default=None,
        help="the gateway's HTTP port (default: CHINWAG_HTTP_PORT or 8080)",
    )
    up.add_argument(
        "--scale",
        type=_scale,
        action="append",
        default=[],
        metavar="SERVICE=N[,…]",
        help="run N processes of SERVICE (0 leaves it out), e.g. gateway=2,fanout=2; "
        "may be repeated",
    )
    for name in SERVICES:
        commands.add_parser(name, help=f"run the {name} service until SIGINT/SIGTERM")
    commands.add_parser("migrate", help="apply pending database migrations")
    config = commands.add_parser(
        "config",
        help="print the settings in effect (passwords masked), or the reference of every setting",
    )
    config.add_argument(
        "--markdown", action="store_true", help="print every setting as a Markdown table"
    )
    config.add_argument(
        "--write",
        type=Path,
        metavar="README",
        help="rewrite the settings table between the markers in this file",
    )
    doctor = commands.add_parser(
        "doctor",
        help="check configuration, PostgreSQL, NATS and the stream; say how to fix problems",
        description="Exit status 1 when any check fails.",
    )
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument(
        "--timeout", type=float, default=3.0, help="seconds any one network call may take"
    )
    from services.bench.options import add_arguments as bench_arguments
    from services.bench.options import add_soak_arguments

    bench_arguments(
        commands.add_parser(
            "bench",
            help="measure latency, throughput and capacity against the components' ceilings",
            description="Start chinwag as `up` does (or use the configured URLs), run the "
            "benchmark scenarios, print a table and write JSON.",
        )
    )
    add_soak_arguments(
        commands.add_parser(
            "soak",
            help="fault runs at length, a memory soak and the cost of durability",
            description="On embedded servers of its own: every fault several times (table of "
            "sends, lost, duplicated, recovery), minutes of mixed traffic with each process's "
            "RSS sampled, and send rates under each durability choice.",
        )
    )
    from services.chat.main import add_arguments as chat_arguments

    chat_arguments(
        commands.add_parser(
            "chat",
            help="the terminal client: a full-screen chat over the HTTP API",
            description="Channels and private buffers, slash commands (/help), history "
            "on PageUp; a restart resumes the same queue from the last seen seq.",
        )
    )
    return parser


def _scale(text: str) -> list[tuple[str, int]]:
    """``gateway=2,fanout=2`` as pairs."""
    pairs = []
    for part in text.split(","):
        name, sep, count = part.strip().partition("=")
        if not sep or name not in SERVICES or not count.isdigit():
            raise argparse.ArgumentTypeError(
                f"expected SERVICE=N[,SERVICE=N…] with SERVICE one of {', '.join(SERVICES)}, "
                f"got {text!r}"
            )
        pairs.append((name, int(count)))
    return pairs


def _run(coro: Coroutine[Any, Any, int | None]) -> int | None:
    """Run ``coro`` on uvloop when it is installed, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _serve(name: str, settings: Settings) -> int:
    configure_logging(settings)
    stop_tracing = telemetry.setup(f"chinwag-{name}")
    run: ServiceMain = importlib.import_module(f"services.{name}.app").run
    lifecycle.freeze_when_started()
    try:
        code = _run(run_until_signalled(lambda stop: run(settings, stop), settings.shutdown_grace))
    finally:
        stop_tracing()  # flushes the spans still buffered
    return code or 0


def _up(settings: Settings, data_dir: Path | None, port: int | None, scale: list[Any]) -> int:
    from services.up import up

    # Progress is reported by `up` itself, behind its label; only trouble is logged.
    configure_logging(settings, least=logging.WARNING)
    code = _run(
        up(
            settings,
            data_dir if data_dir is not None else settings.data_dir,
            port if port is not None else settings.http_port,
            dict(pair for pairs in scale for pair in pairs),
        )
    )
    return code or 0


def _bench(settings: Settings, args: argparse.Namespace) -> int:
    from services.bench.runner import bench

    configure_logging(settings, least=logging.WARNING)
    lifecycle.freeze_when_started()  # the load generator freezes its heap before each scenario
    return _run(bench(settings, args)) or 0


def _soak(settings: Settings, args: argparse.Namespace) -> int:
    from services.bench.soak import soak

    configure_logging(settings, least=logging.WARNING)
    return _run(soak(args)) or 0


def _config_doc(readme: Path | None) -> int:
    from services.config import markdown, rewrite

    if readme is None:
        print(markdown())
    else:
        print(f"{readme}: " + ("settings table updated" if rewrite(readme) else "up to date"))
    return 0


def _migrate(settings: Settings) -> int:
    from libs.db import migrate

    configure_logging(settings, least=logging.WARNING)
    try:
        dsn = settings.dsn()
    except RuntimeError as error:
        print(f"chinwag migrate: {error}", file=sys.stderr)
        return 2
    applied: list[str] = []

    async def apply() -> None:
        applied.extend(await migrate(dsn))

    _run(apply())
    print("\n".join(applied) if applied else "up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
