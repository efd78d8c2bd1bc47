"""ChatModel: which buffer each item lands in, and what it changes there."""

from __future__ import annotations

import itertools
from typing import Any

from services.chat.model import SERVER, ChatModel, mentions
from services.chat.render import formatted, line_text, nick_colour, plain

_ids = itertools.count(1)


def item(command: str, sender: str, to: str, *params: str, body: Any = None, pos: int = 0) -> Any:
    n = next(_ids)
    return {
        "seq": n,
        "pos": pos or n,
        "id": f"id{n}",
        "ts": "2026-11-23T10:00:00.000000Z",
        "command": command,
        "from": sender,
        "to": to,
        "params": list(params),
        "body": [] if body is None else body,
        "meta": {},
    }


def texts(model: ChatModel, name: str) -> list[str]:
    return [plain(line) for line in model.buffers[name].lines]


def joined(*others: str) -> ChatModel:
    model = ChatModel("alice")
    assert model.apply(item("JOIN", "alice", "#Room")) == ["#Room"]
    for nick in others:
        model.apply(item("JOIN", nick, "#Room"))
    return model


def test_channel_lines_and_unread_counts() -> None:
    model = joined("bob")
    model.apply(item("PRIVMSG", "bob", "#room", body=["hi", "two lines"]))
    model.apply(item("PRIVMSG", "bob", "#room", body=["\x01ACTION waves\x01"]))
    model.apply(item("NOTICE", "bob", "#room", body=["note"]))
    assert texts(model, "#room")[-4:] == [
        "<bob> hi",
        "<bob> two lines",
        "* bob waves",
        "-bob- note",
    ]
    room = model.buffers["#room"]
    assert (room.name, room.unread, room.mention) == ("#Room", 4, False)
    model.apply(item("PRIVMSG", "bob", "#room", body=["ALICE: look"]))
    assert room.mention and room.lines[-1].mention
    model.select("#room")
    assert (room.unread, room.mention) == (0, False)
    model.apply(item("PRIVMSG", "alice", "#room", body=["mine"]))
    assert room.unread == 0 and room.lines[-1].own


def test_dms_go_to_the_other_party_s_buffer_both_ways() -> None:
    model = ChatModel("alice")
    model.apply(item("PRIVMSG", "Bob", "alice", body=["psst"]))
    model.apply(item("PRIVMSG", "alice", "bob", body=["yes?"]))
    assert texts(model, "bob") == ["<Bob> psst", "<alice> yes?"]
    assert model.buffers["bob"].kind == "query" and model.buffers["bob"].mention
    assert model.buffers["bob"].unread == 1  # my own line is not news to me
    model.apply(item("NOTICE", "carol", "alice", body=["fyi"]))  # no buffer for carol: server
    model.apply(item("NOTICE", "chinwag.local", "alice", body=["from the server"]))
    assert "carol" not in model.buffers
    assert texts(model, SERVER)[-2:] == ["-carol- fyi", "-chinwag.local- from the server"]


def test_an_item_seen_twice_is_shown_once() -> None:
    model = joined()
    line = item("PRIVMSG", "bob", "#room", body=["once"])
    model.apply(line)
    model.apply(line)
    assert texts(model, "#room").count("<bob> once") == 1


def test_members_follow_join_part_kick_mode_nick_and_quit() -> None:
    model = joined("bob", "carol", "dave")
    room = model.buffers["#room"]
    model.apply(item("MODE", "alice", "#room", "+ov-n+l", "bob", "carol", "5"))
    assert [m.prefix + m.nick for m in room.sorted_members()] == ["@bob", "+carol", "alice", "dave"]
    assert room.modes == "+l"
    model.apply(item("KICK", "bob", "#room", "dave", body=["bye"]))
    model.apply(item("PART", "carol", "#room"))
    model.apply(item("NICK", "bob", "robert", "robert"))
    assert [m.prefix + m.nick for m in room.sorted_members()] == ["@robert", "alice"]
    model.apply(item("QUIT", "robert", "robert", body=["gone"]))
    assert list(room.members) == ["alice"]
    assert texts(model, "#room")[-4:] == [
        "← dave was kicked from #room by bob (bye)",
        "← carol has left #room",
        "bob is now known as robert",
        "← robert has quit (gone)",
    ]


