from __future__ import annotations

import base64

from services.gateway.auth import (
    RateLimiter,
    hash_password,
    new_token,
    token_hash,
    verify_password,
)


def test_tokens_carry_256_random_bits_and_are_stored_as_hashes() -> None:
    token = new_token()
    assert len(base64.urlsafe_b64decode(token + "=")) == 32
    assert new_token() != token
    assert token_hash(token) == token_hash(token)
    assert token.encode() not in token_hash(token)


def test_passwords_are_argon2id_and_verified() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "wrong")
    assert not verify_password(None, "anything")
    assert not verify_password("not a hash", "x")


def test_rate_limiter_allows_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate=1.0, burst=5)
    assert [limiter.take("ip", now=0.0) for _ in range(5)] == [0.0] * 5
    assert limiter.take("ip", now=0.0) > 0.9
    assert limiter.take("other", now=0.0) == 0.0
    assert limiter.take("ip", now=1.0) == 0.0
    assert limiter.take("ip", now=1.0) > 0.0
