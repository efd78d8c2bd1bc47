"""Real processes: ``chinwag up`` as a user runs it, and a fanout worker killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from libs.embedded import free_port
from tests.harness import ApiClient, System, texts

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def chinwag_up(
    data_dir: Path, port: int, *extra: str, env: dict[str, str] | None = None, gateways: int = 1
) -> AsyncIterator[tuple[str, list[str]]]:
    """Run ``chinwag up`` until its gateways print their URLs; Ctrl-C (SIGINT) it on exit.

    ``env`` adds ``CHINWAG_*`` variables to a clean environment.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHINWAG_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "up",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**clean, **(env or {})},
        cwd=ROOT,
    )
    assert process.stdout is not None
    lines: list[str] = []

    async def url() -> str:
        assert process.stdout is not None
        found: list[str] = []
        while len(found) < gateways:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise AssertionError("chinwag up exited:\n" + "".join(lines))
            lines.append(line)
            if up := re.search(r"chinwag is up: (http://\S+)/", line):
                found.append(up[1])
        return found[0]

    try:
        base_url = await asyncio.wait_for(url(), 90)
        pump = asyncio.create_task(_drain(process.stdout, lines))
        yield base_url, lines
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), 60)
        if "pump" in locals():
            await pump
        assert code == 0, "".join(lines)


async def _drain(stream: asyncio.StreamReader, lines: list[str]) -> None:
    while line := await stream.readline():
        lines.append(line.decode())


async def test_chinwag_up_serves_chat_and_keeps_everything_across_a_restart(
    tmp_path: Path,
) -> None:
    data_dir, port = tmp_path / "data", free_port()
    async with chinwag_up(data_dir, port) as (url, lines):
        alice = await ApiClient.create(url, "alice")
        bob = await ApiClient.create(url, "bob")
        await alice.join("#lobby")
        await bob.join("#lobby")
        for n in range(5):
            await alice.say("#lobby", f"hello {n}")
        await bob.say("alice", "a DM")
        # Order is promised per target: the channel and the DM are checked apart.
        got = await bob.receive_until(lambda i: _seen(bob, "hello 4") and _seen(bob, "a DM"))
        assert _in(got, "#lobby") == [f"hello {n}" for n in range(5)]
        assert _in(got, "alice") == ["a DM"]
    output = "".join(lines)
    for name in ("gateway", "fanout", "history", "presence"):
        assert re.search(rf"^{name}\s+\| ", output, re.MULTILINE), name
    assert "PostgreSQL stopped" in output and "nats-server stopped" in output

    async with chinwag_up(data_dir, port) as (url, _):
        for client in (alice, bob):  # the same tokens still work: sessions survived
            client.http.base_url = url
        history = (await bob.http.get("/api/v1/history", params={"target": "#lobby"})).json()
        assert texts(history["messages"]) == [f"hello {n}" for n in range(5)]
        # Alice never polled: her queue is all there, and new messages follow it.
        await bob.say("#lobby", "after the restart")
        items = await alice.receive_until(
            lambda i: _seen(alice, "after the restart") and _seen(alice, "a DM")
        )
        assert _in(items, "#lobby") == [f"hello {n}" for n in range(5)] + ["after the restart"]
        assert _in(items, "alice") == ["a DM"]
    await alice.close()
    await bob.close()


async def _stalled(system: System, logs: list[Path], bob: ApiClient) -> str:
    """The database's sessions and waits, the partitions' positions and every worker's
    log: what a stalled fanout worker was doing."""
    async with system.db() as conn:
        sessions = await conn.fetch(
            """SELECT pid, state, wait_event_type, wait_event, xact_start, left(query, 120) AS q
               FROM pg_stat_activity WHERE datname = current_database()"""
        )
        waiting = await conn.fetch(
            "SELECT pid, locktype, relation::regclass::text, mode FROM pg_locks WHERE NOT granted"
        )
        positions = await conn.fetch("SELECT * FROM delivery.partition_offsets")
        queue = await conn.fetchrow(
            """SELECT (SELECT last_seq FROM delivery.client_seq WHERE client_id = $1) AS last_seq,
                      (SELECT max(seq) FROM delivery.client_queues WHERE client_id = $1) AS top,
                      (SELECT count(*) FROM delivery.client_queues
                       WHERE client_id = $1 AND seq > $2) AS unread,
                      (SELECT acked_seq FROM identity.clients WHERE id = $1) AS acked,
                      (SELECT count(*) FROM delivery.messages WHERE target = '#kill') AS items""",
            uuid.UUID(bob.client_id),
            bob.seen,
        )
    page = await bob.poll(timeout=0)
    parts = [
        f"bob: seen {bob.seen}, queue {dict(queue) if queue else None}, poll now {page}",
        "sessions:",
        *(str(dict(r)) for r in sessions),
        f"lock waits: {[dict(r) for r in waiting]}",
        f"positions: {[dict(r) for r in positions]}",
    ]
    for log in logs:
        parts += [f"--- {log.name}", log.read_text(errors="replace")[-6000:]]
    return "\n".join(parts)


def _seen(client: ApiClient, text: str) -> bool:
    return text in texts(client.items)


def _in(items: list[dict[str, Any]], target: str) -> list[str]:
    return texts([i for i in items if i["to"] == target])


async def test_a_fanout_worker_killed_mid_stream_loses_and_repeats_nothing(
    system: System, tmp_path: Path
) -> None:
    await system.stop("fanout")
    settings = system.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHINWAG_")}
    env.update(
        {
            "CHINWAG_DATABASE_URL": settings.dsn(),
            "CHINWAG_NATS_URL": settings.nats(),
            "CHINWAG_SUBJECT_PREFIX": settings.subject_prefix,
            "CHINWAG_STREAM_NAME": settings.stream_name,
            "CHINWAG_PARTITIONS": str(settings.partitions),
            "CHINWAG_FANOUT_BATCH": "8",
            "CHINWAG_LOG_LEVEL": "info",
        }
    )
    logs: list[Path] = []

    async def start_worker() -> asyncio.subprocess.Process:
        logs.append(tmp_path / f"worker-{len(logs)}.log")
        with logs[-1].open("wb") as out:  # the child keeps its own descriptor
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.cli",
                "fanout",
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )

    alice = await ApiClient.create(system.base_url, "alice")
    bob = await ApiClient.create(system.base_url, "bob")
    worker = await start_worker()
    try:
        await alice.join("#kill")
        await bob.join("#kill")
        await bob.receive(1)  # his own JOIN
        sent: list[str] = []
        for round_ in range(3):
            for n in range(60):
                await alice.say("#kill", f"r{round_} m{n}")
                sent.append(f"r{round_} m{n}")
            # Kill it once it has delivered part of this round, likely mid-batch.
            await bob.receive_until(lambda i, r=round_: i["body"] == [f"r{r} m10"], deadline=30)
            worker.kill()
            await worker.wait()
            worker = await start_worker()
        try:
            if not _seen(bob, sent[-1]):  # a quick worker delivers a round before its kill
                await bob.receive_until(lambda i: i["body"] == [sent[-1]], deadline=60)
        except AssertionError:
            print(await _stalled(system, logs, bob))  # what to look at when this ever stalls
            raise
        assert texts(bob.items) == sent
        await bob.nothing_more()
    finally:
        worker.terminate()
        await worker.wait()
        await alice.close()  # a failure here must not leave sockets to fail a later test
        await bob.close()
