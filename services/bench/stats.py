"""Small statistics: percentiles of latency samples, rates, rounding for the report."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentiles(
    samples: Sequence[float], points: Sequence[float] = (50, 90, 99)
) -> dict[str, float | None]:
    """``p50`` … and ``max`` of ``samples`` (seconds) in milliseconds, nearest-rank."""
    if not samples:
        return {**{f"p{p:g}": None for p in points}, "max": None}
    ordered = sorted(samples)
    result: dict[str, float | None] = {}
    for point in points:
        rank = max(1, math.ceil(point / 100 * len(ordered)))
        result[f"p{point:g}"] = ms(ordered[rank - 1])
    result["max"] = ms(ordered[-1])
    return result


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def rate(count: float, seconds: float) -> float:
    """``count`` per second, 0 when no time passed."""
    return round(count / seconds, 1) if seconds > 0 else 0.0


def ratio(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return round(part / whole, 3)
