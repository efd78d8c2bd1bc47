"""Comparing secrets without leaking, through timing, how much of a guess was right."""

from __future__ import annotations

import hmac


def same_secret(given: str | None, expected: str) -> bool:
    """Whether ``given`` equals ``expected``, in time that does not depend on where they
    differ (a channel key, a password-equivalent)."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
