"""Hostile input against a live gateway: schemathesis generates requests from the
gateway's own ``/openapi.json``, valid and invalid, and checks every answer.

No answer may be a server error; each must be documented (status, content type,
body schema); schema-invalid requests must be refused and schema-valid ones
accepted. The run is bounded and derandomized: the same cases every time.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import positive_data_acceptance

from tests.harness import System

EXAMPLES = 15  # per operation and mode; commands, the richest input, get more
COMMAND_EXAMPLES = 90
REFUSALS = ["400", "401", "403", "404", "405", "409", "413", "422", "429"]
# Rules beyond JSON Schema (the MODE grammar, a line with some text, meta's depth and
# NULs) are the server's alone: a schema-valid command may still be refused with 400.
SEMANTIC = {("POST", "/api/v1/messages")}
POLL_CAP = 0.2  # seconds: a generated long-poll may ask to wait a minute on an empty queue


def _without_auth(raw: dict[str, Any]) -> dict[str, Any]:
    """The schema with its security requirements removed: every case runs as a valid,
    fresh client (tests/integration/test_authorization.py covers missing and bad tokens)."""
    schema = copy.deepcopy(raw)
    schema.get("components", {}).pop("securitySchemes", None)
    for item in schema["paths"].values():
        for operation in item.values():
            operation.pop("security", None)
    return schema


def _takes_input(raw: dict[str, Any], path: str, method: str) -> bool:
    operation = raw["paths"][path][method.lower()]
    return bool(operation.get("parameters") or operation.get("requestBody"))


def _short_poll(case: Case) -> None:
    if (case.method, case.operation.path) != ("GET", "/api/v1/messages"):
        return
    query = case.query if case.query is not None else {}
    timeout = query.get("timeout", 15)
    if isinstance(timeout, int | float) and not isinstance(timeout, bool) and timeout > POLL_CAP:
        query["timeout"] = POLL_CAP
        case.query = query


def _fuzz(base_url: str, raw: dict[str, Any]) -> int:
    config = schemathesis.config.SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}}
    )
    schema = schemathesis.openapi.from_dict(_without_auth(raw), config=config)
    with requests.Session() as http:
        return _run_all(schema, raw, base_url, http)


def _run_all(schema: Any, raw: dict[str, Any], base_url: str, http: requests.Session) -> int:
    nicks = (f"fuzz{n}" for n in itertools.count())

    def fresh_client() -> dict[str, str]:
        """Each case runs as a new client: a generated logout or QUIT ends only that one."""
        response = http.post(f"{base_url}/api/v1/session", json={"nick": next(nicks)})
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def check(case: Case, excluded: list[Any]) -> None:
        _short_poll(case)
        headers = fresh_client()
        response = case.call(base_url=base_url, session=http, headers=headers)
        case.validate_response(response, headers=headers, excluded_checks=excluded)

    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if _takes_input(raw, operation.path, operation.method):
            modes.append(GenerationMode.NEGATIVE)
        semantic = (operation.method.upper(), operation.path) in SEMANTIC
        for mode in modes:
            count = COMMAND_EXAMPLES if semantic else EXAMPLES
            cases = operation.as_strategy(generation_mode=mode)
            ran += _examples(cases, count, check, semantic)
    return ran


def _examples(cases: Any, count: int, check: Any, semantic: bool) -> int:
    """Run up to ``count`` cases of one operation; returns how many ran."""
    excluded = [positive_data_acceptance] if semantic else []
    ran = 0

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def run(case: Case) -> None:
        nonlocal ran
        check(case, excluded)
        ran += 1

    run()
    return ran


async def test_generated_requests_get_documented_answers_and_no_server_error(
    system: System,
) -> None:
    async with httpx.AsyncClient(base_url=system.base_url) as http:
        raw = (await http.get("/openapi.json")).json()
    ran = await asyncio.to_thread(_fuzz, system.base_url, raw)
    assert ran >= 200
