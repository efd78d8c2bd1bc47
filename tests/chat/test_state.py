"""The state file, the queue cursor, and how a run picks its session (over a fake transport)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.chat import state
from services.chat.client import ApiError, ChatClient
from services.chat.state import Cursor, SavedState

# --- the file -------------------------------------------------------------------------


def test_default_path_is_per_server_host_and_nick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert state.default_path("https://chat.example.org", "Alice") == (
        tmp_path / "chinwag" / "chat-chat.example.org-alice.json"
    )
    assert (
        state.default_path("http://127.0.0.1:8080/", "bob").name == "chat-127.0.0.1_8080-bob.json"
    )
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert state.default_path("http://h", "x") == tmp_path / ".config" / "chinwag" / "chat-h-x.json"


def test_a_saved_state_loads_back_and_only_its_owner_can_read_it(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "chat.json"
    assert state.load(path) is None
    saved = SavedState("http://h:1", "alice", "tok", "s-id", "c-id", 41, ["bob"])
    state.save(path, saved)
    assert state.load(path) == saved
    assert path.stat().st_mode & 0o777 == 0o600
    saved.last_seq = 42
    state.save(path, saved)
    assert state.load(path) == saved
    assert [p.name for p in path.parent.iterdir()] == ["chat.json"]  # no temporary left behind


def test_forgetting_the_session_keeps_server_and_nick() -> None:
    saved = SavedState("http://h", "alice", "tok", "s", "c", 9, ["bob"])
    saved.forget_session()
    assert saved == SavedState("http://h", "alice")


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"nick": "alice"}',
        '{"server": "http://h", "nick": "a", "last_seq": "7"}',
        '{"server": "http://h", "nick": "a", "last_seq": -1}',
        '{"server": "http://h", "nick": "a", "token": 5}',
        '{"server": "http://h", "nick": "a", "queries": "bob"}',
    ],
)
def test_a_damaged_file_is_reported_not_guessed_at(tmp_path: Path, content: str) -> None:
    path = tmp_path / "chat.json"
    path.write_text(content)
    with pytest.raises(state.StateError):
        state.load(path)


def test_unknown_keys_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps({"server": "http://h", "nick": "a", "last_seq": 3, "later": 1}))
    assert state.load(path) == SavedState("http://h", "a", last_seq=3)


# --- the cursor -----------------------------------------------------------------------


def page(*seqs: int) -> dict[str, Any]:
    return {"messages": [{"seq": s, "id": f"i{s}"} for s in seqs], "last_seq": max(seqs, default=0)}


def test_the_cursor_accepts_each_item_once_in_order() -> None:
    cursor = Cursor(3)
    assert [i["seq"] for i in cursor.accept(page(4, 5))] == [4, 5]
    assert cursor.last_seq == 5
    assert cursor.accept(page(4, 5)) == []  # a page answered twice
    assert [i["seq"] for i in cursor.accept(page(5, 6))] == [6]
    assert cursor.accept({"messages": [], "last_seq": 6}) == []
    assert (cursor.last_seq, cursor.gaps) == (6, [])


def test_the_cursor_records_a_gap() -> None:
    cursor = Cursor(0)
    assert [i["seq"] for i in cursor.accept(page(1, 3))] == [1, 3]
    assert cursor.gaps == [(2, 3)]


# --- choosing the session -------------------------------------------------------------


class FakeServer:
    """Just enough of the session endpoints, behind httpx's MockTransport."""

    def __init__(self) -> None:
        self.sessions: dict[str, str | None] = {}  # nick → password
        self.tokens: set[str] = set()
        self.calls: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        body = json.loads(request.content) if request.content else {}
        if request.url.path == "/api/v1/state":
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in self.tokens:
                return error(401, "ERR_UNAUTHORIZED")
            return httpx.Response(200, json={"nick": "alice", "channels": ["#a"], "away": None})
        if request.url.path == "/api/v1/session":
            if body["nick"] in self.sessions:
                return error(409, "ERR_NICKNAMEINUSE")
            self.sessions[body["nick"]] = body.get("password")
            return self.issue(201, body["nick"])
        if request.url.path == "/api/v1/login":
            if self.sessions.get(body["nick"], None) != body["password"] or not body["password"]:
                return error(401, "ERR_PASSWDMISMATCH")
            return self.issue(200, body["nick"])
        return error(404, "ERR_NOTFOUND")

    def issue(self, status: int, nick: str) -> httpx.Response:
        token = f"t{len(self.tokens)}"
        self.tokens.add(token)
        return httpx.Response(
            status, json={"session_id": "s", "client_id": token, "nick": nick, "token": token}
        )


def error(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": code.lower()}})


async def opened(server: FakeServer, saved: SavedState | None, password: str | None = None) -> Any:
    client = ChatClient("http://h", transport=httpx.MockTransport(server.handle))
    try:
        return await client.open(saved, "alice", password)
    finally:
        await client.aclose()


async def test_a_saved_token_resumes_its_queue_where_it_stopped() -> None:
    server = FakeServer()
    server.tokens.add("kept")
    saved = SavedState("http://h", "alice", "kept", "s", "c", last_seq=17)
    result = await opened(server, saved)
    assert result.resumed and result.state is saved and result.state.last_seq == 17
    assert result.channels == ["#a"]
    assert server.calls == ["GET /api/v1/state"]


async def test_a_dead_token_starts_a_new_session_from_seq_zero() -> None:
    server = FakeServer()
    saved = SavedState("http://h", "alice", "expired", "s", "c", last_seq=17)
    result = await opened(server, saved)
    assert not result.resumed and result.state.last_seq == 0
    assert result.state.token == "t0"
    assert server.calls == ["GET /api/v1/state", "POST /api/v1/session", "GET /api/v1/state"]


async def test_with_a_password_it_logs_in_or_registers() -> None:
    server = FakeServer()
    first = await opened(server, None, "hunter22")  # nobody has the nick: registered
    assert server.sessions == {"alice": "hunter22"}
    second = await opened(server, None, "hunter22")  # now a second client of that session
    assert first.state.token != second.state.token
    assert server.calls.count("POST /api/v1/login") == 2
    with pytest.raises(ApiError) as wrong:
        await opened(server, None, "wrong")
    assert wrong.value.status == 401


async def test_without_a_password_a_taken_nick_is_an_error() -> None:
    server = FakeServer()
    await opened(server, None)
    with pytest.raises(ApiError) as taken:
        await opened(server, None)
    assert (taken.value.status, taken.value.code) == (409, "ERR_NICKNAMEINUSE")
