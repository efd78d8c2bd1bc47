"""The terminal client driven headlessly with textual's pilot against a running chinwag."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from textual.pilot import Pilot

from services.chat.app import ChatApp
from services.chat.model import SERVER
from services.chat.render import plain
from services.chat.widgets import BufferLog, CommandInput
from tests.harness import ApiClient, System

SIZE = (110, 30)
DEADLINE = 10.0


@asynccontextmanager
async def running(
    system: System, nick: str, state_path: Path, **options: object
) -> AsyncIterator[tuple[ChatApp, Pilot[None]]]:
    app = ChatApp(system.base_url, nick, state_path=state_path, poll_timeout=5, **options)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await until(app, lambda: app.connection == "connected", "connected")
        yield app, pilot


async def until(app: ChatApp, condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition`` holds, re-checking each time the app processes something."""
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not condition():
        app.activity.clear()
        left = end - loop.time()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {what}")
        try:
            await asyncio.wait_for(app.activity.wait(), left)
        except TimeoutError:
            continue


async def type_line(pilot: Pilot[None], line: str) -> None:
    pilot.app.query_one(CommandInput).value = line
    await pilot.press("enter")


def said(app: ChatApp, buffer: str) -> list[str]:
    """The chat lines of a buffer as plain text."""
    return [plain(line) for line in app.lines_of(buffer) if line.kind in ("msg", "action")]


def keep(name: str, text: str, fallback: Path) -> None:
    """Save a test artefact under $CHINWAG_ARTEFACTS, else in the test's own directory."""
    directory = Path(os.environ.get("CHINWAG_ARTEFACTS") or fallback)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")


def shown(app: ChatApp) -> str:
    """What the log widget holds right now, as text."""
    return "\n".join(strip.text for strip in app.query_one(BufferLog).lines)


async def test_join_send_and_receive_in_a_channel(system: System, tmp_path: Path) -> None:
    bob = await ApiClient.create(system.base_url, "bob")
    async with running(system, "alice", tmp_path / "alice.json") as (app, pilot):
        await type_line(pilot, "/join #room")
        await until(app, lambda: app.model.current == "#room", "the #room buffer")
        await bob.join("#room")
        await until(app, lambda: "bob" in app.model.active.members, "bob in the member list")
        field = app.query_one(CommandInput)
        field.value, field.cursor_position = "bo", 2
        await pilot.press("tab")
        assert field.value == "bob: "
        await type_line(pilot, "hello from the terminal")
        await type_line(pilot, "/me waves")
        await until(app, lambda: len(said(app, "#room")) == 2, "alice's two lines")
        await bob.say("#room", "hi alice")
        expected = ["<alice> hello from the terminal", "* alice waves", "<bob> hi alice"]
        await until(app, lambda: said(app, "#room") == expected, "three lines in order")
        assert "<bob> hi alice" in shown(app)
        assert [m.prefix + m.nick for m in app.model.active.sorted_members()] == ["@alice", "bob"]

        await type_line(pilot, "/topic the terminal room")
        await until(app, lambda: app.model.active.topic == "the terminal room", "the topic")
        assert "the terminal room" in str(app.query_one("#topic").render())

    items = await bob.receive_until(lambda i: i["command"] == "TOPIC")
    lines = [i["body"][0] for i in items if i["command"] == "PRIVMSG"]
    assert lines == ["hello from the terminal", "\x01ACTION waves\x01", "hi alice"]
    await bob.close()


