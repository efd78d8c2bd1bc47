"""A TCP proxy on loopback that a fault run opens and cuts: a network cut between a
service and the server it talks to.

``cut`` aborts every connection through the proxy (both ends see a reset) and
stops listening, so reconnection attempts are refused until ``open`` listens
again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib

HOST = "127.0.0.1"
_CHUNK = 1 << 16


class Proxy:
    """Forwards every connection made to ``port`` to ``upstream``, until cut."""

    def __init__(self, upstream_host: str, upstream_port: int, port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = port
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    def url(self, scheme: str = "nats") -> str:
        return f"{scheme}://{HOST}:{self.port}"

    async def open(self) -> None:
        """Listen (again) on the proxy's port; the first call picks a free one."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._accept, HOST, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Reset every connection through the proxy and refuse new ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def close(self) -> None:
        await self.cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pipe = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(_CHUNK):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # One side ended: end the other, as a router dropping the flow would.
            self._writers.discard(sink)
            sink.transport.abort()
            with contextlib.suppress(ConnectionError, OSError):
                await sink.wait_closed()
