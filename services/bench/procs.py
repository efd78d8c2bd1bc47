"""CPU seconds and peak RSS per process while a scenario runs, sampled with psutil.

Processes are grouped by role: each service, PostgreSQL (the postmaster and
its backends, whose RSS double-counts shared buffers), nats-server, the load
generator itself and its helper processes. A sampling thread watches every
descendant of this process, so the figures cover whatever ``chinwag up``
started, and nothing when the servers are external.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import psutil

from services.up import SERVICES

CLIENT_ROLES = ("loadgen", "bare-asgi")  # what drives or stands beside the system
HELPERS = {"services.bench.worker": "loadgen-worker", "services.bench.bare": "bare-asgi"}


def role_of(process: psutil.Process, own_pid: int, own_role: str = "loadgen") -> str | None:
    """The role a process plays in the run, or None for one that is not ours to report."""
    if process.pid == own_pid:
        return own_role
    try:
        argv = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if not argv:
        return None
    program = os.path.basename(str(argv[0]))
    if program.startswith("postgres") or program.startswith("postmaster"):
        return "postgres"
    if program.startswith("nats-server"):
        return "nats-server"
    for i, arg in enumerate(argv[:-1]):
        if arg == "services.cli" and argv[i + 1] in SERVICES:
            return str(argv[i + 1])
    for arg in argv:
        for module, role in HELPERS.items():
            if arg.startswith(module):
                return role
    if process.name().startswith("postgres"):  # backends rename themselves
        return "postgres"
    return None


@dataclass
class RoleUsage:
    """What the processes of one role used during a scenario."""

    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    processes: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "cpu_s": round(self.cpu_s, 2),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "processes": self.processes,
        }


@dataclass
class _Tracked:
    process: psutil.Process
    role: str
    first_cpu: float
    last_cpu: float


@dataclass
class Usage:
    """Filled in while a scenario runs; complete once its ``measure`` block exits."""

    roles: dict[str, RoleUsage] = field(default_factory=dict)

    def as_dict(self) -> dict[str, dict[str, float | int]]:
        return {role: usage.as_dict() for role, usage in sorted(self.roles.items())}

    def cpu_per(self, count: int) -> dict[str, float]:
        """CPU µs per unit of work (a delivery) by role, and ``servers``: every role but
        the load generator's. Unlike latency, it hardly moves with the machine's load."""
        if count <= 0:
            return {}
        found = {role: round(u.cpu_s / count * 1e6, 1) for role, u in sorted(self.roles.items())}
        servers = sum(u.cpu_s for r, u in self.roles.items() if not r.startswith(CLIENT_ROLES))
        found["servers"] = round(servers / count * 1e6, 1)
        return found


FAMILY_EVERY = 2.0  # seconds between two listings of the processes sampled


class Sampler:
    """Samples this process and its descendants every ``interval`` seconds (a process
    born in between is found within ``FAMILY_EVERY`` s, and counted from zero)."""

    def __init__(self, own_role: str = "loadgen", interval: float = 0.25) -> None:
        self.own = psutil.Process()
        self.own_role = own_role
        self.interval = interval

    def pids(self, role: str) -> list[int]:
        """The pids that play ``role`` right now."""
        return [p.pid for p, r in self._processes() if r == role]

    def rss(self, role: str) -> int:
        """Bytes of RSS of the processes that play ``role`` right now."""
        return self.rss_by_role().get(role, 0)

    def rss_by_role(self) -> dict[str, int]:
        """Bytes of RSS of each role's processes right now, from one listing of them."""
        totals: defaultdict[str, int] = defaultdict(int)
        for process, role in self._processes():
            with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                totals[role] += process.memory_info().rss
        return dict(totals)

    def _processes(self) -> Iterator[tuple[psutil.Process, str]]:
        try:
            family = [self.own, *self.own.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in family:
            role = role_of(process, self.own.pid, self.own_role)
            if role is not None:
                yield process, role

    @contextmanager
    def measure(self) -> Iterator[Usage]:
        """Sample until the block exits; the ``Usage`` yielded is filled in then."""
        usage = Usage()
        tracked: dict[int, _Tracked] = {}
        peaks: defaultdict[str, float] = defaultdict(float)
        started = time.time()
        stop = threading.Event()
        lock = threading.Lock()

        family: list[tuple[psutil.Process, str]] = []
        listed = 0.0

        def sample(first: bool) -> None:
            nonlocal family, listed
            # Listing the family reads every process of the machine: not at each sample.
            if first or time.monotonic() - listed > FAMILY_EVERY:
                family, listed = list(self._processes()), time.monotonic()
            rss: defaultdict[str, int] = defaultdict(int)
            for process, role in family:
                try:
                    with process.oneshot():
                        times = process.cpu_times()
                        cpu = times.user + times.system
                        resident = process.memory_info().rss
                        born = process.create_time()
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                rss[role] += resident
                seen = tracked.get(process.pid)
                if seen is None or seen.role != role:
                    # A process born during the scenario counts from zero.
                    base = cpu if first or born < started else 0.0
                    tracked[process.pid] = _Tracked(process, role, base, cpu)
                else:
                    seen.last_cpu = cpu
            with lock:
                for role, total in rss.items():
                    peaks[role] = max(peaks[role], total / 2**20)

        def loop() -> None:
            while not stop.wait(self.interval):
                sample(first=False)

        sample(first=True)
        thread = threading.Thread(target=loop, name="bench-sampler", daemon=True)
        thread.start()
        try:
            yield usage
        finally:
            stop.set()
            thread.join()
            listed = 0.0  # the last sample lists the family again
            sample(first=False)
            for item in tracked.values():
                found = usage.roles.setdefault(item.role, RoleUsage())
                found.cpu_s += max(0.0, item.last_cpu - item.first_cpu)
                found.processes += 1
            for role, peak in peaks.items():
                usage.roles.setdefault(role, RoleUsage()).peak_rss_mb = peak
