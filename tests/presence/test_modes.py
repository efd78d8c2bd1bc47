from __future__ import annotations

import pytest

from libs.errors import ChatError
from libs.irc import mask_matches, normalise_mask
from services.presence.modes import Change, format_changes, is_list_query, mode_string, parse


def test_parse_reads_signs_letters_and_parameters_in_order() -> None:
    assert parse(["+o-v+k", "bob", "carol", "secret"]) == [
        Change(True, "o", "bob"),
        Change(False, "v", "carol"),
        Change(True, "k", "secret"),
    ]
    assert parse(["+imnst"]) == [Change(True, c) for c in "imnst"]
    assert parse(["-kl"]) == [Change(False, "k"), Change(False, "l")]
    assert parse(["+l", "10"]) == [Change(True, "l", "10")]
    assert parse([]) == []


def test_parse_refuses_unknown_modes_and_missing_parameters() -> None:
    with pytest.raises(ChatError) as unknown:
        parse(["+x"])
    assert (unknown.value.status, unknown.value.body.numeric) == (400, "472")
    with pytest.raises(ChatError) as missing:
        parse(["+o"])
    assert missing.value.body.numeric == "461"
    with pytest.raises(ChatError):
        parse(["+n", "extra"])
    with pytest.raises(ChatError):
        parse(["+vvvvvvv", *"abcdefg"])


def test_a_bare_ban_mode_reads_the_list() -> None:
    assert is_list_query(parse(["+b"]))
    assert is_list_query(parse(["b"]))
    assert not is_list_query(parse(["+b", "x"]))


def test_changes_format_as_irc_sends_them() -> None:
    changes = [Change(True, "o", "a"), Change(True, "v", "b"), Change(False, "t")]
    assert format_changes(changes) == ["+ov-t", "a", "b"]
    assert format_changes([]) == []


def test_mode_string_hides_the_key_from_outsiders() -> None:
    assert mode_string("nt", "pw", 10, show_key=True) == ["+klnt", "pw", "10"]
    assert mode_string("nt", "pw", None, show_key=False) == ["+knt", "*"]
    assert mode_string("", None, None, show_key=True) == ["+"]


def test_ban_masks_normalise_and_match_folded() -> None:
    assert normalise_mask("Bob") == "bob!*@*"
    assert normalise_mask("bob!x") == "bob!x@*"
    assert normalise_mask("*@host") == "*!*@host"
    assert mask_matches("bob!*@*", "BOB", "chinwag.local")
    assert mask_matches("b?b*!*@*", "bobby", "h")
    assert not mask_matches("bob!*@*", "bobby", "h")
    assert mask_matches("*!*@chinwag.local", "anyone", "chinwag.local")
    assert mask_matches("[x]!*@*", "{X}", "h")  # rfc1459: [ and { fold together
