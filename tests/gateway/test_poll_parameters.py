"""The long-poll's fast path reads its query as the documented route does."""

from __future__ import annotations

from urllib.parse import parse_qsl

from hypothesis import given
from hypothesis import strategies as st

from libs.errors import ChatError
from services.gateway import polls

_parts = st.lists(
    st.tuples(
        st.sampled_from(["after", "timeout", "limit", "x", ""]),
        st.sampled_from(["", "=", "=0", "=7", "=-1", "=2.5", "=1e3", "=abc", "=99999999999"]),
    ),
    max_size=5,
)


def _read(query: bytes) -> object:
    try:
        return polls._parameters(query)
    except ChatError as error:
        return error.wire()


@given(_parts)
def test_a_plain_query_reads_as_an_unquoted_one(parts: list[tuple[str, str]]) -> None:
    plain = "&".join(name + value for name, value in parts)
    # The same query with its digits percent-encoded takes parse_qsl's path.
    quoted = "".join(f"%{ord(c):02X}" if c.isdigit() else c for c in plain)
    assert dict(parse_qsl(quoted, keep_blank_values=True)) == dict(
        parse_qsl(plain, keep_blank_values=True)
    )
    assert _read(plain.encode()) == _read(quoted.encode())


def test_the_usual_query() -> None:
    assert polls._parameters(b"after=12&timeout=25") == (12, 25.0, 100)
    assert polls._parameters(b"") == (0, 15.0, 100)
