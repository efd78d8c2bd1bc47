"""Properties of the command validators: any JSON a client sends is either accepted,
with the guarantees the rest of the system relies on, or refused with a 400."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from libs.errors import ChatError
from libs.irc import valid_text
from services.gateway.commands import (
    MAX_LINES,
    MAX_META_DEPTH,
    check_lines,
    check_meta,
    check_params,
    optional_text,
)
from services.gateway.models import MAX_PARAMS, CommandIn

edgy_text = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=" \t\x00\x01\x02\x03\r\n\x0f\x16\x1d\x1f\x7f\u3000a", max_size=6),
)
bodies = st.one_of(
    st.none(),
    st.lists(edgy_text, max_size=MAX_LINES + 3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | edgy_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(edgy_text, inner, max_size=3),
    max_leaves=30,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(s for v in value.values() for s in _strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


@given(bodies)
@example(["a\nb"])
@example(["  ", "\u3000"])
@example(["x"] * (MAX_LINES + 1))
def test_chat_lines_are_text_or_refused(body: Any) -> None:
    try:
        lines = check_lines(body, "PRIVMSG")
    except ChatError as refused:
        assert refused.status == 400
        return
    assert 1 <= len(lines) <= MAX_LINES
    assert all(valid_text(line) for line in lines)
    assert any(line.strip() for line in lines)


@given(bodies)
def test_optional_text_is_one_line_or_refused(body: Any) -> None:
    try:
        text = optional_text(body, "AWAY")
    except ChatError as refused:
        assert refused.status == 400
        return
    assert text is None or valid_text(text)


@given(st.lists(edgy_text, max_size=5))
def test_params_carry_no_control_characters_but_formatting(params: list[str]) -> None:
    try:
        check_params(params)
    except ChatError as refused:
        assert refused.status == 400
        return
    assert all(valid_text(p) for p in params)


@given(st.dictionaries(edgy_text, json_values, max_size=4))
def test_meta_is_shallow_and_nul_free_or_refused(meta: dict[str, Any]) -> None:
    try:
        check_meta(meta)
    except ChatError as refused:
        assert refused.status == 400
        assert _depth(meta) > MAX_META_DEPTH or any("\x00" in s for s in _strings(meta))
        return
    assert _depth(meta) <= MAX_META_DEPTH
    assert not any("\x00" in s for s in _strings(meta))


@pytest.mark.parametrize("depth", [MAX_META_DEPTH + 1, 10_000, 200_000])
def test_deep_meta_is_refused_without_recursion(depth: int) -> None:
    value: Any = []
    for _ in range(depth):
        value = [value]
    with pytest.raises(ChatError) as refused:
        check_meta({"k": value})
    assert refused.value.status == 400


@given(st.binary(max_size=200) | json_values.map(lambda v: pydantic.TypeAdapter(Any).dump_json(v)))
@example(b"[" * 100_000 + b"]" * 100_000)
@example(b'{"command": "PRIVMSG", "meta": ' + b'{"a":' * 5_000 + b"1" + b"}" * 5_001)
@example(b'{"command": "PRIVMSG", "to": "\\ud800"}')
def test_any_request_body_parses_or_is_a_validation_error(raw: bytes) -> None:
    try:
        command = CommandIn.model_validate_json(raw)
    except pydantic.ValidationError:
        return
    assert len(command.params) <= MAX_PARAMS
    assert command.to is None or len(command.to) <= 64
