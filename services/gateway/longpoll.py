"""Waiting long-polls, woken by fanout's wake messages.

A poll registers its waiter *before* it reads the queue, so a wake that lands
between the read and the wait still finds it: no lost wake-ups. When a wake
carries every item a waiter lacks, it leaves the waiter its answer, and the
poll needs no second read of the queue.

The hub also keeps each polling client's *tip*: a seq its queue holds nothing
past, except items whose wakes have yet to arrive. A read of the queue sets it
(the waiter was registered before, so every later commit's wake reaches it),
and so does every wake seen while the NATS link stays up; a poll that is
level with its client's tip needs no read before it parks. Anything that may
have lost a wake (a disconnect, a dropped message, a fanout that took over a
partition or found another owner had committed on it) forgets every tip, and a
poll that times out forgets its own: a lost wake delays an item by one poll's
timeout at most, as it did before. Tips are trusted only while wakes are heard:
fanout workers send a heartbeat each second, and after ``STALE`` seconds of
silence, or from a disconnect until the link is back, the hub uses no tip and
learns none, and parked polls read their queues again; polls read as they did
before tips. Each worker numbers its wake messages, so a message of one worker
lost on the way (a gap in its numbers), or one worker falling silent while
others are heard, forgets every tip and makes parked polls read as well. With
the tip, the hub keeps the client's newest items that wakes carried (``KEPT``
at most, shared between clients): a poll that finds all it lacks there is
answered without reading the queue either.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import msgspec
import structlog
from prometheus_client import Gauge

from libs import telemetry
from libs.items import Wake, page_json
from libs.lifecycle import sleep_unless

log = structlog.get_logger(__name__)

_decoder = msgspec.json.Decoder(Wake)

KEPT = 32  # carried items kept per client with a known tip
STALE = 3.0  # seconds without a wake or heartbeat after which no tip is trusted

HEARD = Gauge(
    "chinwag_gateway_wakes_heard",
    "1 while wakes or fanout's heartbeats reach this gateway; 0 after a disconnect or a silence",
)


class _Tip:
    """What this process knows of a client's queue: nothing past ``seq`` but items
    whose wakes are on their way, and the items ``first``… as wakes carried them,
    while the hub's ``generation`` was ``generation``."""

    __slots__ = ("first", "generation", "items", "seq")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.first = seq + 1
        self.items: list[bytes] = []
        self.generation = 0

    def carried(self, seq: int, items: list[bytes], generation: int) -> None:
        """A wake carried the client's items up to ``seq``."""
        first = seq - len(items) + 1
        if first != self.first + len(self.items) or generation != self.generation:
            self.first, self.items = first, []  # not contiguous, or rewritten since
            self.generation = generation
        self.items.extend(items)
        if len(self.items) > KEPT:
            self.first += len(self.items) - KEPT
            del self.items[:-KEPT]

    def drop(self) -> None:
        """Keep no item: what a poll lacks is read."""
        self.first, self.items = self.seq + 1, []

    def page(self, after: int, limit: int) -> bytes | None:
        """The answer to a poll after ``after``, when every item it lacks is kept."""
        end = min(self.seq, after + limit)
        if after < self.first - 1 or end > self.first + len(self.items) - 1:
            return None
        return page_json(
            self.items[after + 1 - self.first : end + 1 - self.first], after + 1, after
        )


class Waiter:
    def __init__(self, client_id: str, after: int, limit: int = 100) -> None:
        self.client_id = client_id
        self.after = after
        self.limit = limit
        self.event = asyncio.Event()
        self.woken_at: float | None = None  # perf_counter() of the wake that set the event
        self.woken_by: telemetry.Context | None = None  # the wake's trace context, when tracing
        self.page: bytes | None = None  # the answer, when the wake carried all of it
        self.seen = -1  # the highest seq of the wakes for this client since registration
        self.epoch = 0  # the hub's epoch at registration: tips learned later hold only within it
        self.rechecked = False  # woken to read the queue again, wakes may have been lost

    async def wait(self, timeout: float) -> bool:
        """True when woken, False on timeout."""
        if self.event.is_set():
            return True
        try:
            async with asyncio.timeout(timeout):  # no task of its own, as wait_for makes
                await self.event.wait()
        except TimeoutError:
            return False
        return True


class WaiterHub:
    """The long-polls this gateway process holds, by client id."""

    def __init__(self, max_tips: int = 200_000) -> None:
        self._waiters: defaultdict[str, set[Waiter]] = defaultdict(set)
        self._tips: dict[str, _Tip] = {}
        self.max_tips = max_tips
        self.epoch = 0  # moves on whenever wakes may have been lost
        self.generation = 0  # moves on when items are rewritten: older kept items are stale
        self.stale = False  # True while wakes may not reach this process: no tip is trusted
        self.heard = time.monotonic()  # of the last wake or heartbeat (or of subscribing)
        self._origins: dict[str, tuple[int, float]] = {}  # worker → last number heard, when
        HEARD.set(1)
        self.closing = False

    def register(self, client_id: str, after: int, limit: int = 100) -> Waiter:
        waiter = Waiter(client_id, after, limit)
        waiter.epoch = self.epoch
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
            if seq > waiter.seen:
                waiter.seen = seq
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

    def tip(self, client_id: str) -> int | None:
        """A seq the client's queue holds nothing past but items whose wakes are on
        their way, or None when this process does not know one."""
        tip = None if self.stale else self._tips.get(client_id)
        return None if tip is None else tip.seq

    def kept(self, client_id: str, after: int, limit: int) -> bytes | None:
        """The answer to a poll past ``after`` from carried items alone, when they hold
        every item up to the tip (or ``limit`` of them); None otherwise."""
        tip = None if self.stale else self._tips.get(client_id)
        if tip is None or tip.seq <= after or tip.generation != self.generation:
            return None
        return tip.page(after, limit)

    def learn(self, waiter: Waiter, bound: int) -> None:
        """A poll read its client's queue after registering ``waiter`` and found nothing
        past ``bound`` (or skipped the read, level with the tip)."""
        if waiter.epoch != self.epoch or self.stale:
            return  # wakes may have been lost since the read
        seq = max(bound, waiter.seen)
        known = self._tips.get(waiter.client_id)
        if known is None:
            if len(self._tips) >= self.max_tips:
                self._tips.clear()
            self._tips[waiter.client_id] = _Tip(seq)
        elif seq > known.seq:
            known.seq = seq

    def forget(self, client_id: str | None = None) -> None:
        """Wakes may have been lost: for this client, or (None) for every client."""
        if client_id is not None:
            self._tips.pop(client_id, None)
            return
        self._tips.clear()
        self.epoch += 1

    def lost(self) -> None:
        """Wakes cannot reach this process now (the NATS link is down): trust no tip
        until they are heard again."""
        self.stale = True
        HEARD.set(0)
        self.forget()

    def check(self, now: float) -> None:
        """Called every second: silence past ``STALE`` means wakes may be lost without
        a disconnect to say so; parked polls read their queues again. So does one
        worker's silence while others are heard: its wakes may be what is lost."""
        silent = [o for o, (_, at) in self._origins.items() if now - at > STALE]
        for origin in silent:
            del self._origins[origin]
        if not self.stale and now - self.heard > STALE:
            log.warning("no wakes heard; long-polls read their queues", silent_s=now - self.heard)
            self.stale = True
            HEARD.set(0)
            self.recheck()
        elif silent and not self.stale:
            log.warning("a fanout worker fell silent; long-polls read their queues", workers=silent)
            self.recheck()

    async def watch(self, stop: asyncio.Event) -> None:
        """``check`` every second until ``stop``."""
        while not stop.is_set():
            self.check(time.monotonic())
            await sleep_unless(stop, 1.0)

    def recheck(self) -> None:
        """Wakes may have been missed (the NATS link was down): every parked poll reads
        its queue again now, answering with what it finds, or else waiting on."""
        self.forget()
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.rechecked = True
                waiter.event.set()

    def close(self) -> None:
        """Shutting down: answer every parked poll now, and every later one at once."""
        self.closing = True
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.event.set()

    def heard_now(self, now: float) -> None:
        """A wake or heartbeat arrived: wakes reach this process. After a silence,
        wakes of the silent time may be lost: parked polls read again."""
        self.heard = now
        if self.stale:
            self.stale = False
            HEARD.set(1)
            self.recheck()

    def on_wake_message(self, data: bytes, now: float | None = None) -> None:
        """A message on the wake subject, heard at monotonic time ``now`` (default: now)."""
        try:
            wake = _decoder.decode(data)
        except msgspec.DecodeError:
            log.warning("undecodable wake message")
            return
        now = time.monotonic() if now is None else now
        self.heard_now(now)
        missed = self._missed(wake, now)
        if wake.recheck:
            self.recheck()
            return
        if wake.rewrote:  # a kept item may be any client's: every kept item is stale
            self.generation += 1
        carried = len(wake.picks) == len(wake.clients) and bool(wake.items)
        items = [bytes(item) for item in wake.items] if carried else None
        waiters, tips = self._waiters, self._tips
        for index, (client_id, seq) in enumerate(wake.clients):
            tip = tips.get(client_id)
            if tip is not None and seq > tip.seq:
                tip.seq = seq
                if items is not None:
                    tip.carried(seq, [items[i] for i in wake.picks[index]], self.generation)
                else:  # a batch too big to carry
                    tip.drop()
            if client_id in waiters:
                self.wake(client_id, seq, wake.picks[index] if carried else None, items)
        if missed:  # after the wake's own answers: its waiters need no read
            self.recheck()

    def _missed(self, wake: Wake, now: float) -> bool:
        """Whether wakes of ``wake``'s worker may have been lost before it: its number
        does not follow the last one heard, or it is the first heard and not its
        worker's first."""
        if not wake.origin:
            return False  # unnumbered
        last = self._origins.get(wake.origin)
        self._origins[wake.origin] = (wake.number, now)
        missed = wake.number > 1 if last is None else wake.number != last[0] + 1
        if missed:
            log.info("wakes of a fanout worker missed", worker=wake.origin, number=wake.number)
        return missed

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())
