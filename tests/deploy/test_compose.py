"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The compose file is parsed by a Compose-spec implementation, then held to
the code: every service runs, after the migration, with a health check, and
with every setting in its environment at the code's default unless a
container needs another.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dockerfile
import pytest
import yaml
from compose_spec import PyCompose

from libs.settings import Settings
from services.cli import SERVICES

ROOT = Path(__file__).resolve().parents[2]
CHINWAG = ("migrate", *SERVICES)
# Settings whose container value differs from the code's default, and why.
CONTAINER_VALUES = {
    "database_url": "the compose postgres",
    "nats_url": "the compose nats",
    "http_host": "listen on every interface of the container",
    "ops_port": "workers serve probes and metrics",
    "log_format": "JSON to the log collector",
    "fanout_workers": "two fanout services",
}
NOT_WIRED = {
    "data_dir": "only `chinwag up` uses it, for embedded servers",
    "fanout_ordinal": "set per fanout service",
}
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::-((?:[^{}]|\{[^{}]*\})*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def _interpolate(value: str) -> str:
    """``${VAR:-default}`` as Compose resolves it with nothing set: the default."""
    while (found := _VAR.search(value)) is not None:
        assert found[2] is not None, f"${{{found[1]}}} has no default"
        value = value[: found.start()] + found[2] + value[found.end() :]
    return value


def _resolved(node: Any) -> Any:
    """A copy with every variable at its default (and no shared nodes, hence no aliases)."""
    if isinstance(node, dict):
        return {key: _resolved(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolved(value) for value in node]
    return _interpolate(node) if isinstance(node, str) else node


def _chinwag_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("command", [None])[0] in CHINWAG
    }


def test_the_compose_file_is_valid_compose(compose: dict[str, Any]) -> None:
    # Anchors, merge keys and variables resolved, as Compose does before it validates.
    parsed = PyCompose.from_yaml(yaml.safe_dump(_resolved(compose)))
    assert set(parsed.service_names()) == set(compose["services"])
    text = (ROOT / "docker-compose.yml").read_text()
    for found in _VAR.finditer(text):
        assert found[2] is not None, f"${{{found[1]}}} needs a default"


def test_every_service_runs_after_the_migration_with_a_health_check(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["nats"]["image"].split(":")[0] == "nats"
    assert "--jetstream" in services["nats"]["command"]
    assert services["postgres"]["image"].split(":")[0] == "postgres"
    ours = _chinwag_services(compose)
    commands = {s["command"][0] for s in ours.values()}
    assert commands == set(CHINWAG), "a service has no container"
    for name, service in ours.items():
        needs = service["depends_on"]
        assert needs["postgres"]["condition"] == "service_healthy", name
        if service["command"] == ["migrate"]:
            assert service["restart"] == "no"
            continue
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
        assert needs["nats"]["condition"] == "service_healthy", name
        check = " ".join(service["healthcheck"]["test"])
        port = "CHINWAG_HTTP_PORT" if service["command"] == ["gateway"] else "CHINWAG_OPS_PORT"
        assert f"{port}:-" in check and "/readyz" in check, name
    for name in ("nats", "postgres"):
        assert services[name]["healthcheck"]["test"], name


def test_every_setting_is_wired_through_the_environment(compose: dict[str, Any]) -> None:
    defaults = Settings()
    for name, service in _chinwag_services(compose).items():
        env = {key: _interpolate(str(value)) for key, value in service["environment"].items()}
        wired = {key.removeprefix("CHINWAG_").lower() for key in env if key.startswith("CHINWAG_")}
        missing = set(Settings.model_fields) - wired - set(NOT_WIRED)
        assert not missing, f"{name} lacks {sorted(missing)}"
        settings = Settings.model_validate(
            {k.removeprefix("CHINWAG_").lower(): v for k, v in env.items()}
        )  # every value valid, and the whole consistent (e.g. the ordinal below the count)
        for field in wired - set(CONTAINER_VALUES) - set(NOT_WIRED):
            assert getattr(settings, field) == getattr(defaults, field), (
                f"{name}: CHINWAG_{field.upper()} defaults to something else than the code"
            )


def test_the_fanout_services_cover_every_ordinal(compose: dict[str, Any]) -> None:
    fanouts = [s for s in _chinwag_services(compose).values() if s["command"] == ["fanout"]]
    workers = {int(_interpolate(s["environment"]["CHINWAG_FANOUT_WORKERS"])) for s in fanouts}
    ordinals = sorted(int(s["environment"].get("CHINWAG_FANOUT_ORDINAL", 0)) for s in fanouts)
    assert workers == {len(fanouts)} and ordinals == list(range(len(fanouts)))


def test_the_dockerfile_builds_one_non_root_image_whose_command_picks_the_service() -> None:
    commands = dockerfile.parse_file(str(ROOT / "Dockerfile"))
    stages = [i for i, c in enumerate(commands) if c.cmd == "FROM"]
    assert len(stages) >= 2, "multi-stage"
    final = commands[stages[-1] :]
    assert any(c.cmd == "COPY" and "--from=build" in c.flags for c in final)
    users = [c.value[0] for c in final if c.cmd == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    entrypoint = [c for c in final if c.cmd == "ENTRYPOINT"]
    assert entrypoint[-1].json and entrypoint[-1].value == ("chinwag",)
    cmd = [c for c in final if c.cmd == "CMD"]
    assert cmd[-1].value[0] in SERVICES
    for command in commands:
        if command.cmd == "COPY" and not command.flags:
            for source in command.value[:-1]:
                assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored
