"""IRC names: CASEMAPPING=rfc1459 folding and validation of nicks and channel names."""

from __future__ import annotations

import re

_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~", "abcdefghijklmnopqrstuvwxyz{}|^")

NICK_MAX = 32
CHANNEL_MAX = 50  # including the leading '#'

# The grammars as regular expressions that mean the same in Python and in JSON Schema
# (ECMA 262), so the OpenAPI document states exactly what the server accepts.
NICK_PATTERN = r"^[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,31}$"
CHANNEL_PATTERN = r"^#[^\x00-\x20\x7f,:]{1,49}$"
# Control characters allowed in text are IRC's formatting codes (bold \x02, colour \x03,
# CTCP \x01, reverse \x16, italics \x1d …); every other one, CR and LF included, is not.
TEXT_CONTROLS = r"\x00\x04-\x0e\x10-\x15\x17-\x1c\x7f"
TEXT_PATTERN = rf"^[^{TEXT_CONTROLS}]*$"
# A name, target or mask: no control character at all.
PLAIN_PATTERN = r"^[^\x00-\x1f\x7f]*$"

_NICK = re.compile(NICK_PATTERN)
_CHANNEL = re.compile(CHANNEL_PATTERN)
_TEXT = re.compile(TEXT_PATTERN)


def fold(name: str) -> str:
    """Case-fold a nick or channel name under rfc1459 casemapping."""
    return name.translate(_FOLD)


def valid_nick(nick: str) -> bool:
    """RFC 2812 nick grammar, 1-32 characters."""
    return _NICK.fullmatch(nick) is not None


def valid_channel(name: str) -> bool:
    """``#`` then 1-49 characters without space, comma, colon, BEL or control characters."""
    return _CHANNEL.fullmatch(name) is not None


def valid_text(line: str) -> bool:
    """A line of text: no control characters but IRC's formatting codes."""
    return _TEXT.fullmatch(line) is not None


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


def glob_match(pattern: str, text: str) -> bool:
    """Whether ``text`` matches ``pattern`` with ``*`` (any run) and ``?`` (one character).

    Greedy with one backtrack point, the last ``*``: at most len(pattern) x len(text)
    steps, where a regular expression of many ``.*`` backtracks exponentially.
    """
    p = t = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] == "*":
            star, resume = p, t
            p += 1
        elif p < len(pattern) and pattern[p] in ("?", text[t]):
            p += 1
            t += 1
        elif star >= 0:
            p, resume = star + 1, resume + 1
            t = resume
        else:
            return False
    return all(c == "*" for c in pattern[p:])


def mask_matches(mask: str, nick: str, host: str) -> bool:
    """Whether a folded mask (``*`` and ``?`` wildcards) matches ``nick!nick@host``."""
    return glob_match(fold(mask), fold(f"{nick}!{nick}@{host}"))
