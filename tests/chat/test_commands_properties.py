"""Properties of the terminal client's parser: whatever is typed becomes a local action
or a command the server parses (the server's own refusals, such as a bad channel name,
are shown to the user as they come)."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from services.chat.commands import ALIASES, HELP, parse_input
from services.gateway.models import COMMAND_MODELS, CommandIn

API_COMMANDS = {m.model_json_schema()["properties"]["command"]["const"] for m in COMMAND_MODELS}
LOCAL = {"query", "help", "close", "error", "none"}

printable = st.characters(blacklist_categories=("Cc", "Cs"))
names = st.sampled_from(sorted({*HELP, *ALIASES}))
words = st.text(alphabet=st.sampled_from("ab#@+-o ,:é\u3000"), max_size=12)
typed = st.one_of(
    st.text(alphabet=printable, max_size=40),
    st.builds(lambda n, rest: f"/{n} {rest}", names, words),
    st.builds(lambda n: f"/{n}", names),
)
buffers = st.one_of(st.none(), st.sampled_from(["#room", "bob", "#a,b"]))


@given(typed, buffers)
@example("/join", "#room")
@example("/msg bob", None)
@example("/topic -delete", "#room")
@example("/mode +o", "#room")
def test_typed_lines_become_local_actions_or_commands_the_server_parses(
    line: str, current: str | None
) -> None:
    parsed = parse_input(line, current)
    if "local" in parsed:
        assert parsed["local"] in LOCAL
        return
    command = CommandIn.model_validate(parsed)
    assert command.command in API_COMMANDS
    if isinstance(command.body, list):
        assert all("\n" not in text and "\r" not in text for text in command.body)
