"""The terminal client's side of the public HTTP API, over one ``httpx.AsyncClient``.

Nothing here knows about the screen: the app calls these methods and turns
their answers (or ``ApiError``) into lines.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from libs import hashcash
from services.chat.state import SavedState

USER_AGENT = "chinwag-chat/0.1"
SEND_ATTEMPTS = 3  # a send retried after a transport error keeps its idempotency key
MAX_RETRY_AFTER = 10.0


class ApiError(Exception):
    """The server refused a request: its status and the API's error body."""

    def __init__(self, status: int, code: str, message: str, numeric: str | None = None):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.numeric = numeric

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        try:
            error = response.json()["error"]
            return cls(response.status_code, error["code"], error["message"], error.get("numeric"))
        except (ValueError, KeyError, TypeError):
            return cls(response.status_code, f"HTTP_{response.status_code}", response.text[:200])

    @property
    def unauthorized(self) -> bool:
        return self.status == 401


@dataclass
class Opened:
    """A session to talk in: fresh (created or logged in) or resumed from a saved token."""

    state: SavedState
    resumed: bool
    channels: list[str]
    away: str | None
    unread: dict[str, int]  # per channel and private peer, as GET /state counts them
    read: dict[str, int]  # the session's read markers

    @classmethod
    def of(cls, state: SavedState, resumed: bool, current: dict[str, Any]) -> Opened:
        """From the answer of ``GET /api/v1/state``."""
        return cls(
            state,
            resumed,
            current["channels"],
            current["away"],
            current.get("unread") or {},
            current.get("read") or {},
        )


class ChatClient:
    """One client (device) of a session: commands, the long-poll, history and reads."""

    def __init__(
        self,
        server: str,
        *,
        poll_timeout: float = 25.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.poll_timeout = poll_timeout
        # A long-poll holds its response for up to poll_timeout; reads wait longer than that.
        self.http = httpx.AsyncClient(
            base_url=self.server,
            timeout=httpx.Timeout(15.0, read=poll_timeout + 15.0),
            headers={"User-Agent": USER_AGENT},
            transport=transport,
        )

    @property
    def token(self) -> str | None:
        header = self.http.headers.get("Authorization")
        return header.removeprefix("Bearer ") if header else None

    @token.setter
    def token(self, token: str | None) -> None:
        if token is None:
            self.http.headers.pop("Authorization", None)
        else:
            self.http.headers["Authorization"] = f"Bearer {token}"

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response.json()

    # --- sessions -------------------------------------------------------------------

    async def create_session(self, nick: str, password: str | None = None) -> dict[str, Any]:
        """A new session; when the server asks for proof of work, solve its challenge
        (off the event loop) and ask again."""
        body: dict[str, Any] = {"nick": nick}
        if password:
            body["password"] = password
        try:
            answer: dict[str, Any] = await self._call("POST", "/api/v1/session", json=body)
        except ApiError as error:
            if error.code != "ERR_PROOF_OF_WORK":
                raise
            challenge = await self._call("GET", "/api/v1/challenge")
            body["stamp"] = await asyncio.to_thread(
                hashcash.solve, challenge["challenge"], challenge["bits"]
            )
            answer = await self._call("POST", "/api/v1/session", json=body)
        self.token = answer["token"]
        return answer

    async def login(self, nick: str, password: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call(
            "POST", "/api/v1/login", json={"nick": nick, "password": password}
        )
        self.token = answer["token"]
        return answer

    async def logout(self) -> None:
        await self._call("POST", "/api/v1/logout")
        self.token = None

    async def state(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("GET", "/api/v1/state")
        return answer

    async def open(self, saved: SavedState | None, nick: str, password: str | None) -> Opened:
        """Resume the saved client if its token still works, else log in or create a session.

        With a password, a nick nobody has registered yet is created with it.
        """
        if saved is not None and saved.token:
            self.token = saved.token
            try:
                current = await self.state()
            except ApiError as error:
                if not error.unauthorized:
                    raise
                self.token = None
            else:
                return Opened.of(saved, True, current)
        if password:
            try:
                answer = await self.login(nick, password)
            except ApiError as error:
                if not error.unauthorized:
                    raise
                try:
                    answer = await self.create_session(nick, password)
                except ApiError as refused:
                    if refused.status == 409:
                        raise error from None  # the nick exists: the password was wrong
                    raise
        else:
            answer = await self.create_session(nick)
        fresh = SavedState(
            server=self.server,
            nick=answer["nick"],
            token=answer["token"],
            session_id=str(answer["session_id"]),
            client_id=str(answer["client_id"]),
        )
        return Opened.of(fresh, False, await self.state())

    # --- commands and the queue ----------------------------------------------------

    async def send(self, command: dict[str, Any]) -> dict[str, Any]:
        """POST one command; retried with the same idempotency key after a transport error
        or a 429, so it takes effect once."""
        key = str(uuid.uuid4())
        for attempt in range(1, SEND_ATTEMPTS + 1):
            try:
                response = await self.http.post(
                    "/api/v1/messages", json=command, headers={"Idempotency-Key": key}
                )
            except httpx.TransportError:
                if attempt == SEND_ATTEMPTS:
                    raise
                await asyncio.sleep(0.5 * attempt)
                continue
            if response.status_code == 429 and attempt < SEND_ATTEMPTS:
                await asyncio.sleep(_retry_after(response))
                continue
            if response.status_code >= 400:
                raise ApiError.from_response(response)
            answer: dict[str, Any] = response.json()
            return answer
        raise AssertionError("unreachable")

    async def poll(self, after: int, timeout: float | None = None) -> dict[str, Any]:
        """One long-poll: the items after seq ``after`` (acknowledging it), waiting if none."""
        wait = self.poll_timeout if timeout is None else timeout
        answer: dict[str, Any] = await self._call(
            "GET", "/api/v1/messages", params={"after": after, "timeout": wait, "limit": 500}
        )
        return answer

    async def history(
        self, target: str, before: int | None = None, limit: int = 50
    ) -> dict[str, Any]:
        """A page of ``target``'s history just older than ``before`` (newest without it)."""
        params: dict[str, Any] = {"target": target, "limit": limit}
        if before is not None:
            params["before"] = before
        answer: dict[str, Any] = await self._call("GET", "/api/v1/history", params=params)
        return answer

    # --- reads ------------------------------------------------------------------------

    async def channel(self, name: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("GET", f"/api/v1/channels/{_path(name)}")
        return answer

    async def members(self, name: str) -> list[dict[str, str]]:
        answer = await self._call("GET", f"/api/v1/channels/{_path(name)}/members")
        members: list[dict[str, str]] = answer["members"]
        return members

    async def server_info(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("GET", "/api/v1/server")
        return answer


def _path(channel: str) -> str:
    return quote(channel.removeprefix("#"), safe="")


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(response.headers.get("Retry-After", "1"))))
    except ValueError:
        return 1.0
