"""The memory soak's growth measure: passing spikes are not growth, memory that stays is."""

from __future__ import annotations

from services.bench.soak import MEMORY_BOUND, _growth


def test_a_passing_spike_is_not_growth() -> None:
    series = [70.0, 72.0, 71.0, 200.0, 72.0, 140.0, 71.5, 72.0, 190.0, 72.5, 72.0, 150.0]
    found = _growth(series)
    assert found is not None
    baseline, growth = found
    assert baseline == 72.0
    assert growth < MEMORY_BOUND[0]


def test_memory_that_stays_is_growth() -> None:
    series = [70.0 + 5 * i for i in range(12)]  # 5 MiB more every sample
    found = _growth(series)
    assert found is not None
    assert found[1] == 30.0  # from the second quarter's least to the last quarter's least


def test_too_few_samples_say_nothing() -> None:
    assert _growth([70.0, 71.0, 72.0]) is None
