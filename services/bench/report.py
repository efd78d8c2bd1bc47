"""The report: ratios to the ceilings, the printed table and the JSON file."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.bench.stats import ratio

Report = dict[str, Any]


def _get(data: Mapping[str, Any], path: str) -> Any:
    value: Any = data
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def ratios(scenarios: Mapping[str, Any]) -> dict[str, float | None]:
    """The pipeline's figures as fractions of the ceilings measured in the same run."""

    def of(path: str) -> Any:
        return _get(scenarios, path)

    return {
        "accepted_sends_per_js_publish_1": ratio(
            of("throughput.accepted_per_s"), of("ceilings.js_publish_1.per_s")
        ),
        "accepted_sends_per_js_publish_100": ratio(
            of("throughput.accepted_per_s"), of("ceilings.js_publish_100.per_s")
        ),
        "queue_rows_per_pg_insert_1": ratio(
            of("throughput.queue_rows_per_s"), of("ceilings.pg_insert_1.rows_per_s")
        ),
        "fanout_only_rows_per_pg_insert_1": ratio(
            of("throughput.fanout_only.queue_rows_per_s"), of("ceilings.pg_insert_1.rows_per_s")
        ),
        "throughput_polls_per_bare_asgi": ratio(
            of("throughput.polls_per_s"), of("ceilings.bare_asgi.per_s")
        ),
        "gateway_empty_polls_per_bare_asgi": ratio(
            of("ceilings.gateway_empty_poll.per_s"), of("ceilings.bare_asgi.per_s")
        ),
    }


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int | float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100 or float(value).is_integer():
            return f"{value:.0f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"
    return str(value)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


# (scenario, label, the values' paths in the scenario's results, goal)
_ROWS: list[tuple[str, str, tuple[str, ...], str]] = [
    ("latency", "members / senders", ("members", "senders"), ""),
    ("latency", "sends/s scheduled / achieved", ("scheduled_rate", "achieved_rate"), ""),
    (
        "latency",
        "send→deliver p50/p90/p99/max ms",
        tuple(f"send_to_deliver_ms.{p}" for p in ("p50", "p90", "p99", "max")),
        "p50 ≤ 10, p99 ≤ 50",
    ),
    (
        "latency",
        "send→accept p50/p90/p99/max ms",
        tuple(f"send_to_accept_ms.{p}" for p in ("p50", "p90", "p99", "max")),
        "",
    ),
    ("latency", "deliveries checked", ("deliveries",), ""),
    (
        "latency",
        "CPU µs per delivery, every server process",
        ("cpu_us_per_delivery.servers",),
        "",
    ),
    ("throughput", "accepted sends/s", ("accepted_per_s",), ""),
    ("throughput", "deliveries/s", ("deliveries_per_s",), "≥ 25,000"),
    ("throughput", "queue rows/s", ("queue_rows_per_s",), ""),
    ("throughput", "long-polls answered/s", ("polls_per_s",), ""),
    (
        "throughput",
        "send→deliver p50/p99 ms under load",
        ("send_to_deliver_ms.p50", "send_to_deliver_ms.p99"),
        "",
    ),
    ("throughput", "drain after the load, s", ("drain_s",), ""),
    (
        "throughput",
        "CPU µs per delivery, every server process",
        ("cpu_us_per_delivery.servers",),
        "",
    ),
    (
        "throughput",
        "fanout only: queue rows/s",
        ("fanout_only.queue_rows_per_s",),
        "≥ 50 % of PG ceiling",
    ),
    ("throughput", "fanout only: deliveries/s", ("fanout_only.deliveries_per_s",), ""),
    (
        "throughput",
        "fanout only: waited for the database to settle, s",
        ("fanout_only.settled_s",),
        "",
    ),
    ("bigroom", "member clients", ("members",), ""),
    ("bigroom", "send accepted, ms", ("accept_ms",), ""),
    ("bigroom", "all queue rows committed, ms", ("committed_ms",), "≤ 250"),
    ("bigroom", "sampled polls p50 / last, ms", ("sampled_ms.p50", "all_sampled_ms"), ""),
    ("idle", "idle long-polls held", ("polls",), "10,000"),
    ("idle", "gateway RSS per poll, KB", ("rss_per_poll_kb",), "≤ 20"),
    (
        "idle",
        "gateway RSS before / after, MB",
        ("gateway_rss_before_mb", "gateway_rss_after_mb"),
        "",
    ),
    ("idle", "all answered after one message, ms", ("all_answered_ms",), ""),
    (
        "ceilings",
        "PG queue rows/s, 1 / 4 connections",
        ("pg_insert_1.rows_per_s", "pg_insert_4.rows_per_s"),
        "",
    ),
    (
        "ceilings",
        "JetStream acked publishes/s, 1 / 100 in flight",
        ("js_publish_1.per_s", "js_publish_100.per_s"),
        "",
    ),
    ("ceilings", "bare ASGI answers/s", ("bare_asgi.per_s",), ""),
    ("ceilings", "bare ASGI answers/s, aiohttp's client", ("bare_asgi_aiohttp.per_s",), ""),
    ("ceilings", "gateway empty long-polls/s", ("gateway_empty_poll.per_s",), ""),
    ("ceilings", "waited for the database to settle, s", ("settled_s",), ""),
]


