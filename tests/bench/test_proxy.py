"""The fault runs' TCP proxy: it forwards, cuts every connection, refuses, and opens again."""

from __future__ import annotations

import asyncio

import pytest

from services.bench.proxy import Proxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _roundtrip(port: int, text: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(text)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(text)), 5)
    finally:
        writer.close()


async def test_the_proxy_forwards_cuts_refuses_and_opens_again() -> None:
    upstream = await asyncio.start_server(_echo, "127.0.0.1", 0)
    proxy = Proxy("127.0.0.1", upstream.sockets[0].getsockname()[1])
    try:
        await proxy.open()
        assert await _roundtrip(proxy.port, b"hello") == b"hello"
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"ping")
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"

        await proxy.cut()
        # The connection through it is gone, and new ones are refused.
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        with pytest.raises(ConnectionRefusedError):
            await _roundtrip(proxy.port, b"x")

        port = proxy.port
        await proxy.open()
        assert proxy.port == port
        assert await _roundtrip(proxy.port, b"again") == b"again"
    finally:
        await proxy.close()
        upstream.close()
        await upstream.wait_closed()
