"""The fault runs' workload: senders that retry with their idempotency key, clients
that long-poll, and the history they record for ``checks.check_history``.

A handful of users (some with two clients) share a few channels and DMs. Each
user sends, one command at a time, to its targets in turn. A send is retried
with the same ``Idempotency-Key`` (on another gateway when there are several)
while its outcome is unknown: a dropped connection, a timeout, a 5xx, a 409
(the key still in flight) or a 429. It ends acknowledged (200), failed (any
other 4xx) or unknown (no answer within ``retry_for`` seconds). Every client
long-polls its queue from its last seq, moving to another gateway when one
fails, and records when each send reached it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec

from libs.lifecycle import sleep_unless
from services.bench.checks import (
    HistoryReceiver,
    Outcome,
    Send,
    Verdict,
    check_history,
    mark,
    send_key,
    target_name,
)
from services.bench.client import Api, BenchError, Member, answer_id

PASSWORD = "fault-run-secret"
_RETRYABLE = {408, 409, 425, 429}
_UNREACHABLE = (aiohttp.ClientError, OSError, TimeoutError)


@dataclass
class Op:
    """One send: what it was, when it started and how it ended."""

    sender: int
    n: int
    target: str  # as ``checks.target_of`` names it
    to: str
    started: float
    answered: float | None = None
    outcome: Outcome = "unknown"
    attempts: int = 0

    @property
    def key(self) -> str:
        return send_key(self.sender, self.n)


@dataclass
class User:
    nick: str
    clients: list[Member]
    targets: list[str] = field(default_factory=list)  # what it sends to: channels and nicks


@dataclass
class Shape:
    """How big the workload is and how it behaves."""

    users: int = 4
    two_clients: int = 2  # of the users, how many have a second client
    channels: int = 3
    interval: float = 0.04  # seconds between one sender's sends
    retry_for: float = 30.0  # seconds a send is retried before its outcome stays unknown
    attempt_timeout: float = 10.0  # seconds one attempt may take
    poll_timeout: float = 10.0  # seconds a long-poll waits


@dataclass
class Workload:
    """The users, their clients and targets, and the history of a run."""

    run: str
    gateways: list[str]
    shape: Shape
    users: list[User] = field(default_factory=list)
    members: dict[str, list[str]] = field(default_factory=dict)  # channel → member nicks
    ops: list[Op] = field(default_factory=list)
    receivers: dict[str, HistoryReceiver] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)  # answers other than 200
    poll_failures: int = 0
    attempts_at: Counter[str] = field(default_factory=Counter)  # gateway → attempts under way
    _apis: list[Api] = field(default_factory=list)
    _listeners: list[asyncio.Task[None]] = field(default_factory=list)

    async def setup(self, http: aiohttp.ClientSession) -> None:
        """Make the users, their clients and channels through the API."""
        self._apis = [Api(url, http) for url in self.gateways]
        api = self._apis[0]
        shape = self.shape
        for i in range(shape.users):
            nick = f"u{self.run}{i}"
            second = i < shape.two_clients  # a password only where a login needs one
            first = await api.create_session(nick, PASSWORD if second else None)
            clients = [first]
            if second:
                clients.append(await api.login(nick, PASSWORD))
            self.users.append(User(nick, clients))
        for c in range(shape.channels):
            channel = f"#c{self.run}{c}"
            # Every user is in the first channel; the others leave one user out each.
            nicks = [u.nick for i, u in enumerate(self.users) if c == 0 or i % shape.channels != c]
            for user in self.users:
                if user.nick in nicks:
                    await api.command(user.clients[0], "JOIN", to=channel)
                    user.targets.append(channel)
            self.members[channel] = nicks
        for i, user in enumerate(self.users):
            user.targets.append(self.users[(i + 1) % len(self.users)].nick)
        for user in self.users:
            for k, client in enumerate(user.clients):
                # What each client already has (its JOINs …) is not the run's concern.
                page = await api.poll(client, 0, 0)
                client.seen = page.last_seq
                name = f"{user.nick}/{k}"
                self.receivers[name] = HistoryReceiver(name, self.run, client.seen)

    @property
    def recipients(self) -> dict[str, list[str]]:
        """Each target's receivers: member clients of a channel, both sides of a DM."""
        names = {u.nick: [f"{u.nick}/{k}" for k in range(len(u.clients))] for u in self.users}
        found: dict[str, list[str]] = {}
        for channel, nicks in self.members.items():
            found[channel.lower()] = [r for nick in nicks for r in names[nick]]
        for user in self.users:
            for target in user.targets:
                if not target.startswith("#"):
                    found[target_name(target, user.nick)] = names[user.nick] + names[target]
        return found

    def listen(self) -> None:
        """Start every client's long-poll loop."""
        for user in self.users:
            for k in range(len(user.clients)):
                self._listeners.append(asyncio.create_task(self._listen(user, k)))

    async def send_until(self, stop: asyncio.Event) -> None:
        """Every user sends until ``stop`` is set (a send under way finishes first)."""
        await asyncio.gather(*(self._send_loop(i, stop) for i in range(len(self.users))))

    async def drain(self, deadline: float) -> bool:
        """Wait until every acknowledged send reached all its recipients; stop listening.

        Returns whether they all arrived within ``deadline`` seconds.
        """
        expected = self._expected()
        end = time.monotonic() + deadline
        complete = False
        while time.monotonic() < end:
            if all(keys <= self.receivers[name].ids for name, keys in expected.items()):
                complete = True
                break
            await asyncio.sleep(0.05)
        await self._stop_listening()
        await self._last_look()
        await self.close()
        return complete

    async def _stop_listening(self) -> None:
        for task in self._listeners:
            task.cancel()
        await asyncio.gather(*self._listeners, return_exceptions=True)
        self._listeners.clear()

    async def close(self) -> None:
        """Stop listening and close every member's lines (``drain`` ends with it; a
        run that fails before draining calls it itself)."""
        await self._stop_listening()
        for api in self._apis:
            api.close()

    def verdict(self) -> Verdict:
        sends = [Send(op.key, op.target, op.outcome) for op in self.ops]
        return check_history(self.receivers.values(), sends, self.recipients)

    def _expected(self) -> dict[str, set[str]]:
        recipients = self.recipients
        expected: dict[str, set[str]] = {name: set() for name in self.receivers}
        for op in self.ops:
            if op.outcome == "acked":
                for name in recipients[op.target]:
                    expected[name].add(op.key)
        return expected

    async def _send_loop(self, index: int, stop: asyncio.Event) -> None:
        user = self.users[index]
        client = user.clients[0]
        n = 0
        while not stop.is_set():
            n += 1
            to = user.targets[n % len(user.targets)]
            target = target_name(to, user.nick)
            op = Op(index, n, target, to, time.monotonic())
            self.ops.append(op)
            payload: dict[str, Any] = {
                "command": "PRIVMSG",
                "to": to,
                "body": [f"{user.nick} {n}"],
                "meta": mark(self.run, index, n, op.started),
            }
            await self._send(op, client, payload, f"{self.run}-{index}-{n}", first=index)
            await sleep_unless(stop, self.shape.interval)

    async def _send(
        self, op: Op, client: Member, payload: dict[str, Any], key: str, first: int
    ) -> None:
        gateway = first
        delay = 0.05
        while True:
            api = self._apis[gateway % len(self._apis)]
            op.attempts += 1
            self.attempts_at[api.base_url] += 1
            try:
                status, data = await api.attempt(client, payload, key, self.shape.attempt_timeout)
            except _UNREACHABLE as error:
                status, data = 0, type(error).__name__.encode()
            finally:
                self.attempts_at[api.base_url] -= 1
            if status == 200:
                op.outcome, op.answered = "acked", time.monotonic()
                answer_id(data)  # a 200 carries the event's id
                return
            self.statuses[str(status or data.decode())] += 1
            if 400 <= status < 500 and status not in _RETRYABLE:
                op.outcome, op.answered = "failed", time.monotonic()
                return
            if status == 0 or status >= 500:
                gateway += 1  # this gateway may be down: try the next
            if time.monotonic() - op.started > self.shape.retry_for:
                return  # unknown: it may or may not have reached the stream
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def _listen(self, user: User, k: int) -> None:
        client = user.clients[k]
        receiver = self.receivers[f"{user.nick}/{k}"]
        gateway = k
        while True:
            api = self._apis[gateway % len(self._apis)]
            try:
                page = await api.poll(client, client.seen, self.shape.poll_timeout)
            except (BenchError, msgspec.DecodeError, *_UNREACHABLE):
                self.poll_failures += 1
                gateway += 1
                await asyncio.sleep(0.1)
                continue
            receiver.accept(page.messages, time.monotonic())
            client.seen = page.last_seq

    async def _last_look(self) -> None:
        """One more read of every queue: anything arriving late (a duplicate) shows."""
        for user in self.users:
            for k, client in enumerate(user.clients):
                for api in self._apis:
                    with contextlib.suppress(BenchError, msgspec.DecodeError, *_UNREACHABLE):
                        page = await api.poll(client, client.seen, 0)
                        self.receivers[f"{user.nick}/{k}"].accept(page.messages, time.monotonic())
                        client.seen = page.last_seq
                        break

    async def in_flight(self, gateway: str, deadline: float = 10.0) -> bool:
        """Wait until a send is under way at ``gateway``; False if none was in time."""
        end = time.monotonic() + deadline
        while self.attempts_at[gateway] <= 0:
            if time.monotonic() > end:
                return False
            await asyncio.sleep(0.001)
        return True

    def delivered_at(self, op: Op) -> float | None:
        """When ``op`` had reached every recipient client; None if some never got it."""
        times = [self.receivers[name].arrivals.get(op.key) for name in self.recipients[op.target]]
        if any(t is None for t in times):
            return None
        return max(t for t in times if t is not None)


def recovery(workload: Workload, repaired: float) -> float | None:
    """Seconds from ``repaired`` until the system had caught up.

    Caught up: every send started before the repair and acknowledged has
    reached all its recipients, and a send started after the repair has been
    acknowledged and delivered to all of its own. None when that never happened.
    """
    before: list[float] = []
    after: list[float] = []
    for op in workload.ops:
        if op.outcome != "acked":
            continue
        done = workload.delivered_at(op)
        if op.started < repaired:
            if done is None:
                return None
            before.append(done)
        elif done is not None:
            after.append(done)
    if not after:
        return None
    return max(0.0, max([*before, min(after)]) - repaired)


def outcomes(ops: Sequence[Op]) -> Counter[str]:
    return Counter(op.outcome for op in ops)
