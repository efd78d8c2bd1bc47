"""Bad input gets a clear 4xx with the documented error body, and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.harness import ApiClient, System


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


# Beyond API.md version 1: see the README.
FEATURE_COMMANDS = {
    "REACT",
    "UNREACT",
    "EDIT",
    "DELETE",
    "PIN",
    "UNPIN",
    "MARKREAD",
    "TYPING",
    "PUBKEY",
}

API_COMMANDS = [
    "PRIVMSG",
    "NOTICE",
    "JOIN",
    "PART",
    "NICK",
    "TOPIC",
    "MODE",
    "KICK",
    "INVITE",
    "AWAY",
    "PASS",
    "QUIT",
    "PING",
    "NAMES",
    "LIST",
    "WHOIS",
    "WHO",
    "MOTD",
    "LUSERS",
]

BAD_COMMANDS: list[tuple[dict[str, Any], int, str]] = [
    ({"command": "FROB", "to": "#room"}, 400, "ERR_UNKNOWNCOMMAND"),
    ({"command": "PRIVMSG", "body": ["no target"]}, 400, "ERR_NORECIPIENT"),
    ({"command": "PRIVMSG", "to": "#room"}, 400, "ERR_NOTEXTTOSEND"),
    ({"command": "PRIVMSG", "to": "#room", "body": []}, 400, "ERR_NOTEXTTOSEND"),
    ({"command": "PRIVMSG", "to": "#room", "body": ["  "]}, 400, "ERR_NOTEXTTOSEND"),
    ({"command": "PRIVMSG", "to": "#room", "body": ["a\nb"]}, 400, "ERR_VALIDATION"),
    ({"command": "PRIVMSG", "to": "#room", "body": ["nul\x00"]}, 400, "ERR_VALIDATION"),
    ({"command": "PRIVMSG", "to": "#room", "body": {"k": 1}}, 400, "ERR_VALIDATION"),
    ({"command": "PRIVMSG", "to": "#room", "body": "bare string"}, 400, "ERR_VALIDATION"),
    ({"command": "PRIVMSG", "to": "#room", "body": ["x"], "extra": 1}, 400, "ERR_VALIDATION"),
    ({"command": "PRIVMSG", "to": "#room", "body": [1]}, 400, "ERR_VALIDATION"),
    ({"command": "PRIVMSG", "to": "#nowhere", "body": ["x"]}, 404, "ERR_NOSUCHCHANNEL"),
    ({"command": "PRIVMSG", "to": "ghost", "body": ["x"]}, 404, "ERR_NOSUCHNICK"),
    ({"command": "PRIVMSG", "to": "#bad,name", "body": ["x"]}, 404, "ERR_NOSUCHCHANNEL"),
    ({"command": "PRIVMSG", "to": "#other", "body": ["x"]}, 403, "ERR_CANNOTSENDTOCHAN"),
    ({"command": "JOIN"}, 400, "ERR_NEEDMOREPARAMS"),
    ({"command": "JOIN", "to": "#bad name"}, 400, "ERR_BADCHANMASK"),
    ({"command": "JOIN", "to": "nochan"}, 400, "ERR_BADCHANMASK"),
    ({"command": "PART", "to": "#other"}, 403, "ERR_NOTONCHANNEL"),
    ({"command": "PART", "to": "#nowhere"}, 404, "ERR_NOSUCHCHANNEL"),
    ({"command": "PING"}, 400, "ERR_NEEDMOREPARAMS"),
    (
        {"command": "PRIVMSG", "to": "#room", "body": ["x"], "meta": {"k": ["\x00"]}},
        400,
        "ERR_VALIDATION",
    ),
    (
        {"command": "PRIVMSG", "to": "#room", "body": ["x"], "meta": {"k": _nested(300)}},
        400,
        "ERR_VALIDATION",
    ),
    (
        {"command": "PRIVMSG", "to": "#room", "body": ["x"], "params": ["a\rb"]},
        400,
        "ERR_VALIDATION",
    ),
    ({"command": ""}, 400, "ERR_VALIDATION"),
]


async def _snapshot(system: System) -> tuple[int, ...]:
    async with system.db() as conn:
        counts = []
        for table in (
            "identity.sessions",
            "identity.clients",
            "presence.channels",
            "presence.members",
            "presence.outbox",
            "delivery.messages",
            "delivery.client_queues",
        ):
            counts.append(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        return tuple(counts)


async def test_bad_commands_are_refused_and_change_nothing(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    owner = await ApiClient.create(system.base_url, "owner")
    await alice.join("#room")
    await owner.join("#other")
    await alice.receive(1)
    before = await _snapshot(system)
    for body, status, code in BAD_COMMANDS:
        response = await alice.http.post("/api/v1/messages", json=body)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == code, (body, error)
        assert set(error) == {"code", "numeric", "message"} and error["message"]
    malformed = await alice.http.post(
        "/api/v1/messages", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "ERR_VALIDATION"
    huge = await alice.http.post(
        "/api/v1/messages",
        json={"command": "PRIVMSG", "to": "#room", "body": ["x" * 10_000]},
    )
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "ERR_TOO_LARGE"
    assert await _snapshot(system) == before
    await alice.nothing_more()
    await alice.close()
    await owner.close()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"nick": "9lives"}, 400, "ERR_ERRONEUSNICKNAME"),
        ({"nick": "has space"}, 400, "ERR_ERRONEUSNICKNAME"),
        ({"nick": "x" * 33}, 400, "ERR_ERRONEUSNICKNAME"),
        ({"nick": ""}, 400, "ERR_VALIDATION"),
        ({}, 400, "ERR_VALIDATION"),
        ({"nick": "ok", "password": ""}, 400, "ERR_VALIDATION"),
        ({"nick": "TAKEN"}, 409, "ERR_NICKNAMEINUSE"),
    ],
)
async def test_bad_sessions_are_refused_and_change_nothing(
    system: System, body: dict[str, Any], status: int, code: str
) -> None:
    await ApiClient.create(system.base_url, "taken")
    before = await _snapshot(system)
    async with httpx.AsyncClient(base_url=system.base_url) as http:
        response = await http.post("/api/v1/session", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert await _snapshot(system) == before


async def test_requests_without_a_valid_token_are_refused(system: System) -> None:
    async with httpx.AsyncClient(base_url=system.base_url) as http:
        for method, path in [
            ("GET", "/api/v1/state"),
            ("GET", "/api/v1/messages"),
            ("POST", "/api/v1/messages"),
            ("GET", "/api/v1/history?target=%23a"),
            ("POST", "/api/v1/logout"),
        ]:
            missing = await http.request(method, path)
            assert missing.status_code == 401, path
            assert missing.json()["error"]["code"] == "ERR_UNAUTHORIZED"
            forged = await http.request(method, path, headers={"Authorization": "Bearer nope"})
            assert forged.status_code == 401, path


async def test_bad_query_parameters_are_refused(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    for params in [
        {"after": -1},
        {"timeout": 61},
        {"limit": 0},
        {"limit": 1001},
        {"after": "x"},
    ]:
        response = await alice.http.get("/api/v1/messages", params=params)
        assert response.status_code == 400, params
        assert response.json()["error"]["code"] == "ERR_VALIDATION"
    for params in [{"target": "#a", "limit": 501}, {"target": "#a", "before": -1}]:
        response = await alice.http.get("/api/v1/history", params=params)
        assert response.status_code == 400, params
    unknown = await alice.http.get("/api/v1/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "ERR_NOT_FOUND"
    await alice.close()


async def test_openapi_and_probes_are_served(system: System) -> None:
    async with httpx.AsyncClient(base_url=system.base_url) as http:
        spec = (await http.get("/openapi.json")).json()
        assert {
            "/api/v1/session",
            "/api/v1/login",
            "/api/v1/logout",
            "/api/v1/state",
            "/api/v1/messages",
            "/api/v1/history",
            "/api/v1/channels",
            "/api/v1/channels/{name}",
            "/api/v1/channels/{name}/members",
            "/api/v1/users/{nick}",
            "/api/v1/server",
            "/.well-known/healthcheck.json",
            "/livez",
            "/readyz",
        } <= set(spec["paths"])
        body = spec["paths"]["/api/v1/messages"]["post"]["requestBody"]
        variants = body["content"]["application/json"]["schema"]["oneOf"]
        documented = {v["properties"]["command"]["const"] for v in variants}
        assert documented == set(API_COMMANDS) | FEATURE_COMMANDS
        assert (await http.get("/livez")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"postgres": True, "nats": True, "stream": True}
        assert "chinwag_gateway_commands_total" in (await http.get("/metrics/")).text


# Found by tests/integration/test_schema_fuzz.py and probing: each was a 500 or 503.
HOSTILE: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/api/v1/messages", {"command": "WHO", "to": "\x00"}),
    ("POST", "/api/v1/messages", {"command": "NAMES", "to": "#\x00"}),
    ("POST", "/api/v1/messages", {"command": "TOPIC", "to": "#room\x00"}),
    ("POST", "/api/v1/messages", {"command": "PART", "to": "#\x00"}),
    ("POST", "/api/v1/messages", {"command": "MODE", "to": "#room", "params": ["+l", "9" * 14]}),
    ("POST", "/api/v1/messages", {"command": "MODE", "to": "#room", "params": ["+l", "²"]}),
    ("POST", "/api/v1/messages", {"command": "MODE", "to": "#room", "params": ["+b", "*" * 200]}),
    ("POST", "/api/v1/messages", {"command": "AWAY", "body": ["x"] * 101}),
    ("GET", "/api/v1/history?target=%00", None),
    ("GET", "/api/v1/history?target=%23room&before=99999999999999999999", None),
    ("GET", "/api/v1/messages?after=99999999999999999999&timeout=0", None),
    ("GET", "/api/v1/users/%00", None),
    ("GET", "/api/v1/channels/%00", None),
    ("GET", "/api/v1/channels/%00/members", None),
]


async def test_hostile_requests_get_a_400_and_change_nothing(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    await alice.join("#room")
    await alice.receive(1)
    before = await _snapshot(system)
    for method, path, body in HOSTILE:
        response = await alice.http.request(method, path, json=body)
        assert response.status_code == 400, (path, body, response.text)
        assert response.json()["error"]["code"] == "ERR_VALIDATION"
    long_key = await alice.command("PING", key="k" * 129, params=["x"])
    assert long_key.status_code == 400
    assert await _snapshot(system) == before
    await alice.nothing_more()
    await alice.close()


async def _chunks(data: bytes) -> Any:
    for start in range(0, len(data), 1000):
        yield data[start : start + 1000]


async def test_bodies_over_the_limit_get_413_even_without_a_length(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    before = await _snapshot(system)
    big = b'{"nick": "mallory", "password": "' + b"x" * 5000 + b'"}'
    for path in ("/api/v1/session", "/api/v1/login", "/api/v1/messages", "/api/v1/logout"):
        for content in (big, _chunks(big)):
            response = await alice.http.post(
                path, content=content, headers={"content-type": "application/json"}
            )
            assert response.status_code == 413, (path, response.text)
            assert response.json()["error"]["code"] == "ERR_TOO_LARGE"
    assert await _snapshot(system) == before
    assert (await alice.http.get("/api/v1/state")).status_code == 200  # not logged out
    small = b'{"command": "PING", "params": ["chunked"]}'
    accepted = await alice.http.post(
        "/api/v1/messages", content=_chunks(small), headers={"content-type": "application/json"}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["replies"][0]["params"][1] == "chunked"
    await alice.close()


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 2000 + b"]" * 2000,
        b'{"nick": ' + b"[" * 2000 + b"]" * 2000 + b"}",
        b'{"command": "PING", "params": ["x"], "meta": ' + b'{"a":' * 600 + b"1" + b"}" * 601,
    ],
)
async def test_deeply_nested_json_is_refused(system: System, raw: bytes) -> None:
    alice = await ApiClient.create(system.base_url, "alice")
    for path in ("/api/v1/session", "/api/v1/login", "/api/v1/messages"):
        response = await alice.http.post(
            path, content=raw, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, (path, response.text)
    await alice.close()