def test_my_own_nick_change_renames_me_and_a_query_follows_its_peer() -> None:
    model = joined("bob")
    model.apply(item("PRIVMSG", "bob", "alice", body=["hi"]))
    model.select("bob")
    model.apply(item("NICK", "alice", "alice2", "alice2"))
    assert model.me == "alice2"
    model.apply(item("NICK", "bob", "bobby", "bobby"))
    assert "bob" not in model.buffers and model.current == "bobby"
    model.apply(item("PRIVMSG", "bobby", "alice2", body=["still here"]))
    assert texts(model, "bobby")[-1] == "<bobby> still here"


def test_being_kicked_or_parting_leaves_the_buffer_unjoined() -> None:
    model = joined("bob")
    model.apply(item("KICK", "bob", "#room", "alice"))
    room = model.buffers["#room"]
    assert not room.joined and room.members == {}
    assert model.apply(item("JOIN", "alice", "#room")) == ["#room"]
    model.close("#room")  # closed while joined: its PART must not bring it back
    model.apply(item("PART", "alice", "#room"))
    assert "#room" not in model.buffers


def test_topic_and_replies_about_a_channel_land_in_its_buffer() -> None:
    model = joined()
    room = model.buffers["#room"]
    model.apply(item("TOPIC", "bob", "#room", body=["new topic"]))
    assert room.topic == "new topic"
    reply = {"command": "353", "params": ["=", "#Room"], "body": ["@alice +bob carol"]}
    model.apply_reply(reply, show=False)
    model.apply_reply({"command": "366", "params": ["#Room"], "body": ["End"]}, show=False)
    assert [m.prefix + m.nick for m in room.sorted_members()] == ["@alice", "+bob", "carol"]
    model.apply_reply({"command": "324", "params": ["#room", "+nt"]})
    model.apply_reply({"command": "311", "params": ["bob", "bob", "h", "*"], "body": ["bob"]})
    assert room.modes == "+nt"
    assert texts(model, "#room")[-1] == "Modes of #room: +nt"
    assert texts(model, SERVER)[-1] == "bob is bob@h (bob)"
    model.apply_reply({"command": "306", "params": [], "body": ["away"]})  # said by AWAY
    assert texts(model, SERVER)[-1] == "bob is bob@h (bob)"


def test_history_goes_before_the_lines_shown_without_repeating_any() -> None:
    model = joined()
    live = item("PRIVMSG", "bob", "#room", body=["newest"], pos=100)
    model.apply(live)
    room = model.buffers["#room"]
    first = room.oldest_pos  # alice's JOIN
    assert first is not None and first < 97
    older = [item("PRIVMSG", "bob", "#room", body=[f"old {n}"], pos=n) for n in (97, 98)]
    page = {"messages": [*older, live], "has_more": True}
    generation = room.generation
    assert model.prepend_history("#room", page) == 2
    assert texts(model, "#room")[:2] == ["<bob> old 97", "<bob> old 98"]
    assert texts(model, "#room").count("<bob> newest") == 1
    assert room.oldest_pos == first and room.has_more and room.generation == generation + 1
    assert model.prepend_history("#room", {"messages": [], "has_more": False}) == 0
    assert not room.has_more


def test_errors_show_in_the_server_buffer_and_where_the_user_is() -> None:
    model = joined()
    model.select("#room")
    model.error("cannot send")
    assert texts(model, SERVER)[-1] == texts(model, "#room")[-1] == "cannot send"


def test_buffers_cycle_server_channels_then_private() -> None:
    model = joined()
    model.apply(item("PRIVMSG", "bob", "alice", body=["x"]))
    model.apply(item("JOIN", "alice", "#a"))
    assert [b.key for b in model.order()] == [SERVER, "#a", "#room", "bob"]
    assert model.cycle(1).key == "#a"
    assert model.cycle(-2).key == "bob"


def test_mentions_are_whole_nicks_folded() -> None:
    assert mentions("hey Alice!", "alice")
    assert mentions("ALICE: hi", "alice")
    assert mentions("hi [bob]", "[BOB]")
    assert not mentions("malice aforethought", "alice")
    assert not mentions("alice_ is someone else", "alice")


def test_rendering_keeps_text_as_text_and_styles_irc_codes() -> None:
    text = formatted("[bold]not markup[/bold] \x02bold\x02 \x034red\x03 \x07bell")
    assert text.plain == "[bold]not markup[/bold] bold red bell"
    assert any(span.style and "bold" in str(span.style) for span in text.spans)
    model = joined()
    model.apply(item("PRIVMSG", "bob", "#room", body=["hi"]))
    assert line_text(model.buffers["#room"].lines[-1]).plain.endswith("<bob> hi")
    assert nick_colour("Bob") == nick_colour("bob")
