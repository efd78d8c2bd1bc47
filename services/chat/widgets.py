"""The terminal client's own widgets: the log of the current buffer and the input line."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Input, RichLog

from libs.irc import fold


class BufferLog(RichLog, can_focus=False):
    """The current buffer's lines. Re-wraps them on resize; asks for older ones at the top."""

    class AtTop(Message):
        """The user scrolled up past the first line."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(wrap=True, min_width=1, **kwargs)
        self._texts: list[Text] = []
        self._width = 0

    def show(self, texts: list[Text], older: int | None = None) -> None:
        """Draw these lines; with ``older``, that many new ones were put on top, and the
        view stays on the line that was first before."""
        self._texts = list(texts)
        self._draw(older)

    def extend(self, texts: list[Text]) -> None:
        """Add lines at the bottom, following them if the view was at the bottom."""
        self._texts.extend(texts)
        if self._width:
            follow = self.is_vertical_scroll_end
            for text in texts:
                self.write(text, scroll_end=follow)

    def _draw(self, older: int | None = None) -> None:
        self.clear()
        if not self._width:
            return
        split = older or 0
        for text in self._texts[:split]:
            self.write(text, scroll_end=False)
        anchor = len(self.lines)
        for text in self._texts[split:]:
            self.write(text, scroll_end=False)
        if older:
            self.call_after_refresh(self.scroll_to, y=anchor, animate=False)
        else:
            self.call_after_refresh(self.scroll_end, animate=False)

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            self._draw()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        if self.scroll_offset.y == 0:
            self.post_message(self.AtTop())


class CommandInput(Input):
    """The input line, with history (Up/Down) and nick completion (Tab)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "recall(-1)", show=False),
        Binding("down", "recall(1)", show=False),
        Binding("tab", "complete", show=False, priority=True),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history: list[str] = []
        self.nicks: list[str] = []
        self._recall = 0
        # The last completion: the value it produced, the text around the word, the
        # candidates and which one was used; Tab again moves to the next candidate.
        self._completion: tuple[str, tuple[str, str], list[str], int] | None = None

    def remember(self, line: str) -> None:
        if line and (not self.history or self.history[-1] != line):
            self.history.append(line)
        self._recall = len(self.history)

    def action_recall(self, step: int) -> None:
        if not self.history:
            return
        self._recall = max(0, min(len(self.history), self._recall + step))
        self.value = self.history[self._recall] if self._recall < len(self.history) else ""
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        if self._completion is not None and self._completion[0] == self.value:
            _, around, matches, index = self._completion
            index = (index + 1) % len(matches)
        else:
            head = self.value[: self.cursor_position]
            word = head.split(" ")[-1]
            matches = [n for n in self.nicks if fold(n).startswith(fold(word))] if word else []
            if not matches:
                return
            index = 0
            around = (head[: len(head) - len(word)], self.value[self.cursor_position :])
        before, after = around
        suffix = " " if before else ": "
        self.value = before + matches[index] + suffix + after.lstrip(" ")
        self.cursor_position = len(before) + len(matches[index]) + len(suffix)
        self._completion = (self.value, around, matches, index)
