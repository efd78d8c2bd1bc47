"""What the user types, as the command to send or the local action to take. Pure.

``parse_input`` answers either an API command, shaped as the body of
``POST /api/v1/messages`` (``{"command", "to", "params", "body"}``), or a local
action under the key ``"local"`` (``query``, ``help``, ``close``, ``error``,
``none``). ``current`` is the buffer the line was typed in: a channel, a nick,
or None for the server buffer; commands without an explicit target use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from libs.irc import is_channel

Parsed = dict[str, Any]

ACTION_START, ACTION_END = "\x01ACTION ", "\x01"

HELP: dict[str, tuple[str, str]] = {
    "join": ("/join #channel [key]", "join a channel and switch to it"),
    "part": ("/part [#channel] [reason]", "leave a channel (default: this one)"),
    "msg": ("/msg target text", "send a line to a channel or nick without switching"),
    "query": ("/query nick [text]", "open a buffer for private messages with nick"),
    "me": ("/me text", "an action: shown as '* nick text'"),
    "notice": ("/notice target text", "send a notice"),
    "nick": ("/nick newnick", "change your nick"),
    "topic": ("/topic [#channel] [text | -delete]", "show, set or clear the topic"),
    "mode": ("/mode [target] [+modes args…]", "show or change channel or user modes"),
    "kick": ("/kick [#channel] nick [reason]", "remove nick from a channel"),
    "invite": ("/invite nick [#channel]", "invite nick to a channel (default: this one)"),
    "away": ("/away [text]", "mark yourself away; without text, back"),
    "whois": ("/whois nick", "who nick is and where"),
    "who": ("/who [#channel | mask]", "list users"),
    "names": ("/names [#channel]", "list a channel's members"),
    "list": ("/list [mask]", "list channels"),
    "motd": ("/motd", "the message of the day"),
    "react": ("/react emoji", "react to the last line someone else said here"),
    "reply": ("/reply text", "answer the last line someone else said here"),
    "edit": ("/edit text", "replace the text of your last line here"),
    "delete": ("/delete", "delete your last line here"),
    "close": ("/close", "close this buffer (a channel is left first)"),
    "quit": ("/quit [reason]", "end the session on every device, then exit"),
    "help": ("/help [command]", "this list, or one command"),
}

ALIASES = {"j": "join", "leave": "part", "q": "query", "m": "msg", "w": "whois"}


def parse_input(line: str, current: str | None = None) -> Parsed:
    """Turn one typed line into an API command or a local action.

    Plain text goes to ``current``; ``//text`` sends ``/text`` literally.
    """
    text = line.rstrip("\r\n")
    if not text.strip():
        return {"local": "none"}
    if not text.startswith("/") or text.startswith("//"):
        return _say(current, text[1:] if text.startswith("//") else text)
    name, _, rest = text[1:].partition(" ")
    name = ALIASES.get(name.lower(), name.lower())
    handler = _HANDLERS.get(name)
    if handler is None:
        return _error(f"unknown command /{name}; /help lists them")
    return handler(rest.strip(), current)


def help_lines(topic: str | None = None) -> list[str]:
    """The help text: every command, or one."""
    if topic:
        name = ALIASES.get(topic.lstrip("/").lower(), topic.lstrip("/").lower())
        if name not in HELP:
            return [f"no such command /{name}"]
        usage, what = HELP[name]
        return [f"{usage} — {what}"]
    width = max(len(usage) for usage, _ in HELP.values())
    return [
        "Commands (plain text goes to the current buffer; //text sends /text):",
        *(f"  {usage:<{width}}  {what}" for usage, what in HELP.values()),
        "Keys: Ctrl+N/Ctrl+P or Alt+Right/Left next/previous buffer, Alt+1…9 a buffer by "
        "number, PageUp at the top loads older lines, Up/Down recall, Tab completes a nick, "
        "Ctrl+Q leaves the client (the session stays for the next run).",
    ]


def action_text(line: str) -> str | None:
    """The text of a CTCP ACTION line (``\\x01ACTION waves\\x01`` → ``waves``), else None."""
    if line.startswith(ACTION_START):
        return line[len(ACTION_START) :].removesuffix(ACTION_END)
    if line == "\x01ACTION\x01":
        return ""
    return None


def _command(
    command: str, to: str | None = None, params: list[str] | None = None, **rest: Any
) -> Parsed:
    parsed: Parsed = {"command": command, "params": params or []}
    if to is not None:
        parsed["to"] = to
    parsed.update(rest)
    return parsed


def _error(message: str) -> Parsed:
    return {"local": "error", "message": message}


def _say(current: str | None, text: str) -> Parsed:
    if current is None:
        return _error("this is the server buffer: /join a channel or /query a nick first")
    return _command("PRIVMSG", current, body=[text])


def _words(rest: str, count: int) -> list[str]:
    """Up to ``count`` leading words, then the remainder (possibly empty) as one string."""
    parts = rest.split(None, count)
    while len(parts) <= count:
        parts.append("")
    return parts


def _channel(name: str) -> str:
    return name if is_channel(name) else f"#{name}"


def _channel_and_rest(rest: str, current: str | None, usage: str) -> tuple[str, str] | Parsed:
    """An explicit ``#channel`` first, else the current buffer when it is a channel."""
    first, remainder = _words(rest, 1)
    if first and is_channel(first):
        return first, remainder
    if current is not None and is_channel(current):
        return current, rest
    return _error(f"not in a channel: {usage}")


def _join(rest: str, current: str | None) -> Parsed:
    channel, key, _ = _words(rest, 2)
    if not channel:
        return _error("usage: /join #channel [key]")
    return _command("JOIN", _channel(channel), [key] if key else [])


def _part(rest: str, current: str | None) -> Parsed:
    found = _channel_and_rest(rest, current, "/part #channel [reason]")
    if isinstance(found, dict):
        return found
    channel, reason = found
    return _command("PART", channel, body=[reason] if reason else [])


def _to_target(command: str, name: str) -> Callable[[str, str | None], Parsed]:
    """/msg and /notice: a line to a named channel or nick."""

    def handler(rest: str, current: str | None) -> Parsed:
        target, text = _words(rest, 1)
        if not target or not text:
            return _error(f"usage: /{name} target text")
        return _command(command, target, body=[text])

    return handler


def _query(rest: str, current: str | None) -> Parsed:
    nick, text = _words(rest, 1)
    if not nick:
        return _error("usage: /query nick [text]")
    if is_channel(nick):
        return _error("/query opens a private buffer with a nick; use /join for channels")
    return {"local": "query", "to": nick, "text": text or None}


def _me(rest: str, current: str | None) -> Parsed:
    if not rest:
        return _error("usage: /me text")
    return _say(current, f"{ACTION_START}{rest}{ACTION_END}")


def _nick(rest: str, current: str | None) -> Parsed:
    nick, _ = _words(rest, 1)
    if not nick:
        return _error("usage: /nick newnick")
    return _command("NICK", params=[nick])


def _topic(rest: str, current: str | None) -> Parsed:
    found = _channel_and_rest(rest, current, "/topic #channel [text]")
    if isinstance(found, dict):
        return found
    channel, text = found
    if not text:
        return _command("TOPIC", channel)
    return _command("TOPIC", channel, body=[""] if text == "-delete" else [text])


def _mode(rest: str, current: str | None) -> Parsed:
    words = rest.split()
    if words and not words[0].startswith(("+", "-")):
        return _command("MODE", words[0], words[1:])
    if current is None:
        return _error("usage: /mode target [+modes args…]")
    return _command("MODE", current, words)


def _kick(rest: str, current: str | None) -> Parsed:
    found = _channel_and_rest(rest, current, "/kick #channel nick [reason]")
    if isinstance(found, dict):
        return found
    channel, remainder = found
    nick, reason = _words(remainder, 1)
    if not nick:
        return _error("usage: /kick [#channel] nick [reason]")
    return _command("KICK", channel, [nick], body=[reason] if reason else [])


def _invite(rest: str, current: str | None) -> Parsed:
    nick, channel, _ = _words(rest, 2)
    if not channel and current is not None and is_channel(current):
        channel = current
    if not nick or not channel:
        return _error("usage: /invite nick [#channel]")
    return _command("INVITE", params=[nick, _channel(channel)])


def _away(rest: str, current: str | None) -> Parsed:
    return _command("AWAY", body=[rest] if rest else [])


def _whois(rest: str, current: str | None) -> Parsed:
    nick, _ = _words(rest, 1)
    if not nick:
        if current is None or is_channel(current):
            return _error("usage: /whois nick")
        nick = current
    return _command("WHOIS", params=[nick])


def _who(rest: str, current: str | None) -> Parsed:
    mask, _ = _words(rest, 1)
    if not mask:
        if current is None or not is_channel(current):
            return _command("WHO", params=["*"])
        mask = current
    return _command("WHO", mask) if is_channel(mask) else _command("WHO", params=[mask])


def _names(rest: str, current: str | None) -> Parsed:
    channel, _ = _words(rest, 1)
    if not channel:
        if current is None or not is_channel(current):
            return _error("usage: /names #channel")
        channel = current
    return _command("NAMES", _channel(channel))


def _list(rest: str, current: str | None) -> Parsed:
    mask, _ = _words(rest, 1)
    return _command("LIST", params=[mask] if mask else [])


def _motd(rest: str, current: str | None) -> Parsed:
    return _command("MOTD")


def _close(rest: str, current: str | None) -> Parsed:
    if current is None:
        return _error("the server buffer stays open")
    return {"local": "close", "to": current}


def _quit(rest: str, current: str | None) -> Parsed:
    return _command("QUIT", body=[rest] if rest else [])


def _help(rest: str, current: str | None) -> Parsed:
    topic, _ = _words(rest, 1)
    return {"local": "help", "topic": topic or None}


def _on_line(
    action: str, usage: str, needs_text: bool = True
) -> Callable[[str, str | None], Parsed]:
    """A command about a line of the current buffer: the app finds which line."""

    def handler(rest: str, current: str | None) -> Parsed:
        if current is None:
            return _error(f"/{action} works in a channel or private buffer")
        if needs_text and not rest:
            return _error(f"usage: {usage}")
        return {"local": action, "to": current, "text": rest}

    return handler


_HANDLERS = {
    "join": _join,
    "part": _part,
    "msg": _to_target("PRIVMSG", "msg"),
    "notice": _to_target("NOTICE", "notice"),
    "query": _query,
    "me": _me,
    "nick": _nick,
    "topic": _topic,
    "mode": _mode,
    "kick": _kick,
    "invite": _invite,
    "away": _away,
    "whois": _whois,
    "who": _who,
    "names": _names,
    "list": _list,
    "motd": _motd,
    "react": _on_line("react", "/react emoji"),
    "reply": _on_line("reply", "/reply text"),
    "edit": _on_line("edit", "/edit text"),
    "delete": _on_line("delete", "/delete", needs_text=False),
    "close": _close,
    "quit": _quit,
    "help": _help,
}
