"""A helper process of the load generator: holds many long-polls and reports their answers.

It reads one job (JSON) on stdin, opens every long-poll, with at most
``ramp`` requests between connecting and having sent their headers, prints
``sent`` once all are out, and prints the result (JSON, one line) once every
poll has an item. A poll that times out empty is made again, as a client
would, so parking them all may take longer than one long-poll timeout. Times
are ``time.monotonic()``, which on Linux is the same clock in every process.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from typing import Any

import aiohttp
import msgspec

from services.bench.client import KEEPALIVE, Page


class Job(msgspec.Struct):
    base_url: str
    polls: list[tuple[str, int]]  # (token, after)
    timeout: float
    limit: int = 10
    ramp: int = 200


class Answer(msgspec.Struct, array_like=True):
    at: float
    status: int
    items: list[tuple[int, str]]  # (seq, id)
    error: str = ""


class Result(msgspec.Struct):
    answers: list[Answer]
    cpu_s: float


_page = msgspec.json.Decoder(Page)


async def _headers_sent(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestHeadersSentParams
) -> None:
    context.trace_request_ctx["sent"]()


async def hold(job: Job, on_all_sent: Any = None) -> Result:
    """Open every poll of ``job`` and wait for all the answers."""
    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(_headers_sent)
    ramp = asyncio.Semaphore(job.ramp)
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=60, sock_read=job.timeout + 60)
    url = f"{job.base_url.rstrip('/')}/api/v1/messages"
    outstanding = len(job.polls)
    all_sent = asyncio.Event()

    async def one(http: aiohttp.ClientSession, token: str, after: int) -> Answer:
        nonlocal outstanding
        await ramp.acquire()
        released = False

        def sent() -> None:
            nonlocal released, outstanding
            if not released:
                released = True
                ramp.release()
                outstanding -= 1
                if outstanding == 0:
                    all_sent.set()

        retries = 0
        try:
            while True:
                try:
                    async with http.get(
                        url,
                        params={"after": after, "timeout": f"{job.timeout:g}", "limit": job.limit},
                        headers={"Authorization": f"Bearer {token}"},
                        trace_request_ctx={"sent": sent},
                    ) as response:
                        data = await response.read()
                        at = time.monotonic()
                        if response.status != 200:
                            text = data[:200].decode(errors="replace")
                            return Answer(at, response.status, [], text)
                except aiohttp.ClientConnectionError as error:
                    retries += 1  # a poll is safe to repeat: the same cursor, the same items
                    if retries == 3:
                        return Answer(time.monotonic(), 0, [], repr(error))
                    continue
                page = _page.decode(data)
                if page.messages:  # else the poll timed out before the message: poll again
                    return Answer(at, 200, [(i.seq, i.id) for i in page.messages])
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            return Answer(time.monotonic(), 0, [], repr(error))
        finally:
            sent()

    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, trace_configs=[trace]
    ) as http:
        tasks = [asyncio.create_task(one(http, token, after)) for token, after in job.polls]
        if not tasks:
            all_sent.set()
        await all_sent.wait()
        if on_all_sent is not None:
            on_all_sent()
        answers = list(await asyncio.gather(*tasks))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return Result(answers, usage.ru_utime + usage.ru_stime)


def main() -> None:
    job = msgspec.json.decode(sys.stdin.buffer.read(), type=Job)

    def say_sent() -> None:
        sys.stdout.write("sent\n")
        sys.stdout.flush()

    async def work() -> Result:
        return await hold(job, say_sent)

    try:
        import uvloop
    except ImportError:
        result = asyncio.run(work())
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(work())
    sys.stdout.buffer.write(msgspec.json.encode(result) + b"\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
