"""Properties of the MODE parser over any params a client can send."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from libs.errors import ChatError
from services.presence.modes import (
    KEY,
    LIMIT,
    LIST,
    MAX_LIMIT,
    MAX_MASK,
    MAX_PARAM_MODES,
    format_changes,
    parse,
)

modestrings = st.text(alphabet="+-imnstovbklxq", max_size=10)
args = st.lists(
    st.one_of(
        st.text(max_size=12),
        st.integers(min_value=-5, max_value=2**40).map(str),
        st.just("*" * (MAX_MASK + 1)),
        st.sampled_from(["²", "٣", " ", "a,b", ""]),
    ),
    max_size=8,
)
params = st.one_of(st.builds(lambda m, a: [m, *a], modestrings, args), st.lists(st.text()))


@given(params)
@example(["+l", "99999999999999"])
@example(["+l", "²"])
@example(["+k", "a key"])
@example(["+b", "*" * (MAX_MASK + 1)])
def test_mode_params_parse_into_checked_changes_or_a_400(params: list[str]) -> None:
    try:
        changes = parse(params)
    except ChatError as refused:
        assert refused.status == 400
        return
    assert sum(c.param is not None for c in changes) <= MAX_PARAM_MODES
    for change in changes:
        if change.adding and change.letter == LIMIT:
            assert change.param is not None and change.param.isascii()
            assert 1 <= int(change.param) <= MAX_LIMIT
        if change.adding and change.letter == KEY:
            assert change.param and not {" ", ","} & set(change.param)
        if change.letter in LIST and change.param is not None:
            assert len(change.param) <= MAX_MASK
    if all(c.param is not None for c in changes if c.letter in LIST + KEY):
        assert parse(format_changes(changes)) == changes
