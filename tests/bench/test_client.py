"""The long-polls' HTTP line: one keep-alive connection, opened again when it fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.bench.client import BenchError, Line


class _Server:
    """Answers ``GET /echo/<text>`` with <text>; ``/close/…`` also closes the
    connection after its answer, ``/drop`` closes it with no answer, and
    ``/chunked`` answers without a content-length."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                path = head.split(b" ", 2)[1]
                if path == b"/drop":
                    return
                if path == b"/chunked":
                    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n")
                    continue
                body = path.rsplit(b"/", 1)[1]
                close = b"Connection: close\r\n" if path.startswith(b"/close/") else b""
                status = b"404 Not Found" if body == b"missing" else b"200 OK"
                writer.write(
                    b"HTTP/1.1 %s\r\n%sContent-Length: %d\r\n\r\n%s"
                    % (status, close, len(body), body)
                )
                if close:
                    return
        except asyncio.IncompleteReadError:
            return
        finally:
            writer.close()


@pytest.fixture
async def served() -> AsyncIterator[tuple[_Server, Line]]:
    """The server, and a line to it closed after the test."""
    server = _Server()
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    line = Line("127.0.0.1", listening.sockets[0].getsockname()[1])
    try:
        yield server, line
    finally:
        line.close()
        listening.close()
        await listening.wait_closed()


async def test_requests_share_one_connection_and_carry_their_headers(
    served: tuple[_Server, Line],
) -> None:
    server, line = served
    assert await line.get("/echo/one", "Authorization: Bearer t\r\n") == (200, b"one")
    assert await line.get("/echo/two") == (200, b"two")
    assert await line.get("/echo/missing") == (404, b"missing")
    assert server.connections == 1
    assert b"\r\nAuthorization: Bearer t\r\n" in server.requests[0]
    assert server.requests[0].startswith(b"GET /echo/one HTTP/1.1\r\nHost: 127.0.0.1:")


async def test_a_connection_the_server_closes_is_opened_again(
    served: tuple[_Server, Line],
) -> None:
    server, line = served
    assert await line.get("/close/bye") == (200, b"bye")  # it said so: not reused
    assert await line.get("/echo/again") == (200, b"again")
    with pytest.raises(ConnectionError):
        await line.get("/drop")  # closed mid-request: the outcome is unknown
    assert await line.get("/echo/after") == (200, b"after")
    assert server.connections == 3


async def test_an_answer_it_cannot_frame_is_refused_and_the_line_closed(
    served: tuple[_Server, Line],
) -> None:
    server, line = served
    with pytest.raises(BenchError, match="content-length"):
        await line.get("/chunked")
    assert await line.get("/echo/fresh") == (200, b"fresh")
    assert server.connections == 2
