"""Two of every service as real processes (``chinwag up --scale``), and a fanout worker killed.

Clients talk to both gateways; every delivery invariant is checked on what
they receive. Halfway through a send storm one fanout worker is SIGKILLed:
the other takes its partitions over when their leases lapse, and nothing is
lost or delivered twice.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx

from libs.embedded import free_port
from libs.irc import fold
from libs.subjects import partition_of
from tests.harness import ApiClient, texts, until
from tests.infra import Infra
from tests.integration.test_processes import chinwag_up

PARTITIONS = 4


def _two_free_ports() -> int:
    while True:
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def _channels_on_every_partition() -> list[str]:
    channels: list[str] = []
    n = 0
    while len({partition_of(fold(c), PARTITIONS) for c in channels}) < PARTITIONS:
        channels.append(f"#scale{n}")
        n += 1
    return channels


async def test_two_of_everything_keeps_every_invariant_and_survives_a_fanout_kill(
    infra: Infra, database_url: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:10]
    env = {
        "CHINWAG_DATABASE_URL": database_url,
        "CHINWAG_NATS_URL": infra.nats_url,
        "CHINWAG_SUBJECT_PREFIX": f"s{tag}",
        "CHINWAG_STREAM_NAME": f"S{tag}",
        "CHINWAG_PARTITIONS": str(PARTITIONS),
        "CHINWAG_FANOUT_LEASE_TTL": "2",
        "CHINWAG_FANOUT_BATCH": "8",
        "CHINWAG_DB_POOL_SIZE": "3",
        "CHINWAG_COMMAND_RATE": "10000",
        "CHINWAG_COMMAND_BURST": "10000",
        "CHINWAG_LOG_LEVEL": "warning",
    }
    port = _two_free_ports()
    shape = "gateway=2,fanout=2,presence=2,history=2"
    async with chinwag_up(tmp_path, port, "--scale", shape, env=env, gateways=2) as (url, lines):
        output = "".join(lines)
        gateways = [f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"]
        assert url in gateways
        for g in gateways:
            assert f"chinwag is up: {g}/" in output
        pids = {m[1]: int(m[2]) for m in re.finditer(r"(\S+) started \(pid (\d+)\)", output)}
        assert set(pids) == {
            f"{s}.{i}" for s in ("gateway", "fanout", "presence", "history") for i in (0, 1)
        }

        channels = _channels_on_every_partition()
        senders = [await ApiClient.create(gateways[i], f"sender{i}") for i in (0, 1)]
        readers = [await ApiClient.create(gateways[i], f"reader{i}") for i in (0, 1)]
        # A second device of reader0's session, on the other gateway.
        await readers[0].close()
        readers[0] = await ApiClient.create(gateways[0], f"dev{tag}", password="pw-" + tag)
        other_device = await ApiClient.login(gateways[1], f"dev{tag}", "pw-" + tag)
        clients = [*readers, other_device]
        for client in (*clients, *senders):
            for channel in channels:
                await client.join(channel)
        for client in clients:  # the senders joined last: in each partition, after everyone
            await _receive_joins(client, {(s.nick, c) for s in senders for c in channels})

        # No lost wake-up across gateways: a poll parked on gateway 1 is answered by a
        # send on gateway 0 (a lost wake shows as an empty answer at the timeout).
        poll = asyncio.create_task(readers[1].poll(timeout=30))
        await senders[0].say("reader1", "across")
        page = await poll
        assert [i["body"] for i in page["messages"]] == [["across"]]
        readers[1].seen = page["last_seq"]

        sent: dict[str, list[tuple[str, str]]] = defaultdict(list)

        async def storm(sender: ApiClient, rounds: range) -> None:
            for k in rounds:
                channel = channels[k % len(channels)]
                text = f"{sender.nick}:{k}"
                await sender.say(channel, text, key=f"{sender.nick}-{k}")
                sent[sender.nick].append((channel, text))

        await asyncio.gather(*(storm(s, range(0, 40)) for s in senders))
        killer = asyncio.create_task(_kill_when_seen(readers[1], pids["fanout.1"], "sender0:45"))
        await asyncio.gather(*(storm(s, range(40, 120)) for s in senders))
        await killer
        await until(lambda: _said(lines, "fanout.1 exited unexpectedly"), 10, "up to notice")
        assert "fanout.0 carries on" in "".join(lines)
        # After the kill, every partition still flows: fanout.0 took fanout.1's over.
        await asyncio.gather(*(storm(s, range(120, 140)) for s in senders))
        expected = sorted(t for pairs in sent.values() for _, t in pairs)
        for client in clients:
            await _receive_chat(client, len(expected))
            assert sorted(_chat(client)) == expected, f"{client.nick}: lost or doubled"
            for nick, pairs in sent.items():  # per-target order: each sender's, per channel
                for channel in channels:
                    seen = [
                        i["body"][0]
                        for i in client.items
                        if i["command"] == "PRIVMSG" and i["to"] == channel and i["from"] == nick
                    ]
                    assert seen == [t for c, t in pairs if c == channel], (client.nick, channel)
            await client.nothing_more()

        # Delivered everything: so fanout.0 consumes all the partitions now.
        metrics = re.search(r"fanout\.0 probes and metrics: (\S+)", output)
        assert metrics is not None
        async with httpx.AsyncClient() as http:
            scraped = (await http.get(metrics[1])).text
        assert f"chinwag_fanout_partitions_owned {float(PARTITIONS)}" in scraped

        # Membership at the edges, across gateways: a PART answered on one gateway stops
        # deliveries sent through the other; a JOIN answered there starts them.
        await readers[1].part(channels[0])
        late = await ApiClient.create(gateways[0], "late")
        await late.join(channels[0])
        await senders[1].say(channels[0], "after the part")
        for client in (readers[0], other_device, late):
            await client.receive_until(lambda i: i["body"] == ["after the part"])
        parted = await readers[1].receive(1)
        assert [i["command"] for i in parted] == ["PART"]
        await readers[1].nothing_more()
        for client in (*clients, *senders, late):
            await client.close()


def _chat(client: ApiClient) -> list[str]:
    return [t for t in texts(client.items) if ":" in t]


async def _receive_joins(client: ApiClient, joins: set[tuple[str, str]]) -> None:
    end = time.monotonic() + 30
    while not joins <= {(i["from"], i["to"]) for i in client.items if i["command"] == "JOIN"}:
        await client.receive(1, deadline=end - time.monotonic())


async def _receive_chat(client: ApiClient, count: int, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while len(_chat(client)) < count:
        await client.receive(1, deadline=end - time.monotonic())


async def _said(lines: list[str], text: str) -> bool:
    return text in "".join(lines)


async def _kill_when_seen(reader: ApiClient, pid: int, text: str) -> None:
    """SIGKILL a fanout worker once ``text`` reached ``reader``: mid-stream, likely mid-batch."""
    await reader.receive_until(lambda i: i["body"] == [text], deadline=60)
    os.kill(pid, signal.SIGKILL)
