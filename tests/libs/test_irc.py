from __future__ import annotations

import pytest

from libs.irc import fold, is_channel, valid_channel, valid_nick


def test_fold_uses_rfc1459_casemapping() -> None:
    assert fold("Nick[Away]\\~") == "nick{away}|^"
    assert fold("#Chan") == "#chan"


@pytest.mark.parametrize("nick", ["a", "alice", "[bot]", "x-1", "`q`", "A" * 32, "_^{|}"])
def test_valid_nicks(nick: str) -> None:
    assert valid_nick(nick)


@pytest.mark.parametrize("nick", ["", "1abc", "-a", "a b", "a!", "a" * 33, "é", "a\n", "#a"])
def test_invalid_nicks(nick: str) -> None:
    assert not valid_nick(nick)


@pytest.mark.parametrize("name", ["#a", "#general", "#ünïcode", "#" + "x" * 49, "#a-b.c"])
def test_valid_channels(name: str) -> None:
    assert valid_channel(name)
    assert is_channel(name)


@pytest.mark.parametrize(
    "name", ["#", "general", "#a b", "#a,b", "#a:b", "#a\x07", "#a\x00", "#" + "x" * 50, "&a"]
)
def test_invalid_channels(name: str) -> None:
    assert not valid_channel(name)
