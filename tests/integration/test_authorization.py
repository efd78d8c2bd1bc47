"""Object-level authorization: a test per rule. Every refusal also changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.harness import ApiClient, System, close, numerics, people, refused, texts

# --- queues ---------------------------------------------------------------------------


async def test_a_client_reads_only_its_own_queue(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice", password="pw-alice")
    phone = await ApiClient.login(system.base_url, "alice", "pw-alice")
    bob, eve = await people(system, "bob", "eve")
    await bob.say("alice", "for alice")
    await alice.receive(1)
    # Nothing in the request names a queue but the token: a client id, a session id or
    # another client's cookie alongside the token changes nothing.
    for params in ({"client_id": alice.client_id}, {"session_id": alice.session_id}):
        query = {"after": 0, "timeout": 0, **params}
        page = (await eve.http.get("/api/v1/messages", params=query)).json()
        assert page == {"messages": [], "last_seq": 0}
    eve.http.cookies.set("chinwag_token", alice.token)
    assert (await eve.poll(after=0))["messages"] == []
    # Each device has its own queue and cursor: the phone's poll acknowledges only its own.
    assert texts((await phone.poll(after=0))["messages"]) == ["for alice"]
    await phone.poll(after=1)
    assert texts((await alice.poll(after=0))["messages"]) == ["for alice"]
    await close(alice, phone, bob, eve)


# --- history --------------------------------------------------------------------------


async def test_channel_history_needs_membership(system: System) -> None:
    alice, eve = await people(system, "alice", "eve")
    await alice.join("#club")
    await alice.say("#club", "members only")
    await eve.join("#club")
    await eve.part("#club")  # a former member is an outsider again
    for target in ("#club", "#CLUB"):
        response = await eve.http.get("/api/v1/history", params={"target": target})
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "ERR_NOTONCHANNEL"
    page = (await alice.http.get("/api/v1/history", params={"target": "#club"})).json()
    assert "members only" in texts(page["messages"])
    await close(alice, eve)


async def test_a_dm_is_read_only_by_its_two_participants(system: System) -> None:
    alice, bob, eve = await people(system, "alice", "bob", "eve")
    await alice.say("bob", "between us")
    await bob.receive(1)
    for peer in ("alice", "bob", "ALICE"):
        page = (await eve.http.get("/api/v1/history", params={"target": peer})).json()
        assert "between us" not in texts(page["messages"]), peer
    assert (await eve.poll(after=0))["messages"] == []
    for reader, peer in ((alice, "bob"), (bob, "alice")):
        page = (await reader.http.get("/api/v1/history", params={"target": peer})).json()
        assert texts(page["messages"]) == ["between us"]
    await close(alice, bob, eve)


# --- secret channels ------------------------------------------------------------------


async def test_a_secret_channel_is_invisible_to_outsiders(system: System) -> None:
    alice, bob, eve = await people(system, "alice", "bob", "eve")
    await alice.join("#hidden")
    await alice.ok("MODE", to="#hidden", params=["+s"])
    await alice.ok("TOPIC", to="#hidden", body=["plans"])
    await alice.say("#hidden", "psst")
    await bob.join("#open")
    await alice.join("#open")

    async def outsider_view(client: ApiClient) -> dict[str, Any]:
        http = client.http
        who = await client.ok("WHO", to="#hidden")
        return {
            "channel": (await http.get("/api/v1/channels/hidden")).status_code,
            "members": (await http.get("/api/v1/channels/hidden/members")).status_code,
            "pins": (await http.get("/api/v1/channels/hidden/pins")).status_code,
            "search": (
                await http.get("/api/v1/search", params={"q": "psst", "target": "#hidden"})
            ).status_code,
            "history": (await http.get("/api/v1/history", params={"target": "#hidden"})).json(),
            "list": [r[1][0] for r in numerics(await client.ok("LIST")) if r[0] == "322"],
            "names": numerics(await client.ok("NAMES", to="#hidden")),
            "who": [r for r in numerics(who) if r[0] == "352"],
            "whois": [r for r in numerics(await client.ok("WHOIS", params=["alice"]))],
            "user": (await http.get("/api/v1/users/alice")).json()["channels"],
            "topic": (await client.command("TOPIC", to="#hidden")).json(),
            "mode": (await client.command("MODE", to="#hidden")).json(),
        }

    view = await outsider_view(eve)
    missing = {"code": "ERR_NOSUCHCHANNEL", "numeric": "403", "message": "#hidden: no such channel"}
    assert view["channel"] == view["members"] == view["pins"] == view["search"] == 404
    assert view["history"]["error"]["code"] == "ERR_NOSUCHCHANNEL"
    assert view["list"] == ["#open"]
    assert view["names"] == [("366", ["#hidden"], ["End of /NAMES list"])]
    assert view["who"] == []
    whois_channels = [r for r in view["whois"] if r[0] == "319"]
    assert whois_channels == [("319", ["alice"], ["#open"])]
    assert view["user"] == ["#open"]
    assert view["topic"] == view["mode"] == {"error": missing}
    # A member sees it all.
    await bob.join("#hidden")
    inside = await outsider_view(bob)
    assert inside["channel"] == inside["members"] == inside["pins"] == inside["search"] == 200
    assert "psst" in texts(inside["history"]["messages"])
    assert inside["list"] == ["#hidden", "#open"]
    assert inside["user"] == ["#hidden", "#open"]
    await close(alice, bob, eve)


# --- operators ------------------------------------------------------------------------


async def test_operator_actions_are_refused_to_others(system: System) -> None:
    op, bob, carol = await people(system, "op", "bob", "carol")
    for client in (op, bob, carol):
        await client.join("#ops")
    before = (await op.http.get("/api/v1/channels/ops")).json()
    await refused(bob, 403, "ERR_CHANOPRIVSNEEDED", "KICK", to="#ops", params=["carol"])
    await refused(bob, 403, "ERR_CHANOPRIVSNEEDED", "MODE", to="#ops", params=["+o", "bob"])
    await refused(bob, 403, "ERR_CHANOPRIVSNEEDED", "MODE", to="#ops", params=["+i"])
    await refused(bob, 403, "ERR_CHANOPRIVSNEEDED", "MODE", to="#ops", params=["+b", "carol"])
    await refused(bob, 403, "ERR_CHANOPRIVSNEEDED", "TOPIC", to="#ops", body=["mine"])  # +t
    await op.ok("MODE", to="#ops", params=["+i"])
    await refused(bob, 403, "ERR_CHANOPRIVSNEEDED", "INVITE", params=["eve", "#ops"])
    (eve,) = await people(system, "eve")
    await refused(eve, 403, "ERR_NOTONCHANNEL", "KICK", to="#ops", params=["bob"])
    await refused(eve, 403, "ERR_NOTONCHANNEL", "INVITE", params=["eve", "#ops"])
    await refused(eve, 403, "ERR_INVITEONLYCHAN", "JOIN", to="#ops")
    after = (await op.http.get("/api/v1/channels/ops")).json()
    assert (after["members"], after["topic"]) == (before["members"], before["topic"])
    assert after["modes"] == "+int"
    names = numerics(await op.ok("NAMES", to="#ops"))
    assert names[0][2] == ["@op bob carol"]
    # The same commands from the operator, and TOPIC once +t is off, are accepted.
    await op.ok("MODE", to="#ops", params=["-t"])
    await bob.ok("TOPIC", to="#ops", body=["anyone may"])
    await op.ok("INVITE", params=["eve", "#ops"])
    await op.ok("KICK", to="#ops", params=["carol"])
    await close(op, bob, carol, eve)


# --- revocation on every replica -----------------------------------------------------


@pytest.fixture
async def replica(system: System) -> str:
    """A second gateway on the same NATS and PostgreSQL: its base URL."""
    return await system.start_gateway("gateway-2")


async def _answers(url: str, token: str) -> int:
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.get("/api/v1/state", headers={"Authorization": f"Bearer {token}"})
        return response.status_code


async def test_logout_is_refused_at_once_on_every_replica(system: System, replica: str) -> None:
    first = await ApiClient.create(system.base_url, "carol", password="pw-carol")
    second = await ApiClient.login(replica, "carol", "pw-carol")
    assert [await _answers(u, first.token) for u in (system.base_url, replica)] == [200, 200]
    assert (await first.http.post("/api/v1/logout")).status_code == 200
    assert [await _answers(u, first.token) for u in (system.base_url, replica)] == [401, 401]
    assert [await _answers(u, second.token) for u in (system.base_url, replica)] == [200, 200]
    await close(first, second)


async def test_quit_is_refused_at_once_on_every_replica(system: System, replica: str) -> None:
    first = await ApiClient.create(replica, "dave", password="pw-dave")
    second = await ApiClient.login(system.base_url, "dave", "pw-dave")
    await first.ok("QUIT")
    for token in (first.token, second.token):
        assert [await _answers(u, token) for u in (system.base_url, replica)] == [401, 401]
    await close(first, second)


async def test_expiry_is_refused_at_once_on_every_replica(system: System, replica: str) -> None:
    idle, active = await people(system, "idle", "active")
    assert await system.expire_idle(idle) == [1]
    assert [await _answers(u, idle.token) for u in (system.base_url, replica)] == [401, 401]
    assert [await _answers(u, active.token) for u in (system.base_url, replica)] == [200, 200]
    await close(idle, active)
