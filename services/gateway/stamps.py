"""Proof of work for new sessions: challenges the gateway issues and the stamps it takes.

A challenge is ``1.<bits>.<expires>.<nonce>.<mac>``: the HMAC (a key shared by every
replica through PostgreSQL) makes it unforgeable without the gateway keeping any state
until a stamp comes back. A stamp is spent in the transaction that creates its session,
so one challenge buys one session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from libs import hashcash
from libs.errors import ChatError

CHALLENGE_TTL = 300.0  # seconds a challenge may be solved and used in
MAX_STAMP = 256  # characters
VERSION = "1"


@dataclass(frozen=True)
class Challenge:
    text: str
    bits: int
    expires: float  # unix time


@dataclass(frozen=True)
class Paid:
    """A valid stamp's challenge, to be recorded as spent, and when it stops mattering."""

    challenge: str
    expires: float


def refused(message: str) -> ChatError:
    return ChatError(403, "ERR_PROOF_OF_WORK", message)


class Challenges:
    """Issues challenges and checks stamps for ``bits`` of work (0: none asked)."""

    def __init__(self, key: bytes, bits: int, clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.bits = bits
        self.clock = clock

    def issue(self) -> Challenge:
        expires = int(self.clock() + CHALLENGE_TTL)
        body = f"{VERSION}.{self.bits}.{expires}.{secrets.token_hex(12)}"
        return Challenge(f"{body}.{self._mac(body)}", self.bits, float(expires))

    def check(self, stamp: str | None) -> Paid | None:
        """The challenge a stamp pays for; None when no work is asked. Raises 403."""
        if self.bits == 0:
            return None
        if not stamp:
            raise refused(
                f"a new session needs a stamp of {self.bits} bits: "
                "solve a challenge from GET /api/v1/challenge"
            )
        challenge, _, counter = stamp.rpartition(":")
        parts = challenge.split(".")
        if (
            len(stamp) > MAX_STAMP
            or len(counter) > hashcash.MAX_COUNTER
            or len(parts) != 5
            or parts[0] != VERSION
            or not parts[2].isdigit()
            or not hmac.compare_digest(parts[4], self._mac(".".join(parts[:4])))
        ):
            raise refused("not a stamp of a challenge from this server")
        expires = float(parts[2])
        if expires < self.clock():
            raise refused("the challenge has expired: solve a new one")
        if hashcash.stamp_bits(stamp) < self.bits:
            raise refused(f"the stamp has fewer than {self.bits} leading zero bits")
        return Paid(challenge, expires)

    def _mac(self, body: str) -> str:
        return hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()[:32]
