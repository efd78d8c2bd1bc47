"""How lines, nicks and buffer names look: rich ``Text`` built from plain strings.

Message text never passes through markup parsing; IRC formatting codes
(bold, italic, underline, reverse, colours) become styles and every other
control character is dropped.
"""

from __future__ import annotations

import zlib
from datetime import datetime

from rich.style import Style
from rich.text import Text

from libs.irc import fold
from services.chat.model import Buffer, Line, Member

NICK_COLOURS = (
    "#ff6b6b",
    "#ffa94d",
    "#ffd43b",
    "#a9e34b",
    "#38d9a9",
    "#4dabf7",
    "#748ffc",
    "#da77f2",
    "#f783ac",
    "#63e6be",
    "#e599f7",
)

# The sixteen standard IRC colours (\x03NN).
IRC_COLOURS = (
    "#ffffff",
    "#000000",
    "#00007f",
    "#009300",
    "#ff0000",
    "#7f0000",
    "#9c009c",
    "#fc7f00",
    "#ffff00",
    "#00fc00",
    "#009393",
    "#00ffff",
    "#0000fc",
    "#ff00ff",
    "#7f7f7f",
    "#d2d2d2",
)

BOLD, COLOUR, ITALIC, UNDERLINE, STRIKE, REVERSE, RESET = (
    "\x02",
    "\x03",
    "\x1d",
    "\x1f",
    "\x1e",
    "\x16",
    "\x0f",
)


def nick_colour(nick: str) -> str:
    """The same colour for the same nick, in every run and every buffer."""
    return NICK_COLOURS[zlib.crc32(fold(nick).encode()) % len(NICK_COLOURS)]


def clock(ts: str) -> str:
    """``HH:MM`` in local time for an RFC 3339 timestamp."""
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone().strftime("%H:%M")
    except ValueError:
        return "--:--"


def formatted(text: str, base: Style | None = None) -> Text:
    """Text with IRC formatting codes turned into styles."""
    out = Text(style=base or Style())
    bold = italic = underline = strike = reverse = False
    fg: str | None = None
    bg: str | None = None
    index = 0
    while index < len(text):
        char = text[index]
        index += 1
        if char == BOLD:
            bold = not bold
        elif char == ITALIC:
            italic = not italic
        elif char == UNDERLINE:
            underline = not underline
        elif char == STRIKE:
            strike = not strike
        elif char == REVERSE:
            reverse = not reverse
        elif char == RESET:
            bold = italic = underline = strike = reverse = False
            fg = bg = None
        elif char == COLOUR:
            fg, bg, index = _colours(text, index, fg, bg)
        elif char < " " or char == "\x7f":
            continue
        else:
            style = Style(
                bold=bold or None,
                italic=italic or None,
                underline=underline or None,
                strike=strike or None,
                reverse=reverse or None,
                color=fg,
                bgcolor=bg,
            )
            out.append(char, style)
    return out


def _colours(
    text: str, index: int, fg: str | None, bg: str | None
) -> tuple[str | None, str | None, int]:
    """``\\x03`` then ``NN[,NN]`` sets colours; a bare ``\\x03`` resets them."""
    digits = _digits(text, index)
    if not digits:
        return None, None, index
    index += len(digits)
    fg = _irc_colour(digits)
    if index < len(text) - 1 and text[index] == "," and text[index + 1].isdigit():
        back = _digits(text, index + 1)
        bg = _irc_colour(back)
        index += 1 + len(back)
    return fg, bg, index


def _digits(text: str, index: int) -> str:
    end = index
    while end < len(text) and end - index < 2 and text[end].isdigit():
        end += 1
    return text[index:end]


def _irc_colour(digits: str) -> str | None:
    number = int(digits)
    return IRC_COLOURS[number] if number < len(IRC_COLOURS) else None


def line_text(line: Line) -> Text:
    """One buffer line: time, then the nick in its colour, then the text."""
    out = Text(clock(line.ts) + " ", style="dim")
    colour = nick_colour(line.nick) if line.nick else None
    nick_style = Style(color=colour, bold=line.own or None)
    if line.quote:
        out.append(line.quote + " ", style="dim italic")
    _kind(out, line, nick_style)
    if line.tail:
        out.append(" " if line.text else "", style="dim")
        out.append(line.tail, style="dim italic")
    return out


def _kind(out: Text, line: Line, nick_style: Style) -> None:
    match line.kind:
        case "msg":
            out.append("<", style="dim")
            out.append(line.nick, style=nick_style + Style(reverse=line.mention or None))
            out.append("> ", style="dim")
            out.append_text(formatted(line.text, Style(bold=line.mention or None)))
        case "action":
            out.append("* ", style="bold")
            out.append(line.nick, style=nick_style)
            out.append(" ")
            out.append_text(formatted(line.text, Style(italic=True)))
        case "notice":
            out.append("-", style="dim")
            out.append(line.nick or "server", style=nick_style)
            out.append("- ", style="dim")
            out.append_text(formatted(line.text))
        case "event":
            out.append_text(formatted(line.text, Style(color="#8a8a8a")))
        case "info":
            out.append_text(formatted(line.text, Style(color="#7fb4ca")))
        case "error":
            out.append("! ", style="bold red")
            out.append_text(formatted(line.text, Style(color="red")))


def buffer_label(buffer: Buffer) -> Text:
    """A buffer in the list: its name, and its unread count (bright when it calls you)."""
    name = "server" if buffer.kind == "server" else buffer.name
    style = (
        "bold" if buffer.unread else "dim" if buffer.kind == "channel" and not buffer.joined else ""
    )
    out = Text(name, style=style)
    if buffer.unread:
        out.append(f" ({buffer.unread})", style="bold magenta" if buffer.mention else "bold cyan")
    return out


def member_text(member: Member) -> Text:
    out = Text(member.prefix or " ", style="bold green" if member.op else "bold yellow")
    out.append(member.nick, style=nick_colour(member.nick))
    return out


def plain(line: Line) -> str:
    """A line as plain text, for logs and tests: ``<nick> text``, ``* nick text`` …"""
    quote = f"{line.quote} " if line.quote else ""
    tail = (" " if line.text else "") + line.tail if line.tail else ""
    match line.kind:
        case "msg":
            return f"{quote}<{line.nick}> {line.text}{tail}"
        case "action":
            return f"{quote}* {line.nick} {line.text}{tail}"
        case "notice":
            return f"{quote}-{line.nick}- {line.text}{tail}"
        case _:
            return line.text
