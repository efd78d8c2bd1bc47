"""Properties of the name and text validators: they mean exactly what the OpenAPI
document says (its patterns run under JSON Schema's own regex rules), and ban masks
match as globs, in bounded time."""

from __future__ import annotations

import re

import jsonschema_rs
from hypothesis import example, given
from hypothesis import strategies as st

from libs.irc import (
    CHANNEL_PATTERN,
    NICK_PATTERN,
    TEXT_PATTERN,
    fold,
    glob_match,
    mask_matches,
    valid_channel,
    valid_nick,
    valid_text,
)


def _schema(pattern: str) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for({"type": "string", "pattern": pattern})


NICK_SCHEMA = _schema(NICK_PATTERN)
CHANNEL_SCHEMA = _schema(CHANNEL_PATTERN)
TEXT_SCHEMA = _schema(TEXT_PATTERN)

# Arbitrary text, and text near the grammars' edges: IRC specials, controls, '#'.
edgy = st.text(alphabet=st.sampled_from("aZ09-[]\\`_^{|}#,: \x00\x01\x07\r\n\x1f\x7fé"))
anything = st.one_of(st.text(), edgy)


@given(st.one_of(anything, st.from_regex(NICK_PATTERN, fullmatch=True)))
@example("a\n")
@example("a" * 33)
def test_nick_validation_is_the_schema_pattern(nick: str) -> None:
    assert valid_nick(nick) == NICK_SCHEMA.is_valid(nick)


@given(st.one_of(anything, st.from_regex(CHANNEL_PATTERN, fullmatch=True)))
@example("#a\n")
@example("#" + "x" * 50)
def test_channel_validation_is_the_schema_pattern(name: str) -> None:
    assert valid_channel(name) == CHANNEL_SCHEMA.is_valid(name)


@given(anything)
@example("line\n")
@example("\x02bold\x02 \x0304colour\x03 \x01ACTION waves\x01")
def test_text_validation_is_the_schema_pattern(line: str) -> None:
    assert valid_text(line) == TEXT_SCHEMA.is_valid(line)
    if valid_text(line):
        assert not {"\x00", "\r", "\n"} & set(line)


@given(anything)
def test_folding_is_idempotent_and_keeps_names_valid(name: str) -> None:
    assert fold(fold(name)) == fold(name)
    assert len(fold(name)) == len(name)
    assert valid_nick(fold(name)) == valid_nick(name) or "~" in name
    assert valid_channel(fold(name)) == valid_channel(name)


def _reference(pattern: str, text: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


globs = st.text(alphabet="ab*?", max_size=8)
texts = st.text(alphabet="ab", max_size=10)


@given(globs, texts)
def test_glob_matching_agrees_with_a_regular_expression(pattern: str, text: str) -> None:
    assert glob_match(pattern, text) == _reference(pattern, text)


def test_a_mask_of_many_stars_is_decided_at_once() -> None:
    # As a regular expression this backtracks for minutes; pytest's timeout would end it.
    mask = "*a" * 60 + "!b"
    assert not mask_matches(mask, "a" * 32, "chinwag.local")
    assert mask_matches("*A*a*!*@*", "bAnana", "chinwag.local")
