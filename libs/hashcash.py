"""Hashcash stamps: a challenge from the server, a counter found by the client, such
that SHA-256 of ``<challenge>:<counter>`` starts with ``bits`` zero bits.

Checking a stamp costs one hash; finding one costs about 2**bits. The server and the
Python clients share this module; the web client has the same in ``web/hashcash.js``.
"""

from __future__ import annotations

import hashlib
import itertools

MAX_COUNTER = 32  # characters


def zero_bits(digest: bytes) -> int:
    """How many leading bits of ``digest`` are zero."""
    bits = 0
    for byte in digest:
        if byte:
            return bits + 8 - byte.bit_length()
        bits += 8
    return bits


def stamp_bits(stamp: str) -> int:
    """The leading zero bits of a stamp's SHA-256."""
    return zero_bits(hashlib.sha256(stamp.encode()).digest())


def solve(challenge: str, bits: int) -> str:
    """A stamp ``<challenge>:<counter>`` with at least ``bits`` leading zero bits."""
    prefix = hashlib.sha256(f"{challenge}:".encode())
    for counter in itertools.count():
        text = format(counter, "x")
        attempt = prefix.copy()
        attempt.update(text.encode())
        if zero_bits(attempt.digest()) >= bits:
            return f"{challenge}:{text}"
    raise AssertionError("unreachable")
