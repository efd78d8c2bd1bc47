"""Proof-of-work challenges: issued, solved, and every way a stamp is refused."""

from __future__ import annotations

import pytest

from libs.errors import ChatError
from libs.hashcash import solve, stamp_bits
from services.gateway.stamps import CHALLENGE_TTL, Challenges

KEY = b"k" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def refusal(challenges: Challenges, stamp: str | None) -> str:
    with pytest.raises(ChatError) as refused:
        challenges.check(stamp)
    assert (refused.value.status, refused.value.code) == (403, "ERR_PROOF_OF_WORK")
    return refused.value.body.message


def test_no_work_is_asked_at_zero_bits() -> None:
    challenges = Challenges(KEY, 0)
    assert challenges.check(None) is None
    assert challenges.check("anything at all") is None
    assert challenges.issue().bits == 0


def test_a_solved_challenge_pays_on_any_replica_sharing_the_key() -> None:
    clock = Clock()
    issued = Challenges(KEY, 10, clock).issue()
    assert (issued.bits, issued.expires) == (10, clock.now + CHALLENGE_TTL)
    stamp = solve(issued.text, issued.bits)
    paid = Challenges(KEY, 10, clock).check(stamp)
    assert paid is not None and paid.challenge == issued.text


def test_stamps_are_refused_missing_forged_expired_or_short() -> None:
    clock = Clock()
    challenges = Challenges(KEY, 10, clock)
    assert "GET /api/v1/challenge" in refusal(challenges, None)
    issued = challenges.issue()
    stamp = solve(issued.text, 10)
    assert "this server" in refusal(Challenges(b"other key" * 4, 10, clock), stamp)
    version, bits, expires, nonce, mac = issued.text.split(".")
    later = ".".join([version, bits, str(int(expires) + 3600), nonce, mac])
    assert "this server" in refusal(challenges, solve(later, 10))
    assert "this server" in refusal(challenges, solve(issued.text, 10) + "0" * 40)
    assert "this server" in refusal(challenges, "no challenge here")
    short = next(
        f"{issued.text}:{n:x}" for n in range(10_000) if stamp_bits(f"{issued.text}:{n:x}") < 10
    )
    assert "fewer than 10" in refusal(challenges, short)
    clock.now += CHALLENGE_TTL + 1
    assert "expired" in refusal(challenges, stamp)


def test_raising_the_bits_refuses_stamps_solved_for_fewer() -> None:
    clock = Clock()
    issued = Challenges(KEY, 4, clock).issue()
    weak = next(
        f"{issued.text}:{n:x}"
        for n in range(100_000)
        if 4 <= stamp_bits(f"{issued.text}:{n:x}") < 12
    )
    assert "fewer than 12" in refusal(Challenges(KEY, 12, clock), weak)
