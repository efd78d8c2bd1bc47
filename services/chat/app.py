"""The full-screen terminal client: textual widgets over ``ChatModel`` and ``ChatClient``.

Two background workers talk to the server: the session worker opens (or
resumes) the session and then long-polls the queue, and the sender posts what
the user types, one command at a time so lines keep their order. Every answer
goes into the model first; ``_render`` then brings the widgets up to date.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, ClassVar

import httpx
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from libs.irc import fold
from services.chat import changes, state
from services.chat.client import ApiError, ChatClient
from services.chat.commands import help_lines, parse_input
from services.chat.model import COUNTED, SERVER, ChatModel, Line
from services.chat.render import buffer_label, line_text, member_text
from services.chat.state import Cursor, SavedState
from services.chat.widgets import BufferLog, CommandInput

RECONNECT_MAX = 30.0


class ChatApp(App[None]):
    """``chinwag chat``: buffers on the left, lines in the middle, members on the right."""

    TITLE = "chinwag"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Screen { layout: vertical; }
    #topic { height: 1; padding: 0 1; background: $primary-background; color: $text; }
    #main { height: 1fr; }
    #buffers, #members { height: 100%; }
    #buffers { width: 22; border: none; border-right: solid $primary-background-lighten-2;
               background: $surface; }
    #log { width: 1fr; padding: 0 1; background: $surface; overflow-y: auto;
           scrollbar-size-vertical: 1; }
    #members { width: 20; border: none; border-left: solid $primary-background-lighten-2;
               background: $surface; }
    #status { height: 1; padding: 0 1; background: $primary-background-darken-1;
              color: $text-muted; }
    #input { height: 1; border: none; padding: 0 1; background: $surface; }
    #input:focus { border: none; background-tint: $foreground 0%; }
    OptionList { scrollbar-size-vertical: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n,alt+right", "cycle(1)", "Next buffer", show=False, priority=True),
        Binding("ctrl+p,alt+left", "cycle(-1)", "Previous buffer", show=False, priority=True),
        Binding("pageup", "page(-1)", "Older", show=False, priority=True),
        Binding("pagedown", "page(1)", "Newer", show=False, priority=True),
        *(
            Binding(f"alt+{n}", f"go({n})", show=False, priority=True)
            for n in (1, 2, 3, 4, 5, 6, 7, 8, 9)
        ),
    ]

    def __init__(
        self,
        server: str,
        nick: str,
        *,
        password: str | None = None,
        state_path: Path | None = None,
        poll_timeout: float = 25.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__()
        self.server = server.rstrip("/")
        self.nick = nick
        self.password = password
        self.state_path = state_path or state.default_path(server, nick)
        self.client = ChatClient(self.server, poll_timeout=poll_timeout, transport=transport)
        self.model = ChatModel(nick)
        self.saved: SavedState | None = None
        self.cursor = Cursor()
        self.connection = "connecting"
        # Set whenever the model changed (an item, a reply, a history page): tests wait on it.
        self.activity = asyncio.Event()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._shown: tuple[str, int] | None = None
        self._drawn = 0
        self._lists: dict[str, Any] = {}
        self._loading: set[str] = set()
        self._mounted = False

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="topic")
        with Horizontal(id="main"):
            yield OptionList(id="buffers")
            yield BufferLog(id="log")
            yield OptionList(id="members")
        yield Static(id="status")
        yield CommandInput(id="input", placeholder="type a message, or /help")

    def on_mount(self) -> None:
        for widget in self.query(OptionList):
            widget.can_focus = False
        self.query_one(CommandInput).focus()
        self._mounted = True
        self.model.note(f"Connecting to {self.server} as {self.nick}…")
        self._render()
        self.run_worker(self._session(), name="session", group="session")
        self.run_worker(self._sender(), name="sender", group="sender")

    async def on_unmount(self) -> None:
        self._mounted = False
        self.workers.cancel_all()
        if self.saved is not None and self.saved.token is not None:
            self._save()  # the open private buffers
        await self.client.aclose()

    # --- the session and the queue ------------------------------------------------------

    async def _session(self) -> None:
        if await self._open():
            await self._poll()

    async def _open(self) -> bool:
        """Resume the saved client or start one; False when the server refused."""
        saved: SavedState | None = None
        try:
            saved = state.load(self.state_path)
        except state.StateError as error:
            self.model.error(f"{error}; starting a new session")
        if saved is not None and saved.server.rstrip("/") != self.server:
            self.model.note(f"{self.state_path} is for {saved.server}; starting a new session")
            saved = None
        delay = 1.0
        while True:
            try:
                opened = await self.client.open(saved, self.nick, self.password)
                break
            except ApiError as error:
                self.connection = "not connected"
                hint = "; /nick another to try again" if error.status == 409 else ""
                self.model.error(f"cannot open a session as {self.nick}: {error.message}{hint}")
                self._changed()
                return False
            except httpx.HTTPError as error:
                self.connection = "connecting"
                self.model.error(
                    f"cannot reach {self.server} ({error!r}); retrying in {delay:.0f}s"
                )
                self._changed()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
        if saved is not None and saved.token and not opened.resumed:
            self.model.note("The saved session has ended; this is a new one")
        self.saved = opened.state
        self._save()
        self.cursor = Cursor(self.saved.last_seq)
        self.model.me = self.saved.nick
        self.model.away = opened.away
        for name in opened.channels:
            self.model.buffer(name, "channel").joined = True
            self._fetch_channel(name)
        for nick in self.saved.queries:
            self.model.buffer(nick, "query")
        if opened.channels and self.model.current == SERVER:
            self.model.select(self.model.buffer(opened.channels[0]).key)
        self._unread(opened.unread, opened.read)
        how = "Resumed" if opened.resumed else "Connected"
        self.model.note(
            f"{how} as {self.saved.nick} (seq {self.saved.last_seq}); state in {self.state_path}"
        )
        self.connection = "connected"
        self._changed()
        return True

    async def _poll(self) -> None:
        delay = 1.0
        while True:
            try:
                page = await self.client.poll(self.cursor.last_seq)
            except ApiError as error:
                if error.unauthorized:
                    self._session_ended("the server no longer knows this client")
                    return
                self.model.error(f"polling: {error.message}; retrying in {delay:.0f}s")
            except httpx.HTTPError:
                if self.connection == "connected":
                    self.model.error(f"lost the connection to {self.server}; reconnecting")
                self.connection = "reconnecting"
                self._changed()
            else:
                if self.connection != "connected":
                    self.model.note("Reconnected")
                    self.connection = "connected"
                delay = 1.0
                self._deliver(page)
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    def _deliver(self, page: dict[str, Any]) -> None:
        """Show a poll page, then record its last seq: nothing between can interleave."""
        gaps = len(self.cursor.gaps)
        items = self.cursor.accept(page)
        joined: list[str] = []
        for item in items:
            joined += self.model.apply(item)
        for notice in page.get("ephemeral") or []:
            holds = changes.typing(self.model, notice, time.monotonic())
            if holds:
                self.set_timer(holds + 0.05, self._changed)
        for expected, got in self.cursor.gaps[gaps:]:
            self.model.error(f"the queue skipped from seq {expected} to {got}")
        if items and self.saved is not None:
            self.saved.last_seq = self.cursor.last_seq
            self.saved.nick = self.model.me
            self._save()
        for name in joined:
            self._fetch_channel(name)
        self._changed()

    def _save(self) -> None:
        if self.saved is None:
            return
        if self.saved.token is not None:
            self.saved.queries = [b.name for b in self.model.order() if b.kind == "query"]
        try:
            state.save(self.state_path, self.saved)
        except OSError as error:
            self.model.error(f"cannot save {self.state_path}: {error}")

    def _session_ended(self, why: str) -> None:
        self.model.error(f"The session has ended ({why}); restart to begin a new one")
        self.connection = "ended"
        if self.saved is not None:
            self.saved.forget_session()
            self._save()
        self.client.token = None
        self._changed()

    def _unread(self, unread: dict[str, int], read: dict[str, int]) -> None:
        """Unread counts and read markers as the server has them (another device read)."""
        for name, count in unread.items():
            buffer = self.model.find(name)
            if buffer is None and count and not name.startswith("#"):
                buffer = self.model.buffer(name, "query")
            if buffer is None:
                continue
            if name in read:
                buffer.read_pos = int(read[name])
            if buffer.key != self.model.current:
                buffer.unread = int(count)

    def _fetch_channel(self, name: str) -> None:
        self.run_worker(self._read_channel(name), group="reads")

    async def _read_channel(self, name: str) -> None:
        try:
            info, members = await asyncio.gather(
                self.client.channel(name), self.client.members(name)
            )
        except (ApiError, httpx.HTTPError):
            return  # gone or hidden again by now: the queue says what happened
        self.model.set_channel(info)
        self.model.set_members(name, members)
        self._changed()

    # --- what the user types ------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        line = event.value
        field = self.query_one(CommandInput)
        field.value = ""
        field.remember(line)
        self.submit(line)

    def submit(self, line: str) -> None:
        """Act on one typed line, as if entered in the current buffer."""
        parsed = parse_input(line, self.model.active.target)
        local = parsed.get("local")
        if self.connection == "not connected" and parsed.get("command") == "NICK":
            self.nick = parsed["params"][0]  # the nick was taken: try again with this one
            self.connection = "connecting"
            self.run_worker(self._session(), name="session", group="session")
        elif local is None:
            self._outbox.put_nowait(parsed)
        elif local == "query":
            self.model.select(self.model.buffer(parsed["to"], "query").key)
            if parsed["text"]:
                self._outbox.put_nowait(
                    {"command": "PRIVMSG", "to": parsed["to"], "body": [parsed["text"]]}
                )
        elif local == "help":
            for text in help_lines(parsed["topic"]):
                self.model.note(text, where=self.model.current)
        elif local == "close":
            buffer = self.model.active
            if buffer.kind == "channel" and buffer.joined:
                self._outbox.put_nowait({"command": "PART", "to": buffer.name})
            self.model.close(buffer.key)
        elif local in ("react", "reply", "edit", "delete"):
            self._on_line(local, parsed["to"], parsed["text"])
        elif local == "error":
            self.model.note(parsed["message"], "error", self.model.current)
        self._changed()

    def _on_line(self, action: str, to: str, text: str) -> None:
        """/react, /reply, /edit, /delete: about the last fitting line of this buffer."""
        mine = action in ("edit", "delete")
        line = next(
            (
                kept
                for kept in reversed(self.model.active.lines)
                if kept.item_id
                and kept.kind in COUNTED
                and kept.own == mine
                and kept.tail != changes.DELETED
            ),
            None,
        )
        if line is None:
            whose = "your" if mine else "someone else's"
            self.model.note(f"/{action}: no line of {whose} here", "error", self.model.current)
            return
        target = line.item_id or ""  # every line of a message carries the message's id
        command: dict[str, Any]
        if action == "react":
            command = {"command": "REACT", "to": to, "params": [target, text.split()[0]]}
        elif action == "reply":
            command = {"command": "PRIVMSG", "to": to, "body": [text], "meta": {"reply_to": target}}
        elif action == "edit":
            command = {"command": "EDIT", "to": to, "params": [target], "body": [text]}
        else:
            command = {"command": "DELETE", "to": to, "params": [target]}
        self._outbox.put_nowait(command)

    def _mark_read(self) -> None:
        """Tell the session's other devices this buffer is read up to its newest line."""
        buffer = self.model.active
        if buffer.kind == "server" or (buffer.kind == "channel" and not buffer.joined):
            return
        if self.saved is None or self.client.token is None:
            return
        pos = changes.latest_pos(buffer)
        if pos is None or pos <= (buffer.read_pos or 0):
            return
        buffer.read_pos = pos
        self._outbox.put_nowait({"command": "MARKREAD", "to": buffer.name, "params": [str(pos)]})

    async def _sender(self) -> None:
        while True:
            command = await self._outbox.get()
            if self.saved is None or self.client.token is None:
                self.model.error(f"{command['command']}: not connected")
                self._changed()
                continue
            try:
                answer = await self.client.send(command)
            except ApiError as error:
                if error.unauthorized:
                    self._session_ended("the server no longer knows this client")
                else:
                    self.model.error(f"{command['command']}: {error.message}")
                self._changed()
                continue
            except httpx.HTTPError as error:
                self.model.error(f"{command['command']}: not sent ({error!r})")
                self._changed()
                continue
            self._answered(command, answer)

    def _answered(self, command: dict[str, Any], answer: dict[str, Any]) -> None:
        name = command["command"]
        if name == "JOIN":
            self.model.buffer(command["to"], "channel").joined = True
        for reply in answer.get("replies", []):
            quiet = name == "JOIN" and reply.get("command") in ("353", "366")
            self.model.apply_reply(reply, show=not quiet)
        if name == "JOIN":
            self.model.select(self.model.buffer(command["to"], "channel").key)
        elif name == "QUIT":
            if self.saved is not None:
                self.saved.forget_session()
                self._save()
            self.exit()
        self._changed()

    # --- keys and clicks ----------------------------------------------------------------

    def action_cycle(self, step: int) -> None:
        self.model.cycle(step)
        self._changed()

    def action_go(self, number: int) -> None:
        order = self.model.order()
        if number <= len(order):
            self.model.select(order[number - 1].key)
            self._changed()

    def action_page(self, direction: int) -> None:
        log = self.query_one(BufferLog)
        if direction > 0:
            log.scroll_page_down(animate=False)
        elif log.scroll_offset.y > 0:
            log.scroll_page_up(animate=False)
        else:
            self.load_older()

    def on_buffer_log_at_top(self, message: BufferLog.AtTop) -> None:
        self.load_older()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "buffers" and event.option.id in self.model.buffers:
            self.model.select(event.option.id)
        elif event.option_list.id == "members" and event.option.id:
            self.model.select(self.model.buffer(event.option.id, "query").key)
        self.query_one(CommandInput).focus()
        self._changed()

    def load_older(self) -> None:
        """Fetch the page of history just before the current buffer's oldest line."""
        buffer = self.model.active
        if buffer.kind == "server" or buffer.key in self._loading:
            return
        if not buffer.has_more:
            self.notify("No older lines", timeout=2)
            return
        self._loading.add(buffer.key)
        self.run_worker(self._older(buffer.key), group="history")

    async def _older(self, key: str) -> None:
        try:
            buffer = self.model.buffers.get(key)
            if buffer is None:
                return
            page = await self.client.history(buffer.name, before=buffer.oldest_pos)
        except ApiError as error:
            self.model.note(f"history: {error.message}", "error", key)
        except httpx.HTTPError as error:
            self.model.note(f"history: {error!r}", "error", key)
        else:
            if key in self.model.buffers:
                added = self.model.prepend_history(key, page)
                if key == self.model.current and added:
                    self._redraw(older=added)
        finally:
            self._loading.discard(key)
            self._changed()

    # --- drawing ----------------------------------------------------------------------

    def _changed(self) -> None:
        self._mark_read()
        self._render()
        self.activity.set()

    def _render(self) -> None:
        if not self._mounted:
            return
        buffer = self.model.active
        if self._shown != (buffer.key, buffer.generation):
            self._redraw()
        elif len(buffer.lines) > self._drawn:
            log = self.query_one(BufferLog)
            log.extend([line_text(line) for line in buffer.lines[self._drawn :]])
            self._drawn = len(buffer.lines)
        self._render_lists()
        self.query_one("#topic", Static).update(self._topic())
        self.query_one("#status", Static).update(self._status())

    def _redraw(self, older: int | None = None) -> None:
        buffer = self.model.active
        self.query_one(BufferLog).show([line_text(line) for line in buffer.lines], older)
        self._shown = (buffer.key, buffer.generation)
        self._drawn = len(buffer.lines)

    def _render_lists(self) -> None:
        order = self.model.order()
        labels = [buffer_label(b) for b in order]
        signature = [(b.key, label.markup) for b, label in zip(order, labels, strict=True)]
        if self._lists.get("buffers") != (signature, self.model.current):
            self._lists["buffers"] = (signature, self.model.current)
            buffers = self.query_one("#buffers", OptionList)
            buffers.set_options(
                Option(label, id=b.key) for b, label in zip(order, labels, strict=True)
            )
            buffers.highlighted = [b.key for b in order].index(self.model.current)
        active = self.model.active
        members = active.sorted_members() if active.kind == "channel" else []
        listed = [(m.prefix, m.nick) for m in members]
        field = self.query_one(CommandInput)
        field.nicks = [m.nick for m in members] or ([active.name] if active.kind == "query" else [])
        if self._lists.get("members") != (active.key, listed):
            self._lists["members"] = (active.key, listed)
            widget = self.query_one("#members", OptionList)
            widget.display = active.kind == "channel"
            widget.set_options(Option(member_text(m), id=m.nick) for m in members)

    def _topic(self) -> Text:
        buffer = self.model.active
        if buffer.kind == "server":
            return Text(f"{self.server} — notices, server replies and errors")
        if buffer.kind == "query":
            return Text(f"Private conversation with {buffer.name}")
        out = Text(buffer.name, style="bold")
        if buffer.modes:
            out.append(f" [{buffer.modes}]", style="dim")
        if not buffer.joined:
            out.append(" (not joined)", style="italic")
        out.append(" ")
        out.append(buffer.topic or "no topic", style="" if buffer.topic else "dim italic")
        return out

    def _status(self) -> Text:
        out = Text()
        out.append(self.model.me, style="bold")
        if self.model.away is not None:
            out.append(" (away)", style="yellow")
        out.append("  │  ")
        state_style = "green" if self.connection == "connected" else "yellow"
        out.append(self.connection, style=state_style)
        typing = changes.typing_text(self.model.active, time.monotonic())
        if typing:
            out.append("  │  ")
            out.append(typing, style="italic")
        out.append("  │  Ctrl+N/P buffers · PgUp older lines · /help · Ctrl+Q leave", style="dim")
        return out

    # --- for tests and tools ------------------------------------------------------------

    def lines_of(self, name: str) -> list[Line]:
        """The lines of a buffer (``SERVER`` or a channel or nick), empty if there is none."""
        buffer = self.model.buffers.get(SERVER if name == SERVER else fold(name))
        return list(buffer.lines) if buffer is not None else []
