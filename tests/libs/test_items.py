"""Items on the wire: times are RFC 3339 UTC with microseconds, whatever their zone;
an item spliced from the JSON fanout stores is the item encoded whole."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from libs.items import Item, encode_item, queue_item, rfc3339, stored_wire, with_pos

_ZONES = st.one_of(
    st.just(UTC),
    st.integers(min_value=-23 * 60, max_value=23 * 60).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    ),
)


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9998, 1, 1)), _ZONES)
def test_a_time_is_written_in_utc_with_six_fraction_digits(naive: datetime, zone: timezone) -> None:
    ts = naive.replace(tzinfo=zone)
    assert rfc3339(ts) == ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_whole_second_keeps_its_fraction() -> None:
    assert rfc3339(datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)) == "2026-11-23T10:00:00.000000Z"
    ts = datetime(2026, 11, 23, 10, 0, 0, 120, tzinfo=UTC)
    assert rfc3339(ts) == "2026-11-23T10:00:00.000120Z"


def test_another_zone_is_converted_to_utc() -> None:
    ts = datetime(2026, 11, 23, 12, 30, 0, 5, tzinfo=timezone(timedelta(hours=2, minutes=30)))
    assert rfc3339(ts) == "2026-11-23T10:00:00.000005Z"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    seq=st.integers(1, 2**62),
    pos=st.integers(1, 2**62),
    command=st.sampled_from(["PRIVMSG", "NOTICE", "TOPIC", "JOIN"]),
    sender=st.text(max_size=12),
    params=st.lists(st.text(max_size=8), max_size=3),
    body=st.lists(st.text(max_size=20), max_size=3),
    meta=st.dictionaries(st.text(max_size=6), _JSON, max_size=4),
    created_at=st.datetimes(min_value=datetime(2000, 1, 1), timezones=st.just(UTC)),
)
def test_an_item_spliced_from_its_stored_json_is_the_item_encoded(
    seq: int,
    pos: int,
    command: str,
    sender: str,
    params: list[str],
    body: list[str],
    meta: dict[str, Any],
    created_at: datetime,
) -> None:
    event_id = uuid.uuid4()
    wire = stored_wire(event_id, created_at, command, sender, "#c", params, body, meta)
    fields = {
        "pos": pos,
        "id": str(event_id),
        "ts": rfc3339(created_at),
        "command": command,
        "from_": sender,
        "to": "#c",
        "params": params,
        "body": body,
        "meta": meta,
    }
    assert with_pos(pos, wire) == encode_item(Item(**fields))
    whole = encode_item(Item(seq=seq, **fields))
    assert queue_item({"seq": seq, "pos": pos, "wire": wire}) == whole
    columns = {"seq": seq, "wire": None, "event_id": event_id, "created_at": created_at}
    columns |= {"command": command, "sender": sender, "to_name": "#c"}
    columns |= {"params": params, "body": body, "meta": meta, "pos": pos}
    assert queue_item(columns) == whole  # built from its columns: no JSON kept
