from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from libs.hashcash import solve, stamp_bits, zero_bits


def test_zero_bits_counts_leading_zero_bits() -> None:
    assert zero_bits(b"\x80") == 0
    assert zero_bits(b"\x01") == 7
    assert zero_bits(b"\x00\x00\x10") == 19
    assert zero_bits(b"\x00\x00") == 16


@given(st.text(alphabet="0123456789abcdef.", min_size=1, max_size=80), st.integers(0, 12))
def test_a_solved_stamp_has_the_bits_and_names_its_challenge(challenge: str, bits: int) -> None:
    stamp = solve(challenge, bits)
    assert stamp.rpartition(":")[0] == challenge
    assert stamp_bits(stamp) >= bits
    assert stamp_bits(stamp) == zero_bits(hashlib.sha256(stamp.encode()).digest())
