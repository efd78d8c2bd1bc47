"""Each response in one write: the writes of one event-loop step are sent together."""

from __future__ import annotations

import asyncio
from typing import cast

from services.gateway.wire import _Joined


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

    def get_extra_info(self, name: str) -> str:
        return f"info {name}"


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
    assert joined.get_extra_info("peername") == "info peername"
    assert not joined.is_closing()
