"""uvicorn's HTTP/1.1 protocol, sending each response in one write.

uvicorn writes a response's status line and headers on ``http.response.start``
and its body on ``http.response.body``: two system calls for every answer, and
often two packets the client wakes up for. At a long-poll answer per delivery
that was a tenth of the gateway's CPU. ``OneWrite`` gives uvicorn's protocol a
transport that joins the writes made in one step of the event loop and sends
them when a response is complete, else when the step is over; everything else
goes to the real transport. A complete response goes out at once: when a wake
answers a hundred polls in one step, the first answer must not wait for the
hundredth.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _Joined:
    """A transport that sends the writes of one event-loop step at its end, at once."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        """Send what was written so far, now."""
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if data and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()  # what was written goes before the close
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWrite(HttpToolsProtocol):
    """uvicorn's httptools protocol over a ``_Joined`` transport (``uvicorn.Config(http=…)``)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._joined = _Joined(cast(asyncio.Transport, transport), asyncio.get_running_loop())
        super().connection_made(cast(asyncio.Transport, self._joined))

    def on_response_complete(self) -> None:
        self._joined.flush()  # the response's head and body, in one write, now
        super().on_response_complete()
