"""Mixed traffic beside the checked workload: sessions come and go, and use every kind of command.

Each churner loops: a new session with a password and a second client, JOIN,
TOPIC, PRIVMSG and NOTICE to its channel, AWAY and back, WHOIS, NAMES, LIST, a
history page, PART, both clients read their queues, then both log out (the
session ends and QUITs). Churners use channels of their own, so the checked
workload's queues see none of it; each churner's channel ends with its PART
and is made afresh by the next JOIN. Every answer must be a success.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp

from libs.lifecycle import sleep_unless
from services.bench.client import Api, BenchError, Member

PASSWORD = "churn-secret"
T = TypeVar("T")


@dataclass
class Churn:
    """Churners on one gateway, and what they saw."""

    run: str
    api: Api
    churners: int = 3
    cycles: int = 0
    requests: int = 0
    failures: Counter[str] = field(default_factory=Counter)

    async def run_until(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self._churn(i, stop) for i in range(self.churners)))

    async def _churn(self, index: int, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                await self._cycle(f"x{self.run}{index}n{n}", f"#x{self.run}{index}")
                self.cycles += 1
            except (BenchError, aiohttp.ClientError, OSError, TimeoutError) as error:
                self.failures[str(error)[:120]] += 1
                await sleep_unless(stop, 0.5)

    async def _cycle(self, nick: str, channel: str) -> None:
        members: list[Member] = []
        try:
            await self._cycle_of(nick, channel, members)
        finally:  # a cycle that failed half-way leaves no line open either
            for member in members:
                self.api.hang_up(member)

    async def _cycle_of(self, nick: str, channel: str, members: list[Member]) -> None:
        """One session's life; ``members`` gets each client as it is made."""
        api = self.api
        first = await self._count(api.create_session(nick, PASSWORD))
        members.append(first)
        second = await self._count(api.login(nick, PASSWORD))
        members.append(second)
        commands: list[tuple[str, str | None, list[str] | None, list[str] | None]] = [
            ("JOIN", channel, None, None),
            ("TOPIC", channel, [f"{nick} was here"], None),
            ("PRIVMSG", channel, [f"hello from {nick}"], None),
            ("NOTICE", channel, ["a notice"], None),
            ("AWAY", None, ["brb"], None),
            ("AWAY", None, None, None),
            ("WHOIS", None, None, [nick]),
            ("NAMES", channel, None, None),
            ("LIST", None, None, None),
        ]
        for command, to, body, params in commands:
            await self._count(api.command(first, command, to=to, body=body, params=params))
        await self._get(first, "/api/v1/history", {"target": channel, "limit": "20"})
        await self._count(api.command(first, "PART", to=channel))
        for member in (first, second):
            page = await self._count(api.poll(member, 0, 0))
            await self._count(api.poll(member, page.last_seq, 0))  # acknowledges what it read
        for member in (first, second):
            await self._post(member, "/api/v1/logout")

    async def _count(self, call: Awaitable[T]) -> T:
        self.requests += 1
        return await call

    async def _get(self, member: Member, path: str, params: dict[str, str]) -> None:
        self.requests += 1
        async with self.api.http.get(
            f"{self.api.base_url}{path}", params=params, headers=member.headers
        ) as response:
            data = await response.read()
            if response.status != 200:
                raise BenchError(f"GET {path}: {response.status} {data[:200]!r}")

    async def _post(self, member: Member, path: str) -> None:
        self.requests += 1
        async with self.api.http.post(
            f"{self.api.base_url}{path}", headers=member.headers
        ) as response:
            data = await response.read()
            if response.status != 200:
                raise BenchError(f"POST {path}: {response.status} {data[:200]!r}")