async def test_a_dm_opens_a_private_buffer(system: System, tmp_path: Path) -> None:
    bob = await ApiClient.create(system.base_url, "bob")
    async with running(system, "alice", tmp_path / "alice.json") as (app, pilot):
        await bob.say("alice", "psst")
        await until(app, lambda: "bob" in app.model.buffers, "a buffer for bob")
        buffer = app.model.buffers["bob"]
        assert (buffer.kind, buffer.unread, buffer.mention) == ("query", 1, True)
        assert said(app, "bob") == ["<bob> psst"]

        await pilot.press("ctrl+n")  # server → bob, the only other buffer
        assert app.model.current == "bob" and buffer.unread == 0
        await type_line(pilot, "hi there")
        await until(app, lambda: said(app, "bob") == ["<bob> psst", "<alice> hi there"], "reply")
        assert "<alice> hi there" in shown(app)
        assert (await bob.receive_until(lambda i: i["body"] == ["hi there"]))[-1]["to"] == "bob"

        await type_line(pilot, "/whois bob")
        await until(
            app, lambda: any("End of /WHOIS" in ln.text for ln in app.lines_of(SERVER)), "whois"
        )
    await bob.close()


async def test_a_restart_resumes_the_queue_with_nothing_missing_or_repeated(
    system: System, tmp_path: Path
) -> None:
    path = tmp_path / "state.json"
    bob = await ApiClient.create(system.base_url, "bob")
    await bob.join("#resume")
    async with running(system, "alice", path) as (app, pilot):
        await type_line(pilot, "/join #resume")
        await until(app, lambda: app.model.current == "#resume", "#resume joined")
        await bob.say("#resume", "before")
        await until(app, lambda: said(app, "#resume") == ["<bob> before"], "the first line")
        await type_line(pilot, "/query bob")
        await pilot.press("ctrl+q")  # leave the client; the session stays
        assert app.return_code == 0
    saved = json.loads(path.read_text())
    assert saved["queries"] == ["bob"]
    assert path.stat().st_mode & 0o777 == 0o600

    for n in range(3):
        await bob.say("#resume", f"missed {n}")  # while no client of alice's is running
    await bob.say("alice", "missed DM")

    async with running(system, "alice", path) as (app, pilot):
        missed = ["<bob> missed 0", "<bob> missed 1", "<bob> missed 2"]
        # Order is per target: the DM may be shown before or after the channel's lines.
        await until(
            app,
            lambda: said(app, "bob") == ["<bob> missed DM"] and said(app, "#resume") == missed,
            "the missed DM and channel lines",
        )
        assert app.model.buffers["#resume"].joined
        assert app.model.current == "#resume"  # a resumed client opens on its first channel
        await bob.say("#resume", "after")
        await until(app, lambda: said(app, "#resume") == [*missed, "<bob> after"], "a new line")

        again = json.loads(path.read_text())
        assert (again["token"], again["client_id"]) == (saved["token"], saved["client_id"])
        assert again["last_seq"] > saved["last_seq"]

        # History pages back from the oldest line shown: the line before the restart.
        await pilot.press("pageup")
        await until(app, lambda: "<bob> before" in said(app, "#resume"), "older lines")
        assert said(app, "#resume") == ["<bob> before", *missed, "<bob> after"]
        assert "<bob> before" in shown(app)
    await bob.close()


async def test_the_main_view_renders_and_is_saved_as_a_screenshot(
    system: System, tmp_path: Path
) -> None:
    """Topic, buffers with unread counts, members with @ and +, times and nick colours.

    The SVG is a test artefact; CHINWAG_ARTEFACTS names a directory to keep it in.
    """
    url = system.base_url
    bob, carol = await ApiClient.create(url, "bob"), await ApiClient.create(url, "carol")
    async with running(system, "alice", tmp_path / "alice.json") as (app, pilot):
        room = app.model.buffer("#chinwag")

        def members() -> list[str]:
            return [m.prefix + m.nick for m in room.sorted_members()]

        await type_line(pilot, "/join #chinwag")
        await until(app, lambda: app.model.current == "#chinwag", "#chinwag")
        await type_line(pilot, "/topic durable queues, plain HTTP, no lost lines")
        await until(app, lambda: room.topic is not None, "the topic")
        for person in (bob, carol):
            await person.join("#chinwag")
        await type_line(pilot, "/mode +v bob")
        await until(app, lambda: members() == ["@alice", "+bob", "carol"], "bob voiced")
        await bob.say("#chinwag", "morning! is the resume thing merged?")
        await until(app, lambda: len(said(app, "#chinwag")) == 1, "bob's line")
        await type_line(pilot, "yes: restart the client and it picks up from the last seq")
        await until(app, lambda: len(said(app, "#chinwag")) == 2, "alice's line")
        await carol.say("#chinwag", "\x01ACTION restarts her laptop\x01")
        await carol.say("#chinwag", "nothing missing, nothing twice \x02nice\x02")
        await bob.join("#ops")
        await bob.ok("INVITE", params=["alice", "#ops"])
        await carol.say("alice", "lunch at 1?")
        await until(app, lambda: "carol" in app.model.buffers, "carol's DM")
        await until(app, lambda: len(said(app, "#chinwag")) == 4, "four lines")
        await pilot.pause()
        svg = app.export_screenshot(title="chinwag chat")
    keep("terminal-client.svg", svg, tmp_path)
    await bob.close()
    await carol.close()
    text = re.sub(r"<[^>]+>", "", svg).replace("&#160;", " ")
    for expected in ("#chinwag", "durable queues", "alice", "+bob", "carol (1)", "restarts"):
        assert expected in text, expected


