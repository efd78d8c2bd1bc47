"""parse_input: what each typed line becomes."""

from __future__ import annotations

from typing import Any

import pytest

from services.chat.commands import action_text, help_lines, parse_input

ISSUE_COMMANDS = (
    *("join", "part", "msg", "query", "me", "nick", "topic", "mode", "kick"),
    *("invite", "away", "whois", "names", "list", "quit", "help"),
)


def api(command: str, to: str | None = None, *params: str, body: list[str] | None = None) -> Any:
    expected: dict[str, Any] = {"command": command, "params": list(params)}
    if to is not None:
        expected["to"] = to
    if body is not None:
        expected["body"] = body
    return expected


@pytest.mark.parametrize(
    ("line", "current", "expected"),
    [
        ("hello", "#room", api("PRIVMSG", "#room", body=["hello"])),
        ("hi bob", "bob", api("PRIVMSG", "bob", body=["hi bob"])),
        ("//slash", "#r", api("PRIVMSG", "#r", body=["/slash"])),
        ("/join #a", None, api("JOIN", "#a")),
        ("/join lobby", None, api("JOIN", "#lobby")),
        ("/j #a sesame", None, api("JOIN", "#a", "sesame")),
        ("/part", "#a", api("PART", "#a", body=[])),
        ("/part bye all", "#a", api("PART", "#a", body=["bye all"])),
        ("/part #b later", "#a", api("PART", "#b", body=["later"])),
        ("/msg bob hi there", "#a", api("PRIVMSG", "bob", body=["hi there"])),
        ("/notice #a psst", None, api("NOTICE", "#a", body=["psst"])),
        ("/me waves", "#a", api("PRIVMSG", "#a", body=["\x01ACTION waves\x01"])),
        ("/nick alice2", None, api("NICK", None, "alice2")),
        ("/topic", "#a", api("TOPIC", "#a")),
        ("/topic new topic", "#a", api("TOPIC", "#a", body=["new topic"])),
        ("/topic #b set", "#a", api("TOPIC", "#b", body=["set"])),
        ("/topic -delete", "#a", api("TOPIC", "#a", body=[""])),
        ("/mode", "#a", api("MODE", "#a")),
        ("/mode +o bob", "#a", api("MODE", "#a", "+o", "bob")),
        ("/mode #b +kl k 5", None, api("MODE", "#b", "+kl", "k", "5")),
        ("/mode alice -o", "#a", api("MODE", "alice", "-o")),
        ("/kick bob", "#a", api("KICK", "#a", "bob", body=[])),
        ("/kick #b bob go away", "#a", api("KICK", "#b", "bob", body=["go away"])),
        ("/invite bob", "#a", api("INVITE", None, "bob", "#a")),
        ("/invite bob #b", None, api("INVITE", None, "bob", "#b")),
        ("/away lunch", None, api("AWAY", body=["lunch"])),
        ("/away", None, api("AWAY", body=[])),
        ("/whois bob", None, api("WHOIS", None, "bob")),
        ("/whois", "bob", api("WHOIS", None, "bob")),
        ("/names", "#a", api("NAMES", "#a")),
        ("/names #b", None, api("NAMES", "#b")),
        ("/list", None, api("LIST")),
        ("/list #c*", None, api("LIST", None, "#c*")),
        ("/who", "#a", api("WHO", "#a")),
        ("/who b*", None, api("WHO", None, "b*")),
        ("/motd", None, api("MOTD")),
        ("/quit", "#a", api("QUIT", body=[])),
        ("/QUIT gone fishing", None, api("QUIT", body=["gone fishing"])),
    ],
)
def test_commands_become_api_commands(
    line: str, current: str | None, expected: dict[str, object]
) -> None:
    assert parse_input(line, current) == expected


@pytest.mark.parametrize(
    ("line", "current", "expected"),
    [
        ("", "#a", {"local": "none"}),
        ("   ", "#a", {"local": "none"}),
        ("/query bob", None, {"local": "query", "to": "bob", "text": None}),
        ("/query bob hi you", "#a", {"local": "query", "to": "bob", "text": "hi you"}),
        ("/help", None, {"local": "help", "topic": None}),
        ("/help join", None, {"local": "help", "topic": "join"}),
        ("/close", "#a", {"local": "close", "to": "#a"}),
    ],
)  # fmt: skip
def test_local_actions(line: str, current: str | None, expected: dict[str, object]) -> None:
    assert parse_input(line, current) == expected


@pytest.mark.parametrize(
    ("line", "current"),
    [
        ("hello", None),  # the server buffer has no target
        ("/me waves", None),
        ("/frobnicate", "#a"),
        ("/join", None),
        ("/part", None),
        ("/part", "bob"),  # a private buffer is not a channel
        ("/msg bob", None),
        ("/query", None),
        ("/query #a", None),
        ("/nick", None),
        ("/topic", None),
        ("/kick", "#a"),
        ("/invite bob", None),
        ("/whois", "#a"),
        ("/names", None),
        ("/me", "#a"),
        ("/close", None),
    ],
)
def test_mistakes_are_local_errors_never_sent(line: str, current: str | None) -> None:
    parsed = parse_input(line, current)
    assert parsed["local"] == "error" and parsed["message"]


def test_help_lists_every_command_of_the_issue() -> None:
    text = "\n".join(help_lines())
    for name in ISSUE_COMMANDS:
        assert f"/{name} " in text, name
    assert help_lines("/j") == [help_lines("join")[0]]
    assert help_lines("nope") == ["no such command /nope"]


def test_action_text() -> None:
    assert action_text("\x01ACTION waves\x01") == "waves"
    assert action_text("\x01ACTION\x01") == ""
    assert action_text("\x01VERSION\x01") is None
    assert action_text("plain") is None
