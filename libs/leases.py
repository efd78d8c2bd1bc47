"""Leases in a NATS key-value bucket: one holder per key, lapsing when not renewed.

Every write goes through JetStream's expected-last-revision check, so of two
workers racing for a key exactly one wins, and a holder whose lease was taken
from it learns so at its next renewal. The bucket's TTL is the lease term: a
key not renewed within it disappears on the server, whatever the clocks of the
workers say. A lease is an optimisation of who does the work, not the guard of
correctness: the work itself must tolerate a second worker (fanout's stored
position does).
"""

from __future__ import annotations

import re

import msgspec
import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

_BUCKET_CHARS = re.compile(r"[^A-Za-z0-9_-]")


class Holder(msgspec.Struct, frozen=True):
    """Who holds a lease: a stable worker name and this process's incarnation."""

    worker: str
    incarnation: str


class Lease(msgspec.Struct, frozen=True):
    """A lease as read: its holder and the revision a renewal must name."""

    holder: Holder
    revision: int


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Holder).decode


def bucket_name(stream: str, purpose: str) -> str:
    """A bucket name derived from the stream's (bucket names allow fewer characters)."""
    return _BUCKET_CHARS.sub("_", f"{stream}_{purpose}")


class Leases:
    """Named leases held on behalf of ``me`` in one bucket."""

    def __init__(self, kv: KeyValue, me: Holder) -> None:
        self.kv = kv
        self.me = me
        self._value = _encode(me)

    @classmethod
    async def open(
        cls, js: JetStreamContext, bucket: str, ttl: float, replicas: int, me: Holder
    ) -> Leases:
        """The bucket with term ``ttl``, created or brought to that configuration."""
        config = KeyValueConfig(
            bucket=bucket,
            description="chinwag leases",
            history=1,
            ttl=ttl,
            storage=StorageType.MEMORY,
            replicas=replicas,
        )
        try:
            kv = await js.create_key_value(config)
        except nats.js.errors.BadRequestError:
            # It exists with another term or replica count: bring it to ours.
            info = await js.stream_info(f"KV_{bucket}")
            stream = info.config
            stream.max_age = ttl
            stream.duplicate_window = min(ttl, 120.0)
            stream.num_replicas = replicas
            await js.update_stream(stream)
            kv = await js.key_value(bucket)
        return cls(kv, me)

    async def acquire(self, key: str) -> int | None:
        """Take a free lease; its revision, or None when someone holds it."""
        try:
            return await self.kv.create(key, self._value)
        except nats.js.errors.KeyWrongLastSequenceError:
            return None

    async def take_over(self, key: str, revision: int) -> int | None:
        """Take a lease from the holder seen at ``revision``; None if it changed since."""
        return await self.renew(key, revision)

    async def renew(self, key: str, revision: int) -> int | None:
        """Extend a held lease by a full term; None when it was lost (lapsed or taken)."""
        try:
            return await self.kv.update(key, self._value, last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            return None

    async def release(self, key: str, revision: int) -> None:
        """Give a held lease up at once, unless it has already changed hands."""
        try:
            await self.kv.delete(key, last=revision)
        except nats.js.errors.APIError as error:
            if error.err_code not in (10071, 10164):  # wrong last sequence: not ours anymore
                raise

    async def read(self, key: str) -> Lease | None:
        """The current holder of a lease, or None when it is free."""
        try:
            entry = await self.kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None
        if entry.value is None or entry.revision is None:
            return None
        try:
            return Lease(_decode(entry.value), entry.revision)
        except msgspec.DecodeError:
            return Lease(Holder("?", "?"), entry.revision)

    async def announce(self, key: str) -> None:
        """Say that ``me`` wants a key (a plain write, lapsing like a lease)."""
        await self.kv.put(key, self._value)


TransportError = (nats.errors.Error, OSError, TimeoutError)
"""What a lease operation raises when NATS cannot be reached: try again later."""
