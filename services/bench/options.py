"""The sizes of a benchmark run, and the command-line flags that set them."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

SCENARIOS = ("latency", "throughput", "bigroom", "idle", "ceilings")


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is. The defaults are those of the performance goals."""

    members: int = 100  # clients long-polling the room of the latency and throughput scenarios
    senders: int = 10  # throughput: of those members, how many send flat out
    rate: float = 50.0  # latency: sends per second, on an open-loop schedule
    duration: float = 20.0  # latency and throughput: seconds of load
    fanout_events: int = 2000  # throughput: events published straight to the stream
    big_room: int = 10_000  # member clients of the big room
    sampled: int = 1000  # big room: long-polls that wait for its one message
    idle: int = 10_000  # idle long-polls held by one gateway process
    idle_procs: int = 2  # client processes that hold them
    ceiling_duration: float = 3.0  # seconds per ceiling measurement
    http_concurrency: int = 64  # connections of the request-rate measurements
    poll_timeout: float = 10.0  # seconds a receiver's long-poll waits
    drain_timeout: float = 60.0  # seconds to wait for the last deliveries after the load
    seed: str = "sql"  # big room and idle: "sql" (bulk insert) or "api" (POST /session)
    scenarios: tuple[str, ...] = SCENARIOS

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["scenarios"] = list(self.scenarios)
        return values


QUICK = Sizes(
    members=5,
    senders=2,
    rate=20.0,
    duration=1.0,
    fanout_events=100,
    big_room=200,
    sampled=50,
    idle=50,
    idle_procs=1,
    ceiling_duration=0.5,
    http_concurrency=8,
    poll_timeout=5.0,
    drain_timeout=20.0,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``chinwag bench``."""
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results.json"),
        help="where to write the JSON results (default: bench-results.json)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="data directory of the embedded servers (default: a temporary one, removed after)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="the gateway's HTTP port (default: a free one)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: a smoke run of a few seconds"
    )
    parser.add_argument(
        "--only",
        default=None,
        metavar="NAMES",
        help=f"comma-separated scenarios to run, of {', '.join(SCENARIOS)} (default: all)",
    )
    group = parser.add_argument_group("sizes (each overrides the default or --quick)")
    helps = {
        "members": "clients long-polling the room (latency, throughput)",
        "senders": "throughput: members that send flat out (in latency, every member sends)",
        "rate": "latency: sends per second",
        "duration": "latency and throughput: seconds of load",
        "fanout_events": "throughput: events published straight to the stream",
        "big_room": "member clients of the big room",
        "sampled": "big room: long-polls that wait for the message",
        "idle": "idle long-polls held by one gateway process",
        "idle_procs": "client processes holding the idle long-polls",
        "ceiling_duration": "seconds per ceiling measurement",
        "http_concurrency": "connections of the request-rate measurements",
        "poll_timeout": "seconds a receiver's long-poll waits",
        "drain_timeout": "seconds to wait for the last deliveries",
        "seed": "how the big room's sessions are made: sql or api",
    }
    for field in fields(Sizes):
        if field.name == "scenarios":
            continue
        kind = {"int": int, "float": float, "str": str}[str(field.type)]
        group.add_argument(
            f"--{field.name.replace('_', '-')}",
            dest=field.name,
            type=kind,
            default=None,
            choices=("sql", "api") if field.name == "seed" else None,
            help=f"{helps[field.name]} (default: {field.default})",
        )


def sizes_from(args: argparse.Namespace) -> Sizes:
    """The sizes the flags ask for: defaults, or ``--quick``, then each flag given."""
    sizes = QUICK if args.quick else Sizes()
    changes: dict[str, Any] = {
        f.name: getattr(args, f.name)
        for f in fields(Sizes)
        if f.name != "scenarios" and getattr(args, f.name, None) is not None
    }
    if args.only:
        chosen = tuple(name.strip() for name in args.only.split(",") if name.strip())
        unknown = [name for name in chosen if name not in SCENARIOS]
        if unknown:
            raise ValueError(f"unknown scenario {', '.join(unknown)}; choose from {SCENARIOS}")
        changes["scenarios"] = chosen
    sizes = replace(sizes, **changes)
    check(sizes)
    return sizes


def check(sizes: Sizes) -> None:
    """Refuse sizes no run can honour."""
    if sizes.members < 1 or not 1 <= sizes.senders <= sizes.members:
        raise ValueError("need at least one member, and 1 ≤ senders ≤ members")
    if sizes.rate <= 0 or sizes.duration <= 0 or sizes.ceiling_duration <= 0:
        raise ValueError("rate and durations must be positive")
    if sizes.sampled > sizes.big_room:
        raise ValueError("cannot sample more long-polls than the big room has members")
    if sizes.idle < 1 or sizes.idle_procs < 1 or sizes.big_room < 1:
        raise ValueError("the big room and the idle scenario need at least one client")
    if not 1 <= sizes.poll_timeout <= 60:
        raise ValueError("the long-poll timeout must be between 1 and 60 s")


SOAK_PARTS = ("faults", "memory", "durability")


def add_soak_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``chinwag soak``."""
    parser.add_argument(
        "--only",
        default=",".join(SOAK_PARTS),
        metavar="PARTS",
        help=f"comma-separated parts to run, of {', '.join(SOAK_PARTS)} (default: all)",
    )
    parser.add_argument(
        "--faults",
        default="all",
        metavar="NAMES",
        help="comma-separated faults to run, e.g. kill-fanout,restart-nats (default: all)",
    )
    parser.add_argument(
        "--minutes", type=float, default=5.0, help="length of the memory soak (default: 5)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=15.0,
        help="seconds of load per durability choice and round (default: 15)",
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds over the durability choices (default: 2)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("soak-results.json"),
        help="where to write the JSON results (default: soak-results.json)",
    )
