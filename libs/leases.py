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
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec
import nats.errors
import nats.js.errors
import structlog
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

log = structlog.get_logger(__name__)

_BUCKET_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_STREAM_NOT_FOUND = 10059  # JetStream's error code
T = TypeVar("T")


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
    """Named leases held on behalf of ``me`` in one bucket.

    The bucket lives in memory: a nats-server restart loses it, and with it
    every lease (as if each had lapsed). An operation that finds the bucket
    gone makes it again and tries once more, so the workers take their
    partitions anew instead of waiting on a bucket that will never return.
    """

    def __init__(
        self, kv: KeyValue, me: Holder, js: JetStreamContext, config: KeyValueConfig
    ) -> None:
        self.kv = kv
        self.me = me
        self.js = js
        self.config = config
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
        return cls(await _bucket(js, config), me, js, config)

    async def _again_if_gone(self, operation: Callable[[KeyValue], Awaitable[T]]) -> T:
        try:
            return await operation(self.kv)
        except nats.js.errors.Error as error:
            if not _bucket_gone(error):
                raise
        log.warning("lease bucket gone; making it again", bucket=self.config.bucket)
        self.kv = await _bucket(self.js, self.config)
        return await operation(self.kv)

    async def acquire(self, key: str) -> int | None:
        """Take a free lease; its revision, or None when someone holds it."""
        try:
            return await self._again_if_gone(lambda kv: kv.create(key, self._value))
        except nats.js.errors.KeyWrongLastSequenceError:
            return None

    async def take_over(self, key: str, revision: int) -> int | None:
        """Take a lease from the holder seen at ``revision``; None if it changed since."""
        return await self.renew(key, revision)

    async def renew(self, key: str, revision: int) -> int | None:
        """Extend a held lease by a full term; None when it was lost (lapsed or taken)."""
        try:
            return await self._again_if_gone(lambda kv: kv.update(key, self._value, last=revision))
        except nats.js.errors.KeyWrongLastSequenceError:
            return None

    async def release(self, key: str, revision: int) -> None:
        """Give a held lease up at once, unless it has already changed hands."""
        try:
            await self._again_if_gone(lambda kv: kv.delete(key, last=revision))
        except nats.js.errors.APIError as error:
            if error.err_code not in (10071, 10164):  # wrong last sequence: not ours anymore
                raise

    async def read(self, key: str) -> Lease | None:
        """The current holder of a lease, or None when it is free."""
        try:
            entry = await self._again_if_gone(lambda kv: kv.get(key))
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
        await self._again_if_gone(lambda kv: kv.put(key, self._value))


async def _bucket(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    """The bucket of ``config``, created or brought to that configuration."""
    try:
        return await js.create_key_value(config)
    except nats.js.errors.BadRequestError:
        # It exists with another term or replica count: bring it to ours.
        info = await js.stream_info(f"KV_{config.bucket}")
        stream = info.config
        stream.max_age = config.ttl
        stream.duplicate_window = min(config.ttl or 120.0, 120.0)
        stream.num_replicas = config.replicas
        await js.update_stream(stream)
        return await js.key_value(config.bucket)


def _bucket_gone(error: nats.js.errors.Error) -> bool:
    """Whether an error says the bucket's stream does not exist (anymore)."""
    if isinstance(error, nats.js.errors.NoStreamResponseError | nats.js.errors.BucketNotFoundError):
        return True
    return (
        isinstance(error, nats.js.errors.NotFoundError)
        and not isinstance(error, nats.js.errors.KeyValueError)
        and error.err_code == _STREAM_NOT_FOUND
    )


TransportError = (nats.errors.Error, OSError, TimeoutError)
"""What a lease operation raises when NATS cannot be reached: try again later."""
