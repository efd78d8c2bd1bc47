"""Credentials: random bearer tokens stored as hashes, Argon2id passwords, login throttling."""

from __future__ import annotations

import hashlib
import secrets
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters

# Verifying against this keeps a login for an unknown nick as slow as for a known one.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


COOKIE = "chinwag_token"  # the cookie a browser carries the token in, in place of a bearer


def new_token() -> str:
    """A bearer token of 256 random bits."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """What is stored and looked up in place of a token."""
    return hashlib.sha256(token.encode()).digest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


class RateLimiter:
    """A token bucket per key (a source address): ``rate`` per second, ``burst`` at once."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, now: float | None = None) -> float:
        """Take one token; returns 0 when allowed, else the seconds until one is free."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._buckets.clear()
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate
