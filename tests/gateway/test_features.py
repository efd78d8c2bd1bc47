from __future__ import annotations

import uuid

import pytest

from libs.errors import ChatError
from services.gateway.features import message_id, valid_emoji


@pytest.mark.parametrize("emoji", ["👍", "👍🏽", "❤️", "🎉", "1️⃣", "👩‍💻", "🇫🇷", "✅"])
def test_emoji_are_accepted(emoji: str) -> None:
    assert valid_emoji(emoji)


@pytest.mark.parametrize("text", ["", "lol", "👍 ", "a👍", "1", "\u200d", "👍" * 17, "<b>"])
def test_anything_else_is_not_an_emoji(text: str) -> None:
    assert not valid_emoji(text)


def test_a_message_id_is_a_uuid() -> None:
    line = uuid.uuid4()
    assert message_id([str(line)], "EDIT") == line
    with pytest.raises(ChatError) as missing:
        message_id([], "EDIT")
    assert missing.value.code == "ERR_NEEDMOREPARAMS"
    with pytest.raises(ChatError) as bad:
        message_id(["1234"], "EDIT")
    assert bad.value.status == 400
