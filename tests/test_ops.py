"""Probes and Prometheus metrics on every service, with plausible values after traffic."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from libs import bus, db, ops
from libs.embedded import free_port
from libs.settings import Settings
from services.fanout import metrics as fanout_metrics
from services.gateway import gauges
from services.up import plan
from tests import harness
from tests.harness import ApiClient, System, until
from tests.infra import Infra

WORKERS = ("fanout", "history", "presence")


class Scrape:
    """One scrape of a ``/metrics`` page."""

    def __init__(self, text: str) -> None:
        self.samples = [
            (s.name, s.labels, s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels``."""
        return sum(v for n, got, v in self.samples if n == name and _within(labels, got))

    def has(self, name: str, **labels: str) -> bool:
        return any(n == name and _within(labels, got) for n, got, _ in self.samples)


def _within(wanted: Mapping[str, str], got: Mapping[str, str]) -> bool:
    return all(got.get(k) == v for k, v in wanted.items())


async def scrape(http: httpx.AsyncClient, base_url: str) -> Scrape:
    response = await http.get(f"{base_url}/metrics", follow_redirects=True)
    assert response.status_code == 200, response.text
    return Scrape(response.text)


async def test_every_service_serves_probes_and_metrics_that_follow_traffic(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout_metrics, "LAG_INTERVAL", 0.2)
    fanout_metrics.PENDING.clear()
    monkeypatch.setattr(gauges, "INTERVAL", 0.2)
    await system.stop("gateway")  # again, counting sessions every 0.2 s
    system.start("gateway")
    await system.wait_ready()
    # The workers again, each with its probe server (the fixture's run without one).
    ports = {name: free_port() for name in WORKERS}
    await system.stop("fanout")
    for name, port in ports.items():
        system.start(f"{name}-ops", system.settings.model_copy(update={"ops_port": port}))
    workers = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    gateway = system.base_url

    async with httpx.AsyncClient(timeout=10) as http:

        async def serving() -> bool:
            try:
                answers = [await http.get(f"{url}/livez") for url in workers.values()]
            except httpx.TransportError:
                return False
            return all(a.status_code == 200 for a in answers)

        await until(serving, 20, "probe servers")
        for url in workers.values():
            ready = await http.get(f"{url}/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {
                "status": "ok",
                "checks": {"postgres": True, "nats": True, "stream": True},
            }

        before = await scrape(http, gateway)
        alice = await ApiClient.create(gateway, "alice")
        bob = await ApiClient.create(gateway, "bob")
        await alice.join("#ops")
        await bob.join("#ops")
        for n in range(5):
            await alice.say("#ops", f"line {n}")
        await bob.receive(6)  # his JOIN and five lines

        # One long-poll answered by a wake.
        poll = asyncio.create_task(bob.poll(timeout=20))

        async def parked() -> bool:
            return (await scrape(http, gateway)).value("chinwag_gateway_longpolls_waiting") >= 1

        await until(parked, 10, "the long-poll to park")
        await alice.say("#ops", "wake up")
        assert [i["body"] for i in (await poll)["messages"]] == [["wake up"]]
        await alice.receive(8)  # both JOINs and six lines

        history = await bob.http.get("/api/v1/history", params={"target": "#ops"})
        assert history.status_code == 200
        refused = await bob.http.get("/api/v1/history", params={"target": "#nowhere"})
        assert refused.status_code == 404
        channel = await bob.http.get("/api/v1/channels/ops")
        assert channel.status_code == 200

        async def lag_reported() -> bool:
            lag = await scrape(http, workers["fanout"])
            return all(
                lag.has("chinwag_fanout_consumer_pending", partition=str(p))
                for p in range(system.settings.partitions)
            )

        await until(lag_reported, 10, "consumer lag gauges")

        async def counted() -> bool:
            page = await scrape(http, gateway)
            return (
                page.value("chinwag_sessions"),
                page.value("chinwag_clients"),
                page.value("chinwag_channels"),
            ) == (2, 2, 1)

        await until(counted, 10, "sessions, clients and channels counted")
        after = await scrape(http, gateway)
        worker_pages = {name: await scrape(http, url) for name, url in workers.items()}
        await alice.close()
        await bob.close()

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    # Gateway: requests by route template, sends accepted, wake-to-response latency.
    post = {"route": "/api/v1/messages", "method": "POST", "status": "200"}
    assert grew("chinwag_http_requests_total", **post) >= 8
    assert grew("chinwag_http_request_duration_seconds_count", route="/api/v1/messages") >= 9
    assert grew("chinwag_http_requests_total", route="/api/v1/channels/{name}") == 1
    assert grew("chinwag_http_requests_total", route="/api/v1/history", status="404") == 1
    assert not after.has("chinwag_http_requests_total", route="/api/v1/channels/ops")
    assert grew("chinwag_gateway_sends_accepted_total", command="PRIVMSG") >= 6
    assert grew("chinwag_gateway_sends_accepted_total", command="JOIN") >= 2
    assert grew("chinwag_gateway_wake_to_response_seconds_count") >= 1
    assert after.has("chinwag_gateway_longpolls_waiting")

    # Fanout: 2 JOINs and 6 lines projected, one queue row per delivery (15 here).
    assert grew("chinwag_fanout_events_processed_total") >= 8
    assert grew("chinwag_fanout_queue_rows_total") >= 15
    assert grew("chinwag_fanout_batch_size_count") >= 1
    assert grew("chinwag_fanout_batch_size_sum") >= 8
    assert grew("chinwag_fanout_transaction_seconds_count") >= 1
    assert grew("chinwag_consumer_events_consumed_total") >= 8
    assert after.value("chinwag_fanout_events_parked_total") == before.value(
        "chinwag_fanout_events_parked_total"
    )
    lag = worker_pages["fanout"]
    assert lag.value("chinwag_fanout_consumer_pending") >= 0
    assert lag.has("chinwag_fanout_consumer_ack_pending", partition="0")

    # Presence and history: requests by endpoint and outcome.
    presence = {"service": "chinwag-presence", "endpoint": "join", "outcome": "ok"}
    assert grew("chinwag_rpc_requests_total", **presence) >= 2
    history_ok = {"service": "chinwag-history", "endpoint": "fetch", "outcome": "ok"}
    assert grew("chinwag_rpc_requests_total", **history_ok) >= 1
    history_refused = {"service": "chinwag-history", "endpoint": "fetch", "outcome": "refused"}
    assert grew("chinwag_rpc_requests_total", **history_refused) >= 1
    for name in WORKERS:
        assert worker_pages[name].has("chinwag_rpc_requests_total")


