"""Every delivered item checked: gap-free seq, each sent id exactly once, per-sender order.

Benchmark messages carry ``meta.bench = [run, sender, n, intended]``: the run
they belong to, the sender's index, the sender's own counter (1, 2, 3, …) and
the monotonic time the schedule meant to send it at. ``n = 0`` marks the end of
a scenario's load.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.bench.client import Item

END = 0
_SHOWN = 5  # problems listed per kind; the rest are counted


class DeliveryError(Exception):
    """Lost, duplicated or out-of-order deliveries."""


def mark(run: str, sender: int, n: int, intended: float) -> dict[str, Any]:
    """The ``meta`` of a benchmark message."""
    return {"bench": [run, sender, n, intended]}


@dataclass
class Receiver:
    """What one member received during one scenario."""

    name: str
    run: str
    seen: int  # the seq it had seen when the scenario began, then the last one
    ids: set[str] = field(default_factory=set)
    last_n: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    ended: bool = False
    delivered: int = 0
    last_at: float = 0.0  # when the last item of this run arrived
    other: int = 0  # items that are not this run's messages (JOINs before the load …)
    bad_seq: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    problems: list[str] = field(default_factory=list)

    def _problem(self, text: str) -> None:
        if len(self.problems) < _SHOWN:
            self.problems.append(f"{self.name}: {text}")

    def accept(self, items: Sequence[Item], at: float) -> None:
        """Check a page of items received at monotonic time ``at``."""
        for item in items:
            if item.seq != self.seen + 1:
                self.bad_seq += 1
                self._problem(f"seq {item.seq} after {self.seen}")
            self.seen = item.seq
            tag = item.meta.get("bench") if item.meta else None
            if not isinstance(tag, list) or len(tag) != 4:
                self.other += 1
                continue
            run, sender, n, intended = tag
            if run != self.run:
                self.out_of_order += 1
                self._problem(f"item {item.id} of another run {run!r}")
                continue
            if item.id in self.ids:
                self.duplicated += 1
                self._problem(f"{item.id} delivered twice")
                continue
            self.ids.add(item.id)
            self.last_at = at
            if self.ended:
                self.out_of_order += 1
                self._problem(f"{item.id} after the end marker")
            if n == END:
                self.ended = True
                continue
            last = self.last_n.get(sender, 0)
            if n != last + 1:
                self.out_of_order += 1
                self._problem(f"sender {sender} message {n} after {last}")
            self.last_n[sender] = max(last, n)
            self.delivered += 1
            self.latencies.append(at - intended)


@dataclass
class Verdict:
    """The outcome of a scenario's checks, as reported."""

    receivers: int
    expected: int  # distinct items each receiver must get (the end marker included)
    delivered: int
    lost: int
    duplicated: int
    out_of_order: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "receivers": self.receivers,
            "expected_per_receiver": self.expected,
            "delivered": self.delivered,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "out_of_order": self.out_of_order,
            "problems": self.problems[: _SHOWN * 4],
        }


def verdict(receivers: Iterable[Receiver], sent: set[str], extra: Sequence[str] = ()) -> Verdict:
    """Compare what each receiver got with what the gateway accepted (``sent``).

    ``extra`` holds problems found elsewhere (a send refused, a poll that failed).
    """
    problems = list(extra)
    lost = duplicated = out_of_order = delivered = count = 0
    for receiver in receivers:
        count += 1
        delivered += receiver.delivered
        duplicated += receiver.duplicated
        out_of_order += receiver.out_of_order + receiver.bad_seq
        problems.extend(receiver.problems)
        missing = sent - receiver.ids
        unknown = receiver.ids - sent
        lost += len(missing)
        if missing:
            problems.append(
                f"{receiver.name}: {len(missing)} lost, e.g. {sorted(missing)[:_SHOWN]}"
            )
        if unknown:
            problems.append(
                f"{receiver.name}: {len(unknown)} never accepted, e.g. {sorted(unknown)[:_SHOWN]}"
            )
    return Verdict(count, len(sent), delivered, lost, duplicated, out_of_order, problems)
