"""Waiting long-polls, woken by fanout's wake messages.

A poll registers its waiter *before* it reads the queue, so a wake that lands
between the read and the wait still finds it: no lost wake-ups. When a wake
carries every item a waiter lacks, it leaves the waiter its answer, and the
poll needs no second read of the queue.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import msgspec
import structlog

from libs import telemetry
from libs.items import Wake, page_json

log = structlog.get_logger(__name__)

_decoder = msgspec.json.Decoder(Wake)


class Waiter:
    def __init__(self, client_id: str, after: int, limit: int = 100) -> None:
        self.client_id = client_id
        self.after = after
        self.limit = limit
        self.event = asyncio.Event()
        self.woken_at: float | None = None  # perf_counter() of the wake that set the event
        self.woken_by: telemetry.Context | None = None  # the wake's trace context, when tracing
        self.page: bytes | None = None  # the answer, when the wake carried all of it

    async def wait(self, timeout: float) -> bool:
        """True when woken, False on timeout."""
        if self.event.is_set():
            return True
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return False
        return True


class WaiterHub:
    """The long-polls this gateway process holds, by client id."""

    def __init__(self) -> None:
        self._waiters: defaultdict[str, set[Waiter]] = defaultdict(set)
        self.closing = False

    def register(self, client_id: str, after: int, limit: int = 100) -> Waiter:
        waiter = Waiter(client_id, after, limit)
        if self.closing:
            waiter.event.set()
        self._waiters[client_id].add(waiter)
        return waiter

    def unregister(self, waiter: Waiter) -> None:
        waiters = self._waiters.get(waiter.client_id)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del self._waiters[waiter.client_id]

    def wake(
        self,
        client_id: str,
        seq: int,
        picks: list[int] | None = None,
        items: list[bytes] | None = None,
    ) -> None:
        """The client's queue now reaches ``seq``; ``picks`` index its newest items in
        ``items``, when the wake carried them."""
        for waiter in self._waiters.get(client_id, ()):
            if seq > waiter.after and not waiter.event.is_set():
                if picks and items is not None:
                    first = seq - len(picks) + 1  # the seq of picks[0]
                    if first <= waiter.after + 1:
                        wanted = picks[waiter.after + 1 - first :][: waiter.limit]
                        waiter.page = page_json(
                            [items[i] for i in wanted], waiter.after + 1, waiter.after
                        )
                waiter.woken_at = time.perf_counter()
                waiter.woken_by = telemetry.current()
                waiter.event.set()

    def recheck(self) -> None:
        """Wakes may have been missed (the NATS link was down): every parked poll reads
        its queue again now, answering with what it finds."""
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.event.set()

    def close(self) -> None:
        """Shutting down: answer every parked poll now, and every later one at once."""
        self.closing = True
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.event.set()

    def on_wake_message(self, data: bytes) -> None:
        try:
            wake = _decoder.decode(data)
        except msgspec.DecodeError:
            log.warning("undecodable wake message")
            return
        carried = len(wake.picks) == len(wake.clients) and bool(wake.items)
        items = [bytes(item) for item in wake.items] if carried else None
        waiters = self._waiters
        for index, (client_id, seq) in enumerate(wake.clients):
            if client_id in waiters:
                self.wake(client_id, seq, wake.picks[index] if carried else None, items)

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())
