"""IRC names: CASEMAPPING=rfc1459 folding and validation of nicks and channel names."""

from __future__ import annotations

import re
from functools import lru_cache

_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~", "abcdefghijklmnopqrstuvwxyz{}|^")

NICK_MAX = 32
CHANNEL_MAX = 50  # including the leading '#'

_NICK = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,31}")
_CHANNEL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f,:]")


def fold(name: str) -> str:
    """Case-fold a nick or channel name under rfc1459 casemapping."""
    return name.translate(_FOLD)


def valid_nick(nick: str) -> bool:
    """RFC 2812 nick grammar, 1-32 characters."""
    return _NICK.fullmatch(nick) is not None


def valid_channel(name: str) -> bool:
    """``#`` then 1-49 characters without space, comma, colon, BEL or control characters."""
    return (
        2 <= len(name) <= CHANNEL_MAX
        and name.startswith("#")
        and _CHANNEL_FORBIDDEN.search(name) is None
    )


def is_channel(target: str) -> bool:
    """Whether a target names a channel rather than a nick."""
    return target.startswith("#")


def normalise_mask(mask: str) -> str:
    """A ban mask in full and folded: ``bob`` → ``bob!*@*``, ``bob!x`` → ``bob!x@*``."""
    if "!" not in mask and "@" not in mask:
        mask = f"{mask}!*@*"
    elif "@" not in mask:
        mask = f"{mask}@*"
    elif "!" not in mask:
        mask = f"*!{mask}"
    return fold(mask)


@lru_cache(maxsize=4096)
def _mask_pattern(mask: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in mask)
    )


def mask_matches(mask: str, nick: str, host: str) -> bool:
    """Whether a folded mask (``*`` and ``?`` wildcards) matches ``nick!nick@host``."""
    return _mask_pattern(fold(mask)).fullmatch(fold(f"{nick}!{nick}@{host}")) is not None
