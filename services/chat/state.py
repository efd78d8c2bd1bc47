"""What the terminal client keeps between runs: its token and the last seq it has shown.

A restarted client polls with ``after=last_seq``, so it resumes the same queue
with nothing missing or repeated. The file holds a bearer token: it is written
atomically and readable by its owner only.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from libs.irc import fold


class StateError(Exception):
    """The state file exists but cannot be read as a client state."""


@dataclass
class SavedState:
    """One client of one session on one server."""

    server: str
    nick: str
    token: str | None = None
    session_id: str | None = None
    client_id: str | None = None
    last_seq: int = 0
    queries: list[str] = field(default_factory=list)  # private buffers open at the last save

    def forget_session(self) -> None:
        """The session is gone (quit, expired, logged out): start afresh next time."""
        self.token = self.session_id = self.client_id = None
        self.last_seq = 0
        self.queries = []


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/chinwag``, by default ``~/.config/chinwag``."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "chinwag"


def default_path(server: str, nick: str, directory: Path | None = None) -> Path:
    """``chat-<server-host>-<nick>.json``; a non-default port is part of the host."""
    parts = urlsplit(server if "//" in server else f"//{server}")
    host = parts.hostname or "localhost"
    if parts.port is not None:
        host = f"{host}_{parts.port}"
    name = f"chat-{_safe(host)}-{_safe(fold(nick))}.json"
    return (directory or config_dir()) / name


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._^{}\[\]|`-]", "_", text)


def load(path: Path) -> SavedState | None:
    """The saved state, or None when there is no file yet."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StateError(f"{path}: {error}") from error
    try:
        data = json.loads(raw)
        return _from_json(data)
    except (ValueError, TypeError) as error:
        raise StateError(f"{path}: not a chinwag chat state file ({error})") from error


def _from_json(data: Any) -> SavedState:
    if not isinstance(data, dict):
        raise TypeError("expected an object")
    known = {f.name for f in fields(SavedState)}
    state = SavedState(**{k: v for k, v in data.items() if k in known})
    if not isinstance(state.server, str) or not isinstance(state.nick, str):
        raise TypeError("server and nick must be strings")
    if state.token is not None and not isinstance(state.token, str):
        raise TypeError("token must be a string")
    if not isinstance(state.last_seq, int) or isinstance(state.last_seq, bool):
        raise TypeError("last_seq must be an integer")
    if state.last_seq < 0:
        raise ValueError("last_seq must not be negative")
    if not isinstance(state.queries, list) or not all(isinstance(q, str) for q in state.queries):
        raise TypeError("queries must be a list of nicks")
    return state


def save(path: Path, state: SavedState) -> None:
    """Replace the file atomically (write a sibling, then rename), mode 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(asdict(state), file, indent=1)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


class Cursor:
    """The client's place in its queue: accepts each poll page once, in seq order."""

    def __init__(self, last_seq: int = 0) -> None:
        self.last_seq = last_seq
        self.gaps: list[tuple[int, int]] = []

    def accept(self, page: dict[str, Any]) -> list[dict[str, Any]]:
        """The items of a poll answer not seen before; advances ``last_seq``.

        Items at or below ``last_seq`` are dropped (a page answered twice); a
        jump forward is recorded in ``gaps`` as ``(expected, got)``.
        """
        fresh: list[dict[str, Any]] = []
        for item in page.get("messages", []):
            seq = item.get("seq")
            if not isinstance(seq, int) or seq <= self.last_seq:
                continue
            if seq != self.last_seq + 1:
                self.gaps.append((self.last_seq + 1, seq))
            fresh.append(item)
            self.last_seq = seq
        return fresh
