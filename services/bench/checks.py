"""Every delivered item checked: gap-free seq, each send exactly once, per-target order.

Benchmark messages carry ``meta.bench = [run, sender, n, intended]``: the run
they belong to, the sender's index, the sender's own counter (1, 2, 3, …) and
the monotonic time the schedule meant to send it at. ``n = 0`` marks the end of
a scenario's load.

``verdict`` checks a benchmark, where every receiver gets every accepted send.
``check_history`` checks a fault run's history (in the spirit of Jepsen): each
send acknowledged, failed, or unknown because its outcome never came back,
and what every client received; see its docstring for the rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from services.bench.client import Item

END = 0
_SHOWN = 5  # problems listed per kind; the rest are counted


class DeliveryError(Exception):
    """Lost, duplicated or out-of-order deliveries."""


def mark(run: str, sender: int, n: int, intended: float) -> dict[str, Any]:
    """The ``meta`` of a benchmark message."""
    return {"bench": [run, sender, n, intended]}


def target_name(to: str, sender: str) -> str:
    """The target a line to ``to`` by ``sender`` belongs to: its channel, or the
    unordered pair of a DM's nicks."""
    if to.startswith("#"):
        return to.lower()
    return "|".join(sorted((sender.lower(), to.lower())))


def target_of(item: Item) -> str:
    """The target an item belongs to (``target_name``)."""
    return target_name(item.to, item.from_)


@dataclass
class Receiver:
    """What one member received during one scenario."""

    name: str
    run: str
    seen: int  # the seq it had seen when the scenario began, then the last one
    ids: set[str] = field(default_factory=set)
    last_n: dict[tuple[str, int], int] = field(default_factory=dict)  # (target, sender) → n
    last_pos: dict[str, int] = field(default_factory=dict)
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

    def key(self, item: Item, sender: int, n: int) -> str:
        """What identifies a send: here the event id its answer carried."""
        return item.id

    def arrived(self, key: str, at: float) -> None:
        """Called once per distinct send received."""

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
            key = self.key(item, sender, n)
            if key in self.ids:
                self.duplicated += 1
                self._problem(f"{key} delivered twice")
                continue
            self.ids.add(key)
            self.last_at = at
            self.arrived(key, at)
            if self.ended:
                self.out_of_order += 1
                self._problem(f"{key} after the end marker")
            if n == END:
                self.ended = True
                continue
            self._check_order(item, target_of(item), sender, n)
            self.delivered += 1
            self.latencies.append(at - intended)

    def _check_order(self, item: Item, target: str, sender: int, n: int) -> None:
        # One sender's sends to one target arrive in the order it made them, and
        # every client sees a target's items in the one order of its history (pos).
        last = self.last_n.get((target, sender), 0)
        if n <= last:
            self.out_of_order += 1
            self._problem(f"{target}: sender {sender} message {n} after {last}")
        else:
            self.last_n[(target, sender)] = n
        if item.pos:
            before = self.last_pos.get(target, 0)
            if item.pos <= before:
                self.out_of_order += 1
                self._problem(f"{target}: pos {item.pos} after {before}")
            else:
                self.last_pos[target] = item.pos


@dataclass
class HistoryReceiver(Receiver):
    """A fault run's receiver: sends are known by ``sender:n``, arrivals are timed.

    A send retried under a new event id would still count once per key, so a
    second delivery of it shows as a duplicate.
    """

    arrivals: dict[str, float] = field(default_factory=dict)

    def key(self, item: Item, sender: int, n: int) -> str:
        return send_key(sender, n)

    def arrived(self, key: str, at: float) -> None:
        self.arrivals[key] = at


def send_key(sender: int, n: int) -> str:
    """How a history names a send: its sender's index and counter."""
    return f"{sender}:{n}"


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
    return _compare(
        list(receivers), lambda _: sent, lambda _: set(), "never accepted", extra, len(sent)
    )


def _compare(
    receivers: Sequence[Receiver],
    expected: Callable[[Receiver], set[str]],
    possible: Callable[[Receiver], set[str]],
    stray: str,
    extra: Sequence[str],
    expected_total: int,
) -> Verdict:
    """What both checkers share: each receiver's own findings, then what it lacks
    (``expected`` of it) and what it has beyond ``expected`` and ``possible``."""
    problems = list(extra)
    lost = 0
    for receiver in receivers:
        problems.extend(receiver.problems)
        want = expected(receiver)
        missing = want - receiver.ids
        strays = receiver.ids - want - possible(receiver)
        lost += len(missing)
        if missing:
            problems.append(
                f"{receiver.name}: {len(missing)} lost, e.g. {sorted(missing)[:_SHOWN]}"
            )
        if strays:
            problems.append(
                f"{receiver.name}: {len(strays)} {stray}, e.g. {sorted(strays)[:_SHOWN]}"
            )
    return Verdict(
        len(receivers),
        expected_total,
        sum(r.delivered for r in receivers),
        lost,
        sum(r.duplicated for r in receivers),
        sum(r.out_of_order + r.bad_seq for r in receivers),
        problems,
    )


Outcome = Literal["acked", "failed", "unknown"]


@dataclass(frozen=True)
class Send:
    """One send of a history as its sender saw it: acknowledged (2xx), failed
    (refused, so it must never appear) or unknown (no answer came back)."""

    key: str
    target: str  # as ``target_of`` names it
    outcome: Outcome


def check_history(
    receivers: Iterable[Receiver],
    sends: Iterable[Send],
    recipients: Mapping[str, Collection[str]],
    extra: Sequence[str] = (),
) -> Verdict:
    """Check a fault run: ``recipients`` maps each target to the receivers that must get it.

    Every acknowledged send is in every recipient client's queue exactly once,
    in per-target order, with gap-free seq (``Receiver`` checks those as items
    arrive); an unknown send appears at most once, and in all of its
    recipients' queues or in none; nothing appears that was never sent, or
    that was sent to a target the client does not receive.
    """
    acked: dict[str, set[str]] = {}
    maybe: dict[str, set[str]] = {}
    problems: list[str] = []
    for send in sends:
        if send.outcome != "failed" and send.target not in recipients:
            problems.append(f"{send.key}: its target {send.target} has no recipients to check")
        if send.outcome == "acked":
            acked.setdefault(send.target, set()).add(send.key)
        elif send.outcome == "unknown":
            maybe.setdefault(send.target, set()).add(send.key)
    received = list(receivers)

    def union(by_target: dict[str, set[str]], receiver: Receiver) -> set[str]:
        targets = [t for t, names in recipients.items() if receiver.name in names]
        return set().union(*(by_target.get(t, set()) for t in targets))

    found = _compare(
        received,
        lambda r: union(acked, r),
        lambda r: union(maybe, r),
        "never sent to it",
        extra,
        sum(len(keys) for keys in acked.values()),
    )
    holders: Counter[str] = Counter()
    for receiver in received:
        holders.update(receiver.ids & union(maybe, receiver))
    for target, keys in maybe.items():
        everyone = len(recipients.get(target, ()))
        partial = sorted(k for k in keys if 0 < holders[k] < everyone)
        if partial:
            found.problems.append(
                f"{target}: {len(partial)} unknown sends reached only some recipients, "
                f"e.g. {partial[:_SHOWN]}"
            )
    found.problems.extend(problems[:_SHOWN])
    return found
