"""What happens to chat lines after they are said, in the terminal client. Pure.

Reactions, edits and deletes re-draw the lines of the message they name;
replies show the start of the line they answer; read markers (from any
device of the session) recount what is unread; typing notices say who is
typing where, until they expire.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from libs.irc import fold, is_channel

if TYPE_CHECKING:
    from services.chat.model import Buffer, ChatModel, Line

CHANGES = frozenset({"REACT", "UNREACT", "EDIT", "DELETE", "PIN", "UNPIN", "MARKREAD", "PUBKEY"})
DELETED = "(message deleted)"


def reactions_text(reactions: dict[str, list[str]]) -> str:
    """``🎉2 👍1``: each emoji with how many reacted with it."""
    return " ".join(f"{emoji}{len(nicks)}" for emoji, nicks in reactions.items() if nicks)


def tail(buffer: Buffer, item_id: str | None) -> str:
    """What follows a message's first line: whether it was edited, its reactions."""
    if item_id is None:
        return ""
    parts = ["(edited)"] if item_id in buffer.edited else []
    shown = reactions_text(buffer.reactions.get(item_id, {}))
    return " ".join([*parts, shown] if shown else parts)


def remember(buffer: Buffer, item: dict[str, Any]) -> None:
    """Keep what a history or queue item says happened to it."""
    item_id = item.get("id")
    if not isinstance(item_id, str) or item.get("command") not in ("PRIVMSG", "NOTICE"):
        return
    if item.get("edited"):
        buffer.edited.add(item_id)
    reactions = item.get("reactions")
    if isinstance(reactions, list) and reactions:
        buffer.reactions[item_id] = {
            str(r.get("emoji")): [str(n) for n in r.get("nicks") or []] for r in reactions
        }


def quoted(buffer: Buffer, line: Line, reply_to: Any) -> Line:
    """A reply's first line, with the start of the line it answers when that is here."""
    if not isinstance(reply_to, str):
        return line
    parent = next((kept for kept in buffer.lines if kept.item_id == reply_to), None)
    if parent is None or parent.tail == DELETED:
        return replace(line, quote="↪")
    return replace(line, quote=f"↪ {parent.nick}: {parent.text[:40]}")


def conversation(model: ChatModel, item: dict[str, Any]) -> Buffer | None:
    """The buffer a change item concerns, when it is open."""
    sender, to = str(item.get("from", "")), str(item.get("to", ""))
    if is_channel(to):
        return model.find(to)
    return model.find(to if fold(sender) == fold(model.me) else sender)


def apply_change(model: ChatModel, item: dict[str, Any]) -> None:
    """A REACT, UNREACT, EDIT, DELETE, PIN, UNPIN, MARKREAD or PUBKEY from the queue."""
    from services.chat.model import SERVER, Line, fields

    command, sender, _, params, _, ts = fields(item)
    if command == "PUBKEY":
        model.add(model.buffers[SERVER], Line(ts, "event", f"{sender} announced a signing key"))
        return
    if command == "MARKREAD":
        buffer = model.find(str(item.get("to", "")))
        if buffer is not None and params and params[0].isascii() and params[0].isdigit():
            mark_read(buffer, int(params[0]))
        return
    buffer = conversation(model, item)
    if buffer is None or not params:
        return
    message = params[0]
    if command in ("PIN", "UNPIN"):
        verb = "pinned" if command == "PIN" else "unpinned"
        model.add(buffer, Line(ts, "event", f"{sender} {verb} a message"))
        return
    if command in ("REACT", "UNREACT") and len(params) > 1:
        nicks = buffer.reactions.setdefault(message, {}).setdefault(params[1], [])
        nicks[:] = [n for n in nicks if fold(n) != fold(sender)]
        if command == "REACT":
            nicks.append(sender)
    elif command == "EDIT":
        body = [str(line) for line in item.get("body") or []]
        if not body:
            return
        buffer.edited.add(message)
        _rewrite(buffer, message, body)
    elif command == "DELETE":
        buffer.reactions.pop(message, None)
        buffer.edited.discard(message)
        _rewrite(buffer, message, None)
    _retail(buffer, message)


def _rewrite(buffer: Buffer, message: str, body: list[str] | None) -> None:
    """New text for a message's lines (``None``: deleted)."""
    at = next((n for n, line in enumerate(buffer.lines) if line.item_id == message), None)
    if at is None:
        return
    first = buffer.lines[at]
    if first.tail == DELETED:
        return
    count = sum(1 for line in buffer.lines if line.item_id == message)
    if body is None:
        lines = [replace(first, text="", tail=DELETED, quote="", mention=False)]
    else:
        lines = [
            replace(first, text=text, quote=first.quote if not n else "", mention=False)
            for n, text in enumerate(body)
        ]
    buffer.lines[at : at + count] = lines
    buffer.generation += 1


def _retail(buffer: Buffer, message: str) -> None:
    for n, line in enumerate(buffer.lines):
        if line.item_id == message:
            if line.tail != DELETED:
                buffer.lines[n] = replace(line, tail=tail(buffer, message))
                buffer.generation += 1
            return


def mark_read(buffer: Buffer, pos: int) -> None:
    """The session read ``buffer`` up to ``pos``: count again what is unread after it."""
    from services.chat.model import COUNTED

    buffer.read_pos = max(buffer.read_pos or 0, pos)
    unread = {
        line.item_id
        for line in buffer.lines
        if line.kind in COUNTED
        and not line.own
        and line.pos is not None
        and line.pos > buffer.read_pos
        and line.tail != DELETED
    }
    buffer.unread = len(unread)
    if not unread:
        buffer.mention = False


def latest_pos(buffer: Buffer) -> int | None:
    return max((line.pos for line in buffer.lines if line.pos is not None), default=None)


def typing(model: ChatModel, notice: dict[str, Any], now: float) -> float | None:
    """Record a typing notice; the seconds it holds (None when it ends one)."""
    if notice.get("type") != "typing":
        return None
    buffer = conversation(model, notice)
    if buffer is None:
        return None
    who = str(notice.get("from", ""))
    if notice.get("state") == "active":
        holds = float(notice.get("expires_in") or 0)
        buffer.typing[fold(who)] = (who, now + holds)
        return holds
    buffer.typing.pop(fold(who), None)
    return None


def typing_text(buffer: Buffer, now: float) -> str:
    """``bob is typing…`` for who types in ``buffer`` now."""
    nicks = [nick for nick, until in buffer.typing.values() if until > now]
    if not nicks:
        return ""
    if len(nicks) == 1:
        return f"{nicks[0]} is typing…"
    return f"{', '.join(nicks[:-1])} and {nicks[-1]} are typing…"
