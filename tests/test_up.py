"""``chinwag up --scale``: the shape it plans, without starting anything."""

from __future__ import annotations

import argparse

import pytest

from libs.settings import Settings
from services.cli import _scale
from services.up import plan


def test_the_scale_option_takes_a_comma_separated_shape() -> None:
    assert _scale("gateway=2,fanout=3, history=0") == [
        ("gateway", 2),
        ("fanout", 3),
        ("history", 0),
    ]
    for bad in ("gateway", "gateway=two", "relay=2", "gateway=2,"):
        with pytest.raises(argparse.ArgumentTypeError):
            _scale(bad)


def test_two_of_everything_is_planned_as_a_statefulset_would_run_it() -> None:
    specs = plan(Settings(), 8080, {"gateway": 2, "fanout": 2, "presence": 2, "history": 2})
    assert [s.label for s in specs if s.name == "gateway"] == ["gateway.0", "gateway.1"]
    assert [s.port for s in specs if s.name == "gateway"] == [8080, 8081]
    fanouts = [s for s in specs if s.name == "fanout"]
    for ordinal, spec in enumerate(fanouts):
        assert spec.env["CHINWAG_FANOUT_WORKERS"] == "2"
        assert spec.env["CHINWAG_FANOUT_ORDINAL"] == str(ordinal)
        settings = Settings.model_validate(
            {k.removeprefix("CHINWAG_").lower(): v for k, v in spec.env.items()}
        )
        assert settings.owned_partitions == [ordinal, ordinal + 2]
    assert len(specs) == 8


def test_more_fanout_workers_than_partitions_is_refused() -> None:
    with pytest.raises(ValueError, match="partitions"):
        plan(Settings(partitions=2), 8080, {"fanout": 3})


def test_an_ordinal_must_be_below_the_worker_count() -> None:
    with pytest.raises(ValueError, match="fanout_ordinal"):
        Settings(fanout_workers=2, fanout_ordinal=2)
    assert Settings(fanout_partitions="all", fanout_workers=2).owned_partitions == [0, 1, 2, 3]
    assert Settings(fanout_partitions="3,1,9").owned_partitions == [1, 3]
