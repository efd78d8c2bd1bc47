"""The client's picture of the chat: buffers, their lines, topics and members. Pure.

Queue items, command replies and history pages go in; what to draw comes out.
A buffer is keyed by its folded name (``SERVER`` for the server buffer), so
``#Chat`` and ``#chat`` are one buffer, as they are one channel.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from libs.irc import fold, is_channel
from services.chat import changes
from services.chat.commands import action_text

SERVER = "*"  # no nick or channel folds to this
MAX_LINES = 5000  # per buffer; the oldest are dropped past this (history can bring them back)
TRIM = 500

BufferKind = Literal["server", "channel", "query"]
LineKind = Literal["msg", "action", "notice", "event", "info", "error"]
COUNTED: frozenset[str] = frozenset({"msg", "action", "notice"})  # what unread counts
# Numerics shown in the buffer of the channel they name, and which parameter names it.
CHANNEL_PARAM = {
    "331": 0, "332": 0, "333": 0, "353": 1, "366": 0,
    "324": 0, "329": 0, "341": 1, "367": 0, "368": 0,
}  # fmt: skip


@dataclass(frozen=True)
class Line:
    """One line of a buffer. ``ts`` is RFC 3339; ``nick`` is set for chat lines."""

    ts: str
    kind: LineKind
    text: str
    nick: str = ""
    own: bool = False
    mention: bool = False
    item_id: str | None = None
    pos: int | None = None  # set on lines of the buffer's own history
    tail: str = ""  # after the text: (edited), reactions, (message deleted)
    quote: str = ""  # before the text of a reply: what it answers


@dataclass
class Member:
    nick: str
    op: bool = False
    voice: bool = False

    @property
    def prefix(self) -> str:
        return "@" if self.op else "+" if self.voice else ""


@dataclass
class Buffer:
    """A channel, a private conversation with one nick, or the server's messages."""

    key: str
    name: str
    kind: BufferKind
    lines: list[Line] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    unread: int = 0
    mention: bool = False
    joined: bool = False
    topic: str | None = None
    modes: str = ""
    members: dict[str, Member] = field(default_factory=dict)
    oldest_pos: int | None = None
    has_more: bool = True
    # Bumped whenever earlier lines change (history prepended, old lines trimmed,
    # a message edited, deleted or reacted to), so a view appending only new lines
    # knows to redraw.
    generation: int = 0
    reactions: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # id → emoji → nicks
    edited: set[str] = field(default_factory=set)
    read_pos: int | None = None  # the session's read marker, as last heard
    typing: dict[str, tuple[str, float]] = field(default_factory=dict)  # folded → (nick, until)

    @property
    def target(self) -> str | None:
        """The ``to`` of a command typed here: None in the server buffer."""
        return None if self.kind == "server" else self.name

    def sorted_members(self) -> list[Member]:
        """Operators, then voiced, then the rest, each alphabetically."""
        return sorted(self.members.values(), key=lambda m: (not m.op, not m.voice, fold(m.nick)))

    def add_member(self, nick: str, prefix: str = "") -> None:
        self.members[fold(nick)] = Member(nick, op="@" in prefix, voice="+" in prefix)


def now_ts() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def body_lines(body: Any) -> list[str]:
    """An item's body as text lines (a structured body is shown as its JSON)."""
    if isinstance(body, list):
        return [str(line) for line in body]
    if isinstance(body, dict):
        return [json.dumps(body, ensure_ascii=False)]
    return []


class Fields(NamedTuple):
    """What a queue item, history item or reply says, as strings."""

    command: str
    sender: str
    to: str
    params: list[str]
    body: list[str]
    ts: str  # now, when the item has no time


def fields(item: dict[str, Any]) -> Fields:
    return Fields(
        str(item.get("command", "")),
        str(item.get("from", "")),
        str(item.get("to", "")),
        [str(p) for p in item.get("params") or []],
        body_lines(item.get("body")),
        str(item.get("ts") or now_ts()),
    )


def place(item: dict[str, Any]) -> tuple[str | None, int | None]:
    """An item's id and its position in its target's history, when it has them."""
    item_id, pos = item.get("id"), item.get("pos")
    return (item_id if isinstance(item_id, str) else None, pos if isinstance(pos, int) else None)


