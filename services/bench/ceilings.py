"""Scenario 5: the raw limits of the components, on the same servers in the same run.

- PostgreSQL: queue-shaped rows (``LIKE delivery.client_queues``, same keys and
  indexes) inserted by batched ``unnest``, on 1 and on 4 connections.
- JetStream: publish with ``Nats-Msg-Id`` awaiting the PubAck, one at a time
  and pipelined (100 in flight), to a scratch stream on the same server.
- HTTP: a bare ASGI app under uvicorn answering an empty long-poll page at
  once, and the gateway answering a real empty long-poll (``timeout=0``),
  both loaded by the long-polls' own client; the bare app by aiohttp's too.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import nats
import nats.errors
from nats.js.api import StorageType, StreamConfig

from libs.bus import MSG_ID_HEADER
from libs.embedded import free_port
from libs.events import MessagePosted, encode_event, utcnow
from services.bench.client import Api, BenchError, Line, Member
from services.bench.procs import Sampler
from services.bench.stats import rate

_BATCH = 10_000  # rows per insert statement
_CLIENTS = 100  # distinct client ids per connection, as in a 100-member room
EMPTY_POLL = "/api/v1/messages?after=0&timeout=0"


async def pg_inserts(database_url: str, seconds: float, connections: int) -> dict[str, Any]:
    """Queue-shaped rows per second into a scratch table, ``connections`` writers at once."""
    table = f"public.bench_queue_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"CREATE TABLE {table} (LIKE delivery.client_queues INCLUDING ALL)")
        insert = f"""INSERT INTO {table} (client_id, seq, message_id)
                     SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[])"""
        writers = [await asyncpg.connect(database_url) for _ in range(connections)]
        try:
            end = time.monotonic() + seconds

            async def write(conn: asyncpg.Connection[Any]) -> int:
                clients = [uuid.uuid4() for _ in range(_CLIENTS)]
                ids = [clients[i % _CLIENTS] for i in range(_BATCH)]
                rows = 0
                while time.monotonic() < end:
                    seqs = list(range(rows, rows + _BATCH))
                    await conn.execute(insert, ids, seqs, seqs)
                    rows += _BATCH
                return rows

            start = time.monotonic()
            counts = await asyncio.gather(*(write(c) for c in writers))
            elapsed = time.monotonic() - start
        finally:
            for conn in writers:
                await conn.close()
    finally:
        await admin.execute(f"DROP TABLE IF EXISTS {table}")
        await admin.close()
    return {
        "connections": connections,
        "rows": sum(counts),
        "rows_per_s": rate(sum(counts), elapsed),
    }


def _sample_payload() -> bytes:
    """An encoded message event of the size the gateway publishes."""
    return encode_event(
        MessagePosted(
            event_id=uuid.uuid4(),
            ts=utcnow(),
            command="PRIVMSG",
            sender_id=uuid.uuid4(),
            sender="benchsender",
            to="#bench-ceiling",
            channel="#bench-ceiling",
            body=["0:123"],
            meta={"bench": ["ceiling", 0, 123, 12345.678]},
        )
    )


async def js_publish(nats_url: str, seconds: float, in_flight: int) -> dict[str, Any]:
    """Acknowledged JetStream publishes per second, ``in_flight`` awaiting their PubAck.

    Each message carries a ``Nats-Msg-Id``, as the gateway's do. The PubAcks
    come back to one inbox subscription: nats-py's ``publish_async`` spends
    twice the client CPU per message, which would measure the client.
    """
    tag = uuid.uuid4().hex[:8]
    name, subject = f"BENCH_{tag.upper()}", f"bench{tag}.x"
    nc = await nats.connect(nats_url, name="chinwag-bench")
    try:
        js = nc.jetstream()
        await js.add_stream(
            StreamConfig(name=name, subjects=[f"bench{tag}.>"], storage=StorageType.FILE)
        )
        window = asyncio.Semaphore(in_flight)
        acked = 0
        refused: list[bytes] = []

        async def on_ack(msg: Any) -> None:
            nonlocal acked
            if b'"error"' in msg.data:
                refused.append(msg.data)
            else:
                acked += 1
            window.release()

        inbox = nc.new_inbox()
        sub = await nc.subscribe(f"{inbox}.*", cb=on_ack)
        payload = _sample_payload()
        sent = 0
        try:
            start = time.monotonic()
            end = start + seconds
            while time.monotonic() < end:
                await window.acquire()
                await nc.publish(
                    subject,
                    payload,
                    reply=f"{inbox}.{sent}",
                    headers={MSG_ID_HEADER: uuid.uuid4().hex},
                )
                sent += 1
            for _ in range(in_flight):
                await asyncio.wait_for(window.acquire(), timeout=10.0)
            elapsed = time.monotonic() - start
        finally:
            await sub.unsubscribe()
            with contextlib.suppress(nats.errors.Error):
                await js.delete_stream(name)
    finally:
        await nc.close()
    if refused or acked != sent:
        raise BenchError(f"{sent} published, {acked} acked, refused e.g. {refused[:1]!r}")
    return {"in_flight": in_flight, "published": acked, "per_s": rate(acked, elapsed)}


async def _get_loop(line: Line, target: str, headers: str, end: float) -> int:
    """Back-to-back requests on one keep-alive connection until ``end``; how many."""
    done = 0
    try:
        while time.monotonic() < end:
            status, _ = await line.get(target, headers)
            if status != 200:
                raise BenchError(f"{status} from port {line.port}")
            done += 1
    finally:
        line.close()
    return done


async def http_rate(
    base_url: str,
    request: Callable[[int], tuple[str, str]],
    seconds: float,
    concurrency: int,
) -> dict[str, Any]:
    """Answers per second to back-to-back GETs on ``concurrency`` connections.

    ``request(i)`` gives connection i's path and raw header lines. The long-polls' own
    client (``Line``): it spends a fraction of what aiohttp's does per request,
    so the server, not the client, sets the rate.
    """
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80

    def loop(index: int, end: float) -> Awaitable[int]:
        return _get_loop(Line(host, port), *request(index), end)

    start = time.monotonic()
    end = start + seconds
    counts = await asyncio.gather(*(loop(i, end) for i in range(concurrency)))
    elapsed = time.monotonic() - start
    return {"concurrency": concurrency, "answers": sum(counts), "per_s": rate(sum(counts), elapsed)}


async def aiohttp_rate(
    http: aiohttp.ClientSession, url: str, seconds: float, concurrency: int
) -> dict[str, Any]:
    """The same through aiohttp's client, the one commands go by: that client's ceiling."""
    end = time.monotonic() + seconds

    async def loop() -> int:
        done = 0
        while time.monotonic() < end:
            async with http.get(url) as response:
                await response.read()
                if response.status != 200:
                    raise BenchError(f"{url}: {response.status}")
            done += 1
        return done

    start = time.monotonic()
    counts = await asyncio.gather(*(loop() for _ in range(concurrency)))
    elapsed = time.monotonic() - start
    return {"concurrency": concurrency, "answers": sum(counts), "per_s": rate(sum(counts), elapsed)}


@contextlib.asynccontextmanager
async def bare_asgi() -> AsyncIterator[str]:
    """The bare ASGI app under uvicorn in a process of its own; yields its base URL."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "services.bench.bare:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        stdin=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30.0
        probe = Line("127.0.0.1", port)
        while True:
            try:
                await probe.get(EMPTY_POLL)
                break
            except OSError:
                if process.returncode is not None or time.monotonic() > deadline:
                    raise BenchError("the bare ASGI server did not start") from None
                await asyncio.sleep(0.05)
            finally:
                probe.close()
        yield url
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def ceilings(
    api: Api,
    database_url: str,
    nats_url: str,
    members: list[Member],
    sampler: Sampler,
    seconds: float,
    concurrency: int,
) -> dict[str, Any]:
    """Every ceiling, one after another, and the gateway's empty-poll rate beside them."""
    results: dict[str, Any] = {}
    load = (seconds, concurrency)
    with sampler.measure() as usage:
        results["pg_insert_1"] = await pg_inserts(database_url, seconds, 1)
        results["pg_insert_4"] = await pg_inserts(database_url, seconds, 4)
        results["js_publish_1"] = await js_publish(nats_url, seconds, 1)
        results["js_publish_100"] = await js_publish(nats_url, seconds, 100)
        async with bare_asgi() as url:
            results["bare_asgi"] = await http_rate(url, lambda _: (EMPTY_POLL, ""), *load)
            results["bare_asgi_aiohttp"] = await aiohttp_rate(api.http, url + EMPTY_POLL, *load)

        def poll(index: int) -> tuple[str, str]:
            member = members[index % len(members)]
            # Polling from the member's cursor: the queue read finds nothing.
            return f"/api/v1/messages?after={member.seen}&timeout=0", member.auth

        results["gateway_empty_poll"] = await http_rate(api.base_url, poll, *load)
    results["processes"] = usage.as_dict()
    return results