async def test_reactions_replies_edits_deletes_typing_and_unread(
    system: System, tmp_path: Path
) -> None:
    bob = await ApiClient.create(system.base_url, "bob")
    async with running(system, "alice", tmp_path / "a.json", password="pw-alice") as (app, pilot):
        await type_line(pilot, "/join #room")
        await until(app, lambda: app.model.current == "#room", "#room")
        await bob.join("#room")
        hello = await bob.say("#room", "hello")
        await until(app, lambda: said(app, "#room") == ["<bob> hello"], "bob's line")

        await type_line(pilot, "/react 🎉")
        await bob.ok("REACT", to="#room", params=[hello["id"], "👍"])
        await until(app, lambda: said(app, "#room") == ["<bob> hello 🎉1 👍1"], "reactions")
        got = await bob.receive_until(lambda i: i["command"] == "REACT" and i["from"] == "alice")
        assert next(i for i in got if i["from"] == "alice")["params"] == [hello["id"], "🎉"]

        await type_line(pilot, "/reply hi bob")
        reply = (await bob.receive_until(lambda i: i["body"] == ["hi bob"]))[-1]
        assert reply["meta"] == {"reply_to": hello["id"]}
        await until(
            app, lambda: said(app, "#room")[-1] == "↪ bob: hello <alice> hi bob", "the quote"
        )
        await type_line(pilot, "/edit hi bob!")
        edit = (await bob.receive_until(lambda i: i["command"] == "EDIT"))[-1]
        assert (edit["params"], edit["body"]) == ([reply["id"]], ["hi bob!"])
        await bob.ok("EDIT", to="#room", params=[hello["id"]], body=["hello there"])
        await until(
            app,
            lambda: (
                said(app, "#room")
                == ["<bob> hello there (edited) 🎉1 👍1", "↪ bob: hello <alice> hi bob! (edited)"]
            ),
            "both edits",
        )
        await bob.ok("DELETE", to="#room", params=[hello["id"]])
        await until(
            app, lambda: said(app, "#room")[0] == "<bob> (message deleted)", "the tombstone"
        )

        await bob.ok("TYPING", to="#room")
        await until(
            app, lambda: "bob is typing…" in str(app.query_one("#status").render()), "typing"
        )

        # Read on another device: the terminal's unread count follows.
        await pilot.press("ctrl+p")
        assert app.model.current == SERVER
        phone = await ApiClient.login(system.base_url, "alice", "pw-alice")
        last = None
        for n in range(2):
            last = await bob.say("#room", f"news {n}")
        await until(app, lambda: app.model.buffers["#room"].unread == 2, "two unread")
        got = await phone.receive_until(lambda i: i["id"] == last["id"])
        await phone.ok("MARKREAD", to="#room", params=[str(got[-1]["pos"])])
        await until(app, lambda: app.model.buffers["#room"].unread == 0, "read on the phone")
        await phone.close()
    await bob.close()