_NICK_CHAR = r"A-Za-z0-9\[\]\\`_^{|}\-"


def mentions(text: str, nick: str) -> bool:
    """Whether ``nick`` appears in ``text`` as a word, compared case-folded."""
    if not nick:
        return False
    pattern = rf"(?<![{_NICK_CHAR}]){re.escape(fold(nick))}(?![{_NICK_CHAR}])"
    return re.search(pattern, fold(text)) is not None


def is_numeric(command: str) -> bool:
    return len(command) == 3 and command.isdigit()


def _stamp(epoch: str) -> str:
    try:
        return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (ValueError, OverflowError, OSError):
        return epoch


def _duration(seconds: str) -> str:
    try:
        left = int(seconds)
    except ValueError:
        return seconds
    parts = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    parts.append(f"{left}s")
    return " ".join(parts)


def _reason(lines: list[str]) -> str:
    text = " ".join(lines).strip()
    return f" ({text})" if text else ""


class ChatModel:
    """Every buffer and what to show in it, updated item by item."""

    def __init__(self, nick: str) -> None:
        self.me = nick
        self.away: str | None = None
        self.buffers: dict[str, Buffer] = {SERVER: Buffer(SERVER, "server", "server")}
        self.current = SERVER
        self._names: dict[str, list[Member]] = {}
        self.closed: set[str] = set()  # channels closed while still joined: their PART is due

    # --- buffers ----------------------------------------------------------------------

    def buffer(self, name: str, kind: BufferKind | None = None) -> Buffer:
        """The buffer for a channel or nick, created when missing."""
        key = fold(name)
        found = self.buffers.get(key)
        if found is None:
            kind = kind or ("channel" if is_channel(name) else "query")
            found = self.buffers[key] = Buffer(key, name, kind)
        return found

    def find(self, name: str) -> Buffer | None:
        return self.buffers.get(fold(name))

    @property
    def active(self) -> Buffer:
        return self.buffers[self.current]

    def order(self) -> list[Buffer]:
        """Server first, then channels, then private buffers, alphabetically."""
        rank = {"server": 0, "channel": 1, "query": 2}
        return sorted(self.buffers.values(), key=lambda b: (rank[b.kind], b.key))

    def select(self, key: str) -> Buffer:
        buffer = self.buffers[key]
        self.current = key
        buffer.unread = 0
        buffer.mention = False
        return buffer

    def cycle(self, step: int) -> Buffer:
        keys = [b.key for b in self.order()]
        return self.select(keys[(keys.index(self.current) + step) % len(keys)])

    def close(self, key: str) -> None:
        if key == SERVER or key not in self.buffers:
            return
        keys = [b.key for b in self.order()]
        closing = self.buffers.pop(key)
        if closing.kind == "channel" and closing.joined:
            self.closed.add(key)
        if self.current == key:
            self.select(keys[max(0, keys.index(key) - 1)])

    def add(self, buffer: Buffer, line: Line) -> None:
        """Append a line; unread counts chat lines in buffers other than the current one."""
        buffer.lines.append(line)
        if len(buffer.lines) > MAX_LINES + TRIM:
            del buffer.lines[:TRIM]
            buffer.generation += 1
            buffer.has_more = True
            buffer.seen = {kept.item_id for kept in buffer.lines if kept.item_id}
            positions = [kept.pos for kept in buffer.lines if kept.pos is not None]
            buffer.oldest_pos = min(positions, default=None)
        if buffer.key != self.current and line.kind in COUNTED and not line.own:
            buffer.unread += 1
            if line.mention or buffer.kind == "query":
                buffer.mention = True

    def note(self, text: str, kind: LineKind = "info", where: str | None = None) -> None:
        """A line of the client's own: in the server buffer, or in ``where``."""
        self.add(self.buffers[where or SERVER], Line(now_ts(), kind, text))

    def error(self, text: str) -> None:
        """An error: in the server buffer, and where the user is looking."""
        self.note(text, "error")
        if self.current != SERVER:
            self.note(text, "error", self.current)

    # --- the queue --------------------------------------------------------------------

    def apply(self, item: dict[str, Any]) -> list[str]:
        """Apply one queue item; the channels just joined (their members need fetching)."""
        command, sender, to, params, lines, ts = fields(item)
        mine = fold(sender) == fold(self.me)
        if is_numeric(command):
            self.apply_reply(item)
            return []
        if command in ("PRIVMSG", "NOTICE"):
            self._chat(item)
        elif command == "JOIN":
            channel = self.buffer(to, "channel")
            channel.name = to
            if mine:
                channel.joined = True
                self.closed.discard(channel.key)
            if fold(sender) not in channel.members:
                channel.add_member(sender)
            self._native(channel, item)
            return [channel.name] if mine else []
        elif command in ("PART", "KICK"):
            gone = params[0] if command == "KICK" and params else sender
            if fold(gone) == fold(self.me) and fold(to) in self.closed:
                self.closed.discard(fold(to))
                return []  # left with /close: the buffer is gone already
            channel = self.buffer(to, "channel")
            self._native(channel, item)
            if fold(gone) == fold(self.me):
                channel.joined = False
                channel.members.clear()
            else:
                channel.members.pop(fold(gone), None)
        elif command == "TOPIC":
            channel = self.buffer(to, "channel")
            channel.topic = lines[0] if lines and lines[0] else None
            self._native(channel, item)
        elif command == "MODE" and is_channel(to):
            channel = self.buffer(to, "channel")
            self._modes(channel, params)
            self._native(channel, item)
        elif command == "NICK":
            self._nick(sender, params[0] if params else to, ts, mine)
        elif command == "QUIT":
            self._quit(sender, lines, ts)
        elif command == "AWAY":
            self.away = lines[0] if lines else None
            text = f"You are marked away: {self.away}" if self.away else "You are back"
            self.add(self.buffers[SERVER], Line(ts, "event", text, item_id=item.get("id")))
        elif command in changes.CHANGES:
            changes.apply_change(self, item)
        elif command == "INVITE":
            invited = params[1] if len(params) > 1 else to
            text = f"invites you to {invited} (/join {invited})"
            line = Line(ts, "notice", text, nick=sender, mention=True)
            self.add(self.buffers[SERVER], line)
        else:
            text = " ".join([command, sender, to, *params, *lines])
            self.add(self.buffers[SERVER], Line(ts, "event", text))
        return []

    def _chat(self, item: dict[str, Any]) -> None:
        sender, to = str(item.get("from", "")), str(item.get("to", ""))
        if is_channel(to):
            buffer = self.buffer(to, "channel")
        elif "." in sender:  # nicks have no dots: the server itself
            buffer = self.buffers[SERVER]
        elif fold(sender) == fold(self.me):
            buffer = self.buffer(to, "query")
        elif item.get("command") == "NOTICE" and fold(sender) not in self.buffers:
            buffer = self.buffers[SERVER]
        else:
            buffer = self.buffer(sender, "query")
            buffer.name = sender
        buffer.typing.pop(fold(sender), None)
        self._native(buffer, item)

    def _native(self, buffer: Buffer, item: dict[str, Any]) -> None:
        """Add the lines of an item that belongs to this buffer's own history."""
        if self._take(buffer, item):
            for line in self.annotated(buffer, item):
                self.add(buffer, line)

    @staticmethod
    def _take(buffer: Buffer, item: dict[str, Any]) -> bool:
        """Record an item's id and position in ``buffer``; False when it is shown already."""
        item_id, pos = place(item)
        if item_id is not None:
            if item_id in buffer.seen:
                return False
            buffer.seen.add(item_id)
        if pos is not None and (buffer.oldest_pos is None or pos < buffer.oldest_pos):
            buffer.oldest_pos = pos
        return True

    def annotated(self, buffer: Buffer, item: dict[str, Any]) -> list[Line]:
        """An item's lines, the first with what happened to it and what it answers."""
        changes.remember(buffer, item)
        lines = self.lines_for(item)
        if lines and lines[0].kind in COUNTED and lines[0].tail != changes.DELETED:
            first = replace(lines[0], tail=changes.tail(buffer, lines[0].item_id))
            meta = item.get("meta")
            reply_to = meta.get("reply_to") if isinstance(meta, dict) else None
            lines[0] = changes.quoted(buffer, first, reply_to)
        return lines

    def lines_for(self, item: dict[str, Any]) -> list[Line]:
        """How a channel or private item reads, without changing anything."""
        command, sender, to, params, body, ts = fields(item)
        item_id, pos = place(item)
        own = fold(sender) == fold(self.me)

        def event(text: str) -> list[Line]:
            return [Line(ts, "event", text, item_id=item_id, pos=pos)]

        if command in ("PRIVMSG", "NOTICE"):
            out: list[Line] = []
            if item.get("deleted") or not body:
                kind0: LineKind = "msg" if command == "PRIVMSG" else "notice"
                return [Line(ts, kind0, "", sender, own, False, item_id, pos, changes.DELETED)]
            for text in body:
                action = action_text(text) if command == "PRIVMSG" else None
                kind: LineKind = (
                    "action" if action is not None else "msg" if command == "PRIVMSG" else "notice"
                )
                shown = action if action is not None else text
                mention = not own and mentions(shown, self.me)
                out.append(Line(ts, kind, shown, sender, own, mention, item_id, pos))
            return out
        if command == "JOIN":
            return event(f"→ {sender} has joined {to}")
        if command == "PART":
            return event(f"← {sender} has left {to}{_reason(body)}")
        if command == "KICK":
            kicked = params[0] if params else "?"
            return event(f"← {kicked} was kicked from {to} by {sender}{_reason(body)}")
        if command == "TOPIC":
            if body and body[0]:
                return event(f"{sender} changed the topic of {to} to: {body[0]}")
            return event(f"{sender} cleared the topic of {to}")
        if command == "MODE":
            return event(f"{sender} sets mode {' '.join(params)} on {to}")
        return event(" ".join([command, sender, to, *params, *body]))

    def _modes(self, channel: Buffer, params: list[str]) -> None:
        if not params:
            return
        flags = set(channel.modes.lstrip("+"))
        args = list(params[1:])
        adding = True
        for letter in params[0]:
            if letter in "+-":
                adding = letter == "+"
                continue
            takes_arg = letter in "ovb" or (letter in "kl" and adding)
            arg = args.pop(0) if takes_arg and args else None
            if letter == "k" and not adding and args and not takes_arg:
                args.pop(0)  # a key given with -k anyway
            if letter in "ov" and arg is not None:
                member = channel.members.get(fold(arg))
                if member is not None:
                    setattr(member, "op" if letter == "o" else "voice", adding)
            elif letter in "imnstkl":
                (flags.add if adding else flags.discard)(letter)
        channel.modes = "+" + "".join(sorted(flags)) if flags else ""

    def _nick(self, old: str, new: str, ts: str, mine: bool) -> None:
        text = f"You are now known as {new}" if mine else f"{old} is now known as {new}"
        if mine:
            self.me = new
            self.add(self.buffers[SERVER], Line(ts, "event", text))
        for buffer in list(self.buffers.values()):
            member = buffer.members.pop(fold(old), None)
            if member is not None:
                member.nick = new
                buffer.members[fold(new)] = member
                self.add(buffer, Line(ts, "event", text))
        query = self.buffers.get(fold(old))
        if query is not None and query.kind == "query" and fold(new) not in self.buffers:
            del self.buffers[query.key]
            query.key, query.name = fold(new), new
            self.buffers[query.key] = query
            if self.current == fold(old):
                self.current = query.key
            self.add(query, Line(ts, "event", text))

    def _quit(self, nick: str, reason: list[str], ts: str) -> None:
        text = f"← {nick} has quit{_reason(reason)}"
        for buffer in self.buffers.values():
            if buffer.members.pop(fold(nick), None) is not None or (
                buffer.kind == "query" and buffer.key == fold(nick)
            ):
                self.add(buffer, Line(ts, "event", text))

    # --- replies to commands --------------------------------------------------------

    def apply_reply(self, reply: dict[str, Any], show: bool = True) -> None:
        """Apply a numeric (or PONG) from a command's ``replies``.

        Numerics about a channel with a buffer go to that buffer; a 301 to the
        private buffer of the away nick; the rest to the server buffer.
        ``show=False`` applies without adding lines (the names sent with a JOIN).
        """
        command, _, _, params, body, ts = fields(reply)
        text_body = " ".join(body)
        where = self.buffers[SERVER]
        about = self._reply_channel(command, params)
        if about is not None:
            where = about
        text: str | None
        match command:
            case "353" if len(params) > 1:
                self._names.setdefault(fold(params[1]), []).extend(
                    Member(n.lstrip("@+"), op="@" in n[:2], voice="+" in n[:2])
                    for n in text_body.split()
                )
                text = f"Users on {params[1]}: {text_body}"
            case "366" if params:
                names = self._names.pop(fold(params[0]), [])
                if about is not None and about.joined:
                    about.members = {fold(m.nick): m for m in names}
                text = None
            case "332" if params:
                if about is not None:
                    about.topic = text_body or None
                text = f"Topic of {params[0]}: {text_body}"
            case "333" if len(params) > 2:
                text = f"Topic set by {params[1]} on {_stamp(params[2])}"
            case "331" if params:
                if about is not None:
                    about.topic = None
                text = f"{params[0]} has no topic"
            case "324" if params:
                if about is not None:
                    about.modes = params[1] if len(params) > 1 and params[1] != "+" else ""
                text = f"Modes of {params[0]}: {' '.join(params[1:])}"
            case "329" if len(params) > 1:
                text = f"{params[0]} was created on {_stamp(params[1])}"
            case "301" if params:
                query = self.find(params[0])
                if query is not None and query.kind == "query":
                    where = query
                text = f"{params[0]} is away: {text_body}"
            case "305" | "306":
                text = None  # the AWAY item says it on every device
            case "341" if len(params) > 1:
                text = f"You invited {params[0]} to {params[1]}"
            case "311" if len(params) > 2:
                text = f"{params[0]} is {params[1]}@{params[2]} ({text_body})"
            case "312" if len(params) > 1:
                text = f"{params[0]} is on {params[1]} ({text_body})"
            case "319" if params:
                text = f"{params[0]} is on {text_body}"
            case "317" if len(params) > 2:
                text = (
                    f"{params[0]} has been idle {_duration(params[1])}, "
                    f"signed on {_stamp(params[2])}"
                )
            case "322" if len(params) > 1:
                text = f"{params[0]:<20} {params[1]:>5}  {text_body}"
            case "321":
                text = f"{'Channel':<20} {'Users':>5}  Topic"
            case "352" if len(params) > 5:
                text = f"{params[0]:<20} {params[1]:<16} {params[5]}"
            case "221" if params:
                text = f"Your user modes: {params[0]}"
            case "367" if len(params) > 3:
                text = f"{params[0]} ban {params[1]} set by {params[2]} on {_stamp(params[3])}"
            case _:
                head = params[1:] if command in ("PONG",) else params
                text = " ".join([*head, text_body]).strip() or command
        if show and text is not None:
            self.add(where, Line(ts, "info", text))

    def _reply_channel(self, command: str, params: list[str]) -> Buffer | None:
        """The channel buffer a numeric is about, when it has one."""
        index = CHANNEL_PARAM.get(command)
        if index is None or len(params) <= index:
            return None
        found = self.find(params[index])
        return found if found is not None and found.kind == "channel" else None

    # --- history and reads ------------------------------------------------------------

    def prepend_history(self, key: str, page: dict[str, Any]) -> int:
        """Put a history page (oldest first) before the buffer's lines; how many items
        were new. Items already shown are skipped."""
        buffer = self.buffers[key]
        before = len(buffer.lines)
        older: list[Line] = []
        for item in page.get("messages", []):
            if self._take(buffer, item):
                older.extend(self.annotated(buffer, item))
        buffer.lines[:0] = older
        buffer.has_more = bool(page.get("has_more"))
        if older:
            buffer.generation += 1
        return len(buffer.lines) - before

    def set_members(self, channel: str, members: list[dict[str, str]]) -> None:
        """The members as ``GET /channels/{name}/members`` lists them."""
        buffer = self.find(channel)
        if buffer is not None and buffer.joined:
            buffer.members = {}
            for member in members:
                buffer.add_member(member["nick"], member.get("prefix", ""))

    def set_channel(self, info: dict[str, Any]) -> None:
        """Topic and modes as ``GET /channels/{name}`` states them."""
        buffer = self.find(str(info.get("name", "")))
        if buffer is not None:
            buffer.name = str(info["name"])
            buffer.topic = info.get("topic") or None
            modes = str(info.get("modes") or "")
            buffer.modes = "" if modes == "+" else modes
