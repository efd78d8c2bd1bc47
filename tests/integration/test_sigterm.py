"""SIGTERM during a send storm: real fanout and gateway processes stop cleanly, losing nothing.

Clients send with idempotency keys to a gateway process and retry against a
second gateway when it goes away; the fanout process and that gateway are sent
SIGTERM mid-storm. Each must exit 0 within its grace period (it finished what
it held rather than being cancelled), a long-poll parked on the gateway must be
answered, and every accepted send must be in every recipient queue exactly once,
in the order it was accepted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import httpx

from libs.embedded import free_port
from services.up import settings_env
from tests.harness import ApiClient, System, until

ROOT = Path(__file__).resolve().parents[2]
SENDERS = 3
AFTER = 10  # sends each sender gets accepted after the gateway has gone
GRACE = 15.0


@asynccontextmanager
async def service_process(
    name: str, env: dict[str, str], log_dir: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``chinwag <name>`` as a process of its own; killed on exit if still running."""
    log: IO[bytes] = (log_dir / f"{name}.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", name, env=env, cwd=ROOT, stdout=log, stderr=log
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()


async def sigterm(process: asyncio.subprocess.Process, log: Path) -> None:
    """SIGTERM, then require a clean exit (0: not cancelled at the end of the grace period)."""
    process.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(process.wait(), GRACE + 10)
    assert code == 0, f"exit code {code}:\n{log.read_text()[-4000:]}"  # noqa: ASYNC240


class Sender:
    """One session sending numbered lines; each retried with its key until accepted."""

    def __init__(self, client: ApiClient, gateways: list[str]) -> None:
        self.client = client
        self.gateways = gateways
        self.accepted: list[str] = []  # event ids, in the order they were accepted
        self.retries = 0

    async def send(self, http: httpx.AsyncClient, text: str) -> None:
        key = f"{self.client.nick}-{text}"
        attempt = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:
            url = self.gateways[attempt % len(self.gateways)]
            try:
                response = await http.post(
                    f"{url}/api/v1/messages",
                    json={"command": "PRIVMSG", "to": "#storm", "body": [text]},
                    headers={
                        "Authorization": f"Bearer {self.client.token}",
                        "Idempotency-Key": key,
                    },
                )
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                self.accepted.append(response.json()["id"])
                return
            assert response is None or response.status_code in (409, 503), response.text
            assert loop.time() < deadline, f"{key} never accepted"
            self.retries += 1
            attempt += 1
            if response is not None:  # in flight elsewhere, or the stream busy: back off
                await asyncio.sleep(0.05)

    async def storm(self, done: asyncio.Event) -> None:
        """Send ``m0``, ``m1``, … one after another until ``done`` is set."""
        async with httpx.AsyncClient(timeout=20) as http:
            n = 0
            while not done.is_set():
                await self.send(http, f"m{n}")
                n += 1


async def test_sigterm_to_fanout_and_a_gateway_mid_storm_loses_and_repeats_nothing(
    system: System, tmp_path: Path
) -> None:
    settings = system.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHINWAG_", "OTEL_"))}
    env.update(settings_env(settings))
    env.update(
        {
            "CHINWAG_FANOUT_BATCH": "8",
            "CHINWAG_SHUTDOWN_GRACE": str(GRACE),
            "CHINWAG_LOG_LEVEL": "info",
            "CHINWAG_LOG_FORMAT": "json",
        }
    )
    port = free_port()
    doomed = f"http://127.0.0.1:{port}"
    await system.stop("fanout")

    async with (
        service_process("fanout", env, tmp_path) as fanout,
        service_process("gateway", {**env, "CHINWAG_HTTP_PORT": str(port)}, tmp_path) as gateway,
        httpx.AsyncClient(base_url=doomed, timeout=40) as http,
    ):
        await system.wait_ready(60, base_url=doomed)

        clients = [await ApiClient.create(system.base_url, f"s{i}", "pw-storm") for i in range(3)]
        clients.append(await ApiClient.login(system.base_url, "s0", "pw-storm"))  # a 2nd device
        watcher = await ApiClient.create(doomed, "watcher")  # in no channel: its poll parks
        for client in clients[:SENDERS]:
            await client.join("#storm")
        senders = [Sender(c, [doomed, system.base_url]) for c in clients[:SENDERS]]

        def accepted() -> int:
            return sum(len(s.accepted) for s in senders)

        done = asyncio.Event()
        storm = asyncio.gather(*(s.storm(done) for s in senders))

        # SIGTERM the fanout worker mid-storm; another takes over its partitions.
        await until(lambda: _at_least(accepted, 30), 60, "30 sends accepted")
        await sigterm(fanout, tmp_path / "fanout.log")
        system.start("fanout")

        # SIGTERM the gateway, with a long-poll parked on it: the poll is answered.
        await until(lambda: _at_least(accepted, 60), 60, "60 sends accepted")
        parked = asyncio.create_task(watcher.poll(timeout=40))

        async def poll_parked() -> bool:
            metrics = (await http.get("/metrics/")).text
            return any(
                line.startswith("chinwag_gateway_longpolls_waiting ") and float(line.split()[1]) > 0
                for line in metrics.splitlines()
            )

        await until(poll_parked, 20, "the watcher's poll to park")
        await sigterm(gateway, tmp_path / "gateway.log")
        answered = await asyncio.wait_for(parked, 5)
        assert answered["messages"] == []
        gone = [len(s.accepted) for s in senders]

        async def sent_since() -> bool:
            return all(len(s.accepted) >= n + AFTER for s, n in zip(senders, gone, strict=True))

        await until(sent_since, 60, "sends through the other gateway")
        done.set()
        await asyncio.wait_for(storm, 60)
        await watcher.close()

    # Every accepted send, in every recipient queue, exactly once and in order.
    expected = {s.client.nick: s.accepted for s in senders}
    total = sum(len(ids) for ids in expected.values())
    for client in clients:
        await client.receive_until(lambda _, c=client: _count_lines(c) >= total, deadline=60)
        await client.nothing_more()
        lines = [i for i in client.items if i["command"] == "PRIVMSG"]
        counts = Counter(i["id"] for i in lines)
        assert [i for i, n in counts.items() if n > 1] == [], f"{client.nick}: duplicates"
        for nick, ids in expected.items():
            got = [i["id"] for i in lines if i["from"] == nick]
            assert got == ids, f"{client.nick} from {nick}: {len(got)} of {len(ids)}, or reordered"
        await client.close()
    assert all(s.retries > 0 for s in senders)  # the gateway did go away under them


async def _at_least(count: Any, n: int) -> bool:
    return bool(count() >= n)


def _count_lines(client: ApiClient) -> int:
    return sum(1 for i in client.items if i["command"] == "PRIVMSG")
