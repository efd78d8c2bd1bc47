"""Each response in one write: the writes of one event-loop step are sent together."""

from __future__ import annotations

import asyncio
from typing import cast

import uvicorn
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from services.gateway.wire import OneWrite, _Joined


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> object:
        # What uvicorn's protocol asks on connecting: no socket, but addresses.
        if name in ("peername", "sockname"):
            return ("127.0.0.1", 8080)
        return None if name in ("socket", "sslcontext") else f"info {name}"


def _joined(transport: _Transport) -> _Joined:
    return _Joined(cast(asyncio.Transport, transport), asyncio.get_running_loop())


async def test_writes_of_one_step_go_out_at_once_when_it_ends() -> None:
    transport = _Transport()
    joined = _joined(transport)
    joined.write(b"HTTP/1.1 200 OK\r\n\r\n")
    joined.write(b"body")
    assert transport.writes == []
    await asyncio.sleep(0)  # the step ends
    assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    joined.write(b"next")
    await asyncio.sleep(0)
    assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"next"]


async def test_a_close_sends_what_was_written_first_and_nothing_after() -> None:
    transport = _Transport()
    joined = _joined(transport)
    joined.write(b"last words")
    joined.close()
    assert transport.writes == [b"last words"]
    assert transport.closed
    await asyncio.sleep(0)  # the scheduled send finds nothing left
    assert transport.writes == [b"last words"]


async def test_a_write_to_a_transport_closing_meanwhile_is_dropped() -> None:
    transport = _Transport()
    joined = _joined(transport)
    joined.write(b"too late")
    transport.closed = True  # the peer went away before the step ended
    await asyncio.sleep(0)
    assert transport.writes == []


async def test_everything_else_is_the_real_transport_s() -> None:
    transport = _Transport()
    joined = _joined(transport)
    assert joined.get_extra_info("cipher") == "info cipher"
    assert not joined.is_closing()


async def test_a_complete_response_goes_out_at_once() -> None:
    """When one step answers many polls, each answer leaves as it completes."""
    transport = _Transport()
    sent: list[list[bytes]] = []
    answered = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-length", b"4")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"page"})
        sent.append(list(transport.writes))  # still in the app's step
        answered.set()

    # No log_config: the test leaves logging as it found it (uvicorn would configure it).
    config = uvicorn.Config(app, http=OneWrite, lifespan="off", log_config=None)
    config.load()
    protocol = OneWrite(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(cast(asyncio.Transport, transport))
    protocol.data_received(b"GET /api/v1/messages HTTP/1.1\r\nHost: chinwag\r\n\r\n")
    await asyncio.wait_for(answered.wait(), 5)
    [response] = sent[0]
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.endswith(b"\r\n\r\npage")