async def test_readyz_answers_503_naming_the_failed_check() -> None:
    async def ready() -> dict[str, bool]:
        return {"postgres": True, "nats": True, "stream": False}

    transport = httpx.ASGITransport(app=ops.probe_app(ready))
    async with httpx.AsyncClient(transport=transport, base_url="http://ops") as http:
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "checks": {"postgres": True, "nats": True, "stream": False},
        }
        assert (await http.get("/livez")).status_code == 200
        assert "chinwag_http_requests_total" in (await http.get("/metrics")).text


def test_up_gives_every_worker_an_ops_port_of_its_own() -> None:
    specs = plan(Settings(), 8080, {"fanout": 2})
    workers = [s for s in specs if s.name != "gateway"]
    assert all(s.ops_port is None for s in specs if s.name == "gateway")
    assert len({s.ops_port for s in workers}) == len(workers) == 4
    assert all(s.env["CHINWAG_OPS_PORT"] == str(s.ops_port) for s in workers)

    fixed = plan(Settings(ops_port=9100), 8080)
    assert [s.ops_port for s in fixed if s.name != "gateway"] == [9100, 9101, 9102]


async def test_readiness_fails_for_each_unreachable_dependency(
    infra: Infra, database_url: str
) -> None:
    settings = harness.test_settings(infra.nats_url, database_url)
    pool = await db.create_pool(database_url, 2)
    nc = await bus.connect(infra.nats_url, "test")
    try:
        missing = await ops.readiness(pool, nc, settings.stream_name, timeout=2)
        assert missing == {"postgres": True, "nats": True, "stream": False}
        await bus.ensure_stream(nc.jetstream(), settings)
        ready = await ops.readiness(pool, nc, settings.stream_name, timeout=2)
        assert ready == {"postgres": True, "nats": True, "stream": True}
        await pool.close()
        no_database = await ops.readiness(pool, nc, settings.stream_name, timeout=2)
        assert no_database == {"postgres": False, "nats": True, "stream": True}
        await nc.jetstream().delete_stream(settings.stream_name)
    finally:
        await nc.close()
    no_nats = await ops.readiness(pool, nc, settings.stream_name, timeout=2)
    assert no_nats == {"postgres": False, "nats": False, "stream": False}