def figures(report: Report) -> dict[str, Any]:
    """Every figure of the table, by its path in the report (None where it is missing)."""
    scenarios = report.get("scenarios", {})
    found: dict[str, Any] = {}
    for scenario, _, paths, _ in _ROWS:
        if scenario in scenarios:
            for path in paths:
                found[f"scenarios.{scenario}.{path}"] = _get(scenarios[scenario], path)
    for key, value in report.get("ratios", {}).items():
        found[f"ratios.{key}"] = value
    return found


_RATIO_LABELS = {
    "accepted_sends_per_js_publish_1": "accepted sends / JetStream 1 in flight",
    "accepted_sends_per_js_publish_100": "accepted sends / JetStream 100 in flight",
    "queue_rows_per_pg_insert_1": "throughput queue rows / PG 1 connection",
    "fanout_only_rows_per_pg_insert_1": "fanout-only queue rows / PG 1 connection",
    "throughput_polls_per_bare_asgi": "long-polls answered / bare ASGI",
    "gateway_empty_polls_per_bare_asgi": "gateway empty polls / bare ASGI",
}


def table(report: Report) -> str:
    """The report as the text table ``chinwag bench`` prints."""
    machine = report.get("machine", {})
    lines = [
        f"chinwag bench, run {report.get('run')}: {machine.get('cpus')} CPUs, "
        f"{machine.get('platform')}, Python {machine.get('python')}, "
        f"load average before {machine.get('load_before')}",
    ]
    rows: list[tuple[str, str, str, str]] = []
    scenarios = report.get("scenarios", {})
    failed: set[str] = set()
    for name, label, paths, goal in _ROWS:
        data = scenarios.get(name)
        if data is None or name in failed:
            continue
        if "error" in data:
            failed.add(name)
            rows.append((name, "FAILED", data["error"][:90], ""))
            continue
        rows.append((name, label, " / ".join(_num(_get(data, p)) for p in paths), goal))
    for key, value in report.get("ratios", {}).items():
        if value is not None:
            rows.append(("ratios", _RATIO_LABELS.get(key, key), _pct(value), ""))
    for name, data in scenarios.items():
        checks = data.get("checks") if isinstance(data, Mapping) else None
        if isinstance(checks, Mapping):
            rows.append(("checks", name, _check(checks), ""))
        inner = _get(data, "fanout_only.checks")
        if isinstance(inner, Mapping):
            rows.append(("checks", f"{name} (fanout only)", _check(inner), ""))
    lines.extend(_columns([("scenario", "figure", "value", "goal"), *rows]))
    lines.append("")
    lines.extend(_processes(scenarios))
    lines.append("")
    lines.append("OK: every delivery checked" if report.get("ok") else "FAILED: see problems above")
    return "\n".join(lines)


def _check(checks: Mapping[str, Any]) -> str:
    if checks.get("ok"):
        return f"ok ({_num(checks.get('delivered'))} deliveries)"
    return (
        f"FAILED: lost {checks.get('lost')}, duplicated {checks.get('duplicated')}, "
        f"out of order {checks.get('out_of_order')}"
    )


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for index, row in enumerate(rows):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return out


def _usages(scenarios: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for name, data in scenarios.items():
        if isinstance(data, Mapping) and isinstance(data.get("processes"), Mapping):
            found[name] = data["processes"]
        inner = _get(data, "fanout_only.processes")
        if isinstance(inner, Mapping):
            found[f"{name}/fanout"] = inner
    return found


def _processes(scenarios: Mapping[str, Any]) -> list[str]:
    """CPU seconds / peak RSS MB per process role (columns) and scenario (rows)."""
    usages = _usages(scenarios)
    roles = sorted({role for usage in usages.values() for role in usage})
    if not roles:
        return []
    header = ("CPU s / peak RSS MB", *roles)
    rows = [header]
    for name, usage in usages.items():
        cells = []
        for role in roles:
            found = usage.get(role)
            cells.append(f"{found['cpu_s']:.1f} / {found['peak_rss_mb']:.0f}" if found else "-")
        rows.append((name, *cells))
    return _columns(rows)


def write(report: Report, path: Path) -> None:
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
