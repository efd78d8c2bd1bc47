"""Ephemeral notices (typing): over core NATS, never stored, never in the gap-free queue.

A gateway that accepts a TYPING publishes one notice with the sessions it is
for on ``<prefix>.ephemeral``; every gateway hears it and keeps it for the
clients of those sessions that poll it, until their next long-poll answer
carries it in its ``ephemeral`` field. A parked poll is answered at once.
Each notice says how long it holds (``expires_in``); clients drop it then,
and a notice not collected within that time is dropped here too. Losing one
is harmless: a typing client repeats it every few seconds.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict

import msgspec
import structlog

from libs.subjects import Subjects
from services.gateway.longpoll import Waiter

log = structlog.get_logger(__name__)

TYPING_TTL = 6.0  # seconds a typing notice holds unless renewed or ended
CLIENT_TTL = 120.0  # a client that has not polled here for this long gets nothing kept
MAX_KEPT = 50  # notices kept per client between two polls


class Notice(msgspec.Struct, kw_only=True):
    """One ephemeral notice as a long-poll answer carries it."""

    type: str  # "typing"
    from_: str = msgspec.field(name="from")
    to: str
    state: str  # "active" or "done"
    ts: str
    expires_in: float


class Broadcast(msgspec.Struct, kw_only=True):
    """What travels between gateways: a notice and the sessions it is for."""

    sessions: list[uuid.UUID]
    notice: Notice


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Broadcast)


def encode(broadcast: Broadcast) -> bytes:
    return _encoder.encode(broadcast)


def subject(subjects: Subjects) -> str:
    """Core NATS subject of ephemeral notices between gateways."""
    return f"{subjects.prefix}.ephemeral"


class _Client:
    __slots__ = ("kept", "seen", "session_id", "waiter")

    def __init__(self, session_id: uuid.UUID) -> None:
        self.session_id = session_id
        self.seen = time.monotonic()
        self.waiter: Waiter | None = None
        self.kept: list[tuple[float, Notice]] = []


class EphemeralHub:
    """The notices this gateway keeps for the clients that poll it."""

    def __init__(self) -> None:
        self._clients: dict[uuid.UUID, _Client] = {}
        self._sessions: defaultdict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
        self._last_prune = time.monotonic()

    def attach(self, client_id: uuid.UUID, session_id: uuid.UUID, waiter: Waiter) -> None:
        """A poll of this client began; it is answered at once when notices are waiting."""
        now = time.monotonic()
        client = self._clients.get(client_id)
        if client is None or client.session_id != session_id:
            client = self._clients[client_id] = _Client(session_id)
            self._sessions[session_id].add(client_id)
        client.seen = now
        client.waiter = waiter
        if client.kept:
            waiter.event.set()
        if now - self._last_prune > CLIENT_TTL:
            self._prune(now)

    def waiting(self, client_id: uuid.UUID) -> bool:
        """Whether notices are kept for this client."""
        client = self._clients.get(client_id)
        return client is not None and bool(client.kept)

    def drain(self, client_id: uuid.UUID) -> list[Notice]:
        """The notices kept for a client, each with the time it still holds."""
        client = self._clients.get(client_id)
        if client is None or not client.kept:
            return []
        now = time.monotonic()
        fresh = []
        for received, notice in client.kept:
            left = notice.expires_in - (now - received)
            if left > 0:
                notice.expires_in = round(left, 3)
                fresh.append(notice)
        client.kept = []
        return fresh

    def on_message(self, data: bytes) -> None:
        try:
            broadcast = _decoder.decode(data)
        except msgspec.DecodeError:
            log.warning("undecodable ephemeral notice")
            return
        self.deliver(broadcast)

    def deliver(self, broadcast: Broadcast) -> None:
        now = time.monotonic()
        for session_id in broadcast.sessions:
            for client_id in self._sessions.get(session_id, ()):
                client = self._clients[client_id]
                notice = msgspec.structs.replace(broadcast.notice)
                client.kept = [*client.kept[-(MAX_KEPT - 1) :], (now, notice)]
                if client.waiter is not None:
                    client.waiter.event.set()

    def _prune(self, now: float) -> None:
        self._last_prune = now
        for client_id, client in list(self._clients.items()):
            if now - client.seen > CLIENT_TTL:
                del self._clients[client_id]
                clients = self._sessions[client.session_id]
                clients.discard(client_id)
                if not clients:
                    del self._sessions[client.session_id]
