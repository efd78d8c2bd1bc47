"""Every IRC command and mode through the API: replies, errors, and what others receive."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from services.fanout import store as fanout_store
from tests.harness import ApiClient, System, close, numerics, people, refused, texts


def codes(answer: dict[str, Any]) -> list[str]:
    return [r["command"] for r in answer["replies"]]


async def test_a_channel_is_born_nt_with_its_creator_as_operator_and_dies_empty(
    system: System,
) -> None:
    alice, bob = await people(system, "alice", "bob")
    first = await alice.join("#Life")
    assert numerics(first)[-2:] == [
        ("353", ["=", "#Life"], ["@alice"]),
        ("366", ["#Life"], ["End of /NAMES list"]),
    ]
    second = await bob.join("#life")
    assert ("353", ["=", "#Life"], ["@alice bob"]) in numerics(second)
    mode = await bob.ok("MODE", to="#life")
    assert numerics(mode)[0] == ("324", ["#Life", "+nt"], [])
    assert codes(mode) == ["324", "329"]
    info = (await bob.http.get("/api/v1/channels/life")).json()
    assert (info["name"], info["modes"], info["members"], info["topic"]) == (
        "#Life",
        "+nt",
        2,
        None,
    )
    members = (await bob.http.get("/api/v1/channels/Life/members")).json()
    assert members == {"members": [{"nick": "alice", "prefix": "@"}, {"nick": "bob", "prefix": ""}]}
    await alice.part("#life")
    await bob.ok("PART", to="#LIFE", body=["bye now"])
    assert (await bob.http.get("/api/v1/channels/life")).status_code == 404
    assert (await bob.http.get("/api/v1/channels")).json() == {"channels": []}
    again = await bob.join("#life")  # reborn: bob creates it and is its operator
    assert ("353", ["=", "#life"], ["@bob"]) in numerics(again)
    await close(alice, bob)


async def test_topic_is_read_and_set_under_plus_t(system: System) -> None:
    alice, bob, eve = await people(system, "alice", "bob", "eve")
    await alice.join("#t")
    await bob.join("#t")
    assert numerics(await bob.ok("TOPIC", to="#t")) == [("331", ["#t"], ["No topic is set"])]
    await alice.ok("TOPIC", to="#t", body=["all about t"])
    await refused(bob, 403, "ERR_CHANOPRIVSNEEDED", "TOPIC", to="#t", body=["mine"])
    await refused(eve, 403, "ERR_NOTONCHANNEL", "TOPIC", to="#t", body=["outsider"])
    await refused(eve, 404, "ERR_NOSUCHCHANNEL", "TOPIC", to="#nope")
    read = numerics(await eve.ok("TOPIC", to="#t"))  # outsiders may read a public topic
    assert read[0] == ("332", ["#t"], ["all about t"])
    assert read[1][0] == "333" and read[1][1][:2] == ["#t", "alice"]
    await alice.ok("MODE", to="#t", params=["-t"])
    await bob.ok("TOPIC", to="#t", body=["bob's now"])
    for client in (alice, bob):
        items = await client.receive_until(lambda i: i["body"] == ["bob's now"])
        topics = [(i["from"], i["body"]) for i in items if i["command"] == "TOPIC"]
        assert topics == [("alice", ["all about t"]), ("bob", ["bob's now"])]
        assert [i["params"] for i in items if i["command"] == "MODE"] == [["-t"]]
    info = (await eve.http.get("/api/v1/channels/t")).json()
    assert (info["topic"], info["topic_set_by"]) == ("bob's now", "bob")
    assert info["topic_set_at"].endswith("Z")
    await close(alice, bob, eve)


async def test_modes_change_together_reach_every_member_once_and_are_checked(
    system: System,
) -> None:
    alice, bob, carol = await people(system, "alice", "bob", "carol")
    for client in (alice, bob, carol):
        await client.join("#m")
    changed = await alice.ok("MODE", to="#m", params=["+ov-n+l", "bob", "carol", "5"])
    assert changed["replies"] == []
    await refused(carol, 403, "ERR_CHANOPRIVSNEEDED", "MODE", to="#m", params=["+s"])
    await refused(alice, 400, "ERR_UNKNOWNMODE", "MODE", to="#m", params=["+z"])
    await refused(alice, 400, "ERR_NEEDMOREPARAMS", "MODE", to="#m", params=["+o"])
    await refused(alice, 404, "ERR_NOSUCHNICK", "MODE", to="#m", params=["+o", "ghost"])
    outsider = (await people(system, "dave"))[0]
    await refused(alice, 404, "ERR_USERNOTINCHANNEL", "MODE", to="#m", params=["+v", "dave"])
    await bob.ok("MODE", to="#m", params=["+n"])  # bob is an operator now
    for client in (alice, bob, carol):
        items = await client.receive_until(lambda i: i["params"] == ["+n"])
        modes = [(i["from"], i["params"]) for i in items if i["command"] == "MODE"]
        assert modes == [("alice", ["+ov-n+l", "bob", "carol", "5"]), ("bob", ["+n"])]
    assert numerics(await carol.ok("MODE", to="#m"))[0] == ("324", ["#m", "+lnt", "5"], [])
    members = (await carol.http.get("/api/v1/channels/m/members")).json()["members"]
    assert members == [
        {"nick": "alice", "prefix": "@"},
        {"nick": "bob", "prefix": "@"},
        {"nick": "carol", "prefix": "+"},
    ]
    # Own user modes: read, and the one a user may set (-o); others' are not ours.
    assert numerics(await carol.ok("MODE", to="carol")) == [("221", ["+"], [])]
    await refused(carol, 403, "ERR_USERSDONTMATCH", "MODE", to="alice")
    await refused(carol, 400, "ERR_UMODEUNKNOWNFLAG", "MODE", to="carol", params=["+x"])
    await refused(carol, 404, "ERR_NOSUCHNICK", "MODE", to="nobody")
    await close(alice, bob, carol, outsider)


async def test_moderated_and_outside_messages(system: System) -> None:
    alice, bob, carol, outsider = await people(system, "alice", "bob", "carol", "out")
    for client in (alice, bob, carol):
        await client.join("#mod")
    await refused(outsider, 403, "ERR_CANNOTSENDTOCHAN", "PRIVMSG", to="#mod", body=["hi"])
    await alice.ok("MODE", to="#mod", params=["+m-n+v", "bob"])
    await refused(carol, 403, "ERR_CANNOTSENDTOCHAN", "PRIVMSG", to="#mod", body=["shh"])
    await refused(outsider, 403, "ERR_CANNOTSENDTOCHAN", "PRIVMSG", to="#mod", body=["hi"])
    await bob.say("#mod", "voiced")
    await alice.say("#mod", "op")
    await alice.ok("MODE", to="#mod", params=["-m"])
    await outsider.say("#mod", "from outside (-n)")
    items = await carol.receive_until(lambda i: i["body"] == ["from outside (-n)"])
    assert texts(items) == ["voiced", "op", "from outside (-n)"]
    await close(alice, bob, carol, outsider)


async def test_key_and_limit_guard_the_door(system: System) -> None:
    alice, bob, carol = await people(system, "alice", "bob", "carol")
    await alice.join("#door")
    await alice.ok("MODE", to="#door", params=["+kl", "sesame", "2"])
    await refused(bob, 403, "ERR_BADCHANNELKEY", "JOIN", to="#door")
    await refused(bob, 403, "ERR_BADCHANNELKEY", "JOIN", to="#door", params=["wrong"])
    await bob.ok("JOIN", to="#door", params=["sesame"])
    await refused(carol, 403, "ERR_CHANNELISFULL", "JOIN", to="#door", params=["sesame"])
    key_hidden = numerics(await carol.ok("MODE", to="#door"))[0]
    assert key_hidden == ("324", ["#door", "+klnt", "*", "2"], [])
    await alice.ok("MODE", to="#door", params=["-lk"])
    await carol.join("#door")
    items = await alice.receive_until(lambda i: i["command"] == "JOIN" and i["from"] == "carol")
    assert [i["params"] for i in items if i["command"] == "MODE"] == [
        ["+kl", "sesame", "2"],
        ["-lk", "*"],
    ]
    await close(alice, bob, carol)


async def test_bans_keep_out_and_silence_until_lifted(system: System) -> None:
    alice, bob, carol = await people(system, "alice", "bob", "carol")
    await alice.join("#b")
    await carol.join("#b")
    await alice.ok("MODE", to="#b", params=["+b", "Bob"])
    await alice.ok("MODE", to="#b", params=["+b", "car*"])
    bans = numerics(await carol.ok("MODE", to="#b", params=["+b"]))
    assert [(c, p[:3]) for c, p, _ in bans] == [
        ("367", ["#b", "bob!*@*", "alice"]),
        ("367", ["#b", "car*!*@*", "alice"]),
        ("368", ["#b"]),
    ]
    await refused(bob, 403, "ERR_BANNEDFROMCHAN", "JOIN", to="#b")
    await refused(carol, 403, "ERR_CANNOTSENDTOCHAN", "PRIVMSG", to="#b", body=["x"])
    await alice.ok("MODE", to="#b", params=["+v", "carol"])
    await carol.say("#b", "voice outranks the ban")
    await alice.ok("MODE", to="#b", params=["-b", "bob"])
    await bob.join("#b")
    items = await alice.receive_until(lambda i: i["command"] == "JOIN" and i["from"] == "bob")
    assert texts(items) == ["voice outranks the ban"]
    await close(alice, bob, carol)


async def test_invite_lets_the_invitee_past_plus_i_once(system: System) -> None:
    alice, bob, carol = await people(system, "alice", "bob", "carol")
    await alice.join("#vip")
    await carol.join("#vip")
    await alice.ok("MODE", to="#vip", params=["+i"])
    await refused(bob, 403, "ERR_INVITEONLYCHAN", "JOIN", to="#vip")
    await refused(carol, 403, "ERR_CHANOPRIVSNEEDED", "INVITE", params=["bob", "#vip"])
    await refused(bob, 403, "ERR_NOTONCHANNEL", "INVITE", params=["bob", "#vip"])
    await refused(alice, 404, "ERR_NOSUCHNICK", "INVITE", params=["ghost", "#vip"])
    await refused(alice, 409, "ERR_USERONCHANNEL", "INVITE", params=["carol", "#vip"])
    await refused(alice, 400, "ERR_NEEDMOREPARAMS", "INVITE", params=["bob"])
    invited = await alice.ok("INVITE", params=["Bob", "#VIP"])
    assert numerics(invited) == [("341", ["bob", "#vip"], [])]
    got = await bob.receive(1)
    assert (got[0]["command"], got[0]["from"], got[0]["params"]) == (
        "INVITE",
        "alice",
        ["bob", "#vip"],
    )
    await bob.join("#vip")
    await bob.part("#vip")
    await refused(bob, 403, "ERR_INVITEONLYCHAN", "JOIN", to="#vip")  # used up
    await close(alice, bob, carol)


async def test_kick_is_for_operators_and_is_the_kicked_users_last_item(system: System) -> None:
    alice, bob, carol = await people(system, "alice", "bob", "carol")
    for client in (alice, bob, carol):
        await client.join("#k")
    await refused(bob, 403, "ERR_CHANOPRIVSNEEDED", "KICK", to="#k", params=["carol"])
    (eve,) = await people(system, "eve")
    await refused(alice, 404, "ERR_USERNOTINCHANNEL", "KICK", to="#k", params=["eve"])
    await refused(alice, 404, "ERR_NOSUCHNICK", "KICK", to="#k", params=["ghost"])
    await refused(alice, 400, "ERR_NEEDMOREPARAMS", "KICK", to="#k")
    await alice.ok("KICK", to="#k", params=["Bob"], body=["spamming"])
    await alice.say("#k", "after the kick")
    await carol.receive_until(lambda i: i["body"] == ["after the kick"])
    items = await bob.receive_until(lambda i: i["command"] == "KICK")
    kick = items[-1]
    assert (kick["from"], kick["to"], kick["params"], kick["body"]) == (
        "alice",
        "#k",
        ["bob"],
        ["spamming"],
    )
    await bob.nothing_more()
    await refused(bob, 403, "ERR_CANNOTSENDTOCHAN", "PRIVMSG", to="#k", body=["let me back"])
    await close(alice, bob, carol, eve)


async def test_nick_changes_reach_each_peer_once_and_free_the_old_nick(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice", password="pw-alice")
    alice_phone = await ApiClient.login(system.base_url, "alice", "pw-alice")
    bob, carol, loner = await people(system, "bob", "carol", "loner")
    for channel in ("#one", "#two"):
        await alice.join(channel)
        await bob.join(channel)
    await carol.join("#two")
    await refused(alice, 409, "ERR_NICKNAMEINUSE", "NICK", params=["BOB"])
    await refused(alice, 400, "ERR_ERRONEUSNICKNAME", "NICK", params=["9nine"])
    await refused(alice, 400, "ERR_NONICKNAMEGIVEN", "NICK")
    await alice.ok("NICK", params=["Alicia"])
    for client in (alice, alice_phone, bob, carol):
        items = await client.receive_until(lambda i: i["command"] == "NICK")
        nicks = [(i["from"], i["to"], i["params"]) for i in items if i["command"] == "NICK"]
        assert nicks == [("alice", "Alicia", ["Alicia"])]  # once, though bob shares two
        await client.nothing_more()
    await loner.nothing_more()
    await alice.say("#one", "new name")
    said = await bob.receive(1)
    assert said[0]["from"] == "Alicia"
    taken = await ApiClient.create(system.base_url, "alice")  # the old nick is free
    state = (await alice_phone.http.get("/api/v1/state")).json()
    assert state["nick"] == "Alicia"
    await close(alice, alice_phone, bob, carol, loner, taken)


async def test_away_is_set_cleared_and_answered_with_301(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice", password="pw-alice")
    phone = await ApiClient.login(system.base_url, "alice", "pw-alice")
    (bob,) = await people(system, "bob")
    assert codes(await alice.ok("AWAY", body=["at lunch"])) == ["306"]
    dm = await bob.say("alice", "are you there?")
    assert numerics(dm) == [("301", ["alice"], ["at lunch"])]
    notice = await bob.ok("NOTICE", to="alice", body=["no auto-reply to notices"])
    assert notice["replies"] == []
    whois = numerics(await bob.ok("WHOIS", params=["alice"]))
    assert ("301", ["alice"], ["at lunch"]) in whois
    user = (await bob.http.get("/api/v1/users/ALICE")).json()
    assert user["away"] == "at lunch"
    assert (await phone.http.get("/api/v1/state")).json()["away"] == "at lunch"
    assert numerics(await alice.ok("MODE", to="alice")) == [("221", ["+a"], [])]
    assert codes(await alice.ok("AWAY")) == ["305"]
    for client in (alice, phone):  # every device of alice learns of it
        items = await client.receive_until(lambda i: i["command"] == "AWAY" and not i["body"])
        away = [i["body"] for i in items if i["command"] == "AWAY"]
        assert away == [["at lunch"], []]
    assert (await bob.say("alice", "back?"))["replies"] == []
    await close(alice, phone, bob)


async def test_pass_registers_an_anonymous_session_once(system: System) -> None:
    (anon,) = await people(system, "anon")
    async with httpx.AsyncClient(base_url=system.base_url) as http:
        before = await http.post("/api/v1/login", json={"nick": "anon", "password": "s3cret!"})
        assert before.status_code == 401
        await anon.ok("PASS", params=["s3cret!"])
        await refused(anon, 409, "ERR_ALREADYREGISTRED", "PASS", params=["other"])
        await refused(anon, 400, "ERR_NEEDMOREPARAMS", "PASS")
    second = await ApiClient.login(system.base_url, "anon", "s3cret!")
    assert second.session_id == anon.session_id
    async with system.db() as conn:
        stored = await conn.fetchval(
            "SELECT password_hash FROM identity.sessions WHERE nick = 'anon'"
        )
    assert stored.startswith("$argon2id$")
    await close(anon, second)


async def test_quit_ends_every_client_and_is_announced_once(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice", password="pw-alice")
    phone = await ApiClient.login(system.base_url, "alice", "pw-alice")
    bob, carol = await people(system, "bob", "carol")
    for channel in ("#q1", "#q2"):
        await alice.join(channel)
        await bob.join(channel)
    await carol.join("#q2")
    await alice.ok("QUIT", body=["gone fishing"])
    for client, joins in ((bob, 3), (carol, 1)):
        # The channels' JOINs and the QUIT are different targets: no order is promised.
        items = await client.receive_until(lambda i: i["command"] == "QUIT")
        while sum(i["command"] == "JOIN" for i in items) < joins:
            items += await client.receive(1)
        quits = [(i["from"], i["body"]) for i in items if i["command"] == "QUIT"]
        assert quits == [("alice", ["gone fishing"])]
        await client.nothing_more()
    for client in (alice, phone):
        assert (await client.http.get("/api/v1/state")).status_code == 401
    members = (await bob.http.get("/api/v1/channels/q2/members")).json()["members"]
    assert [m["nick"] for m in members] == ["bob", "carol"]
    assert (await bob.http.get("/api/v1/users/alice")).status_code == 404
    reborn = await ApiClient.create(system.base_url, "alice")  # the nick is free
    await bob.say("#q1", "still here")
    assert texts(await bob.receive(1)) == ["still here"]
    await close(alice, phone, bob, carol, reborn)


async def test_informational_commands(system: System) -> None:
    alice, bob = await people(system, "alice", "bob")
    await alice.join("#open")
    await alice.ok("TOPIC", to="#open", body=["come in"])
    await bob.join("#secret")
    await bob.ok("MODE", to="#secret", params=["+s"])
    await alice.join("#other")

    assert numerics(await alice.ok("PING", params=["tok"])) == [
        ("PONG", ["chinwag.local", "tok"], [])
    ]
    listing = numerics(await alice.ok("LIST"))
    assert [n for n in listing if n[0] == "322"] == [
        ("322", ["#open", "1"], ["come in"]),
        ("322", ["#other", "1"], []),
    ]
    assert (listing[0][0], listing[-1][0]) == ("321", "323")
    assert [n[1][0] for n in numerics(await bob.ok("LIST", params=["#s*"])) if n[0] == "322"] == [
        "#secret"
    ]
    assert numerics(await alice.ok("NAMES", to="#secret")) == [
        ("366", ["#secret"], ["End of /NAMES list"])
    ]
    assert (await alice.http.get("/api/v1/channels/secret")).status_code == 404
    assert [c["name"] for c in (await alice.http.get("/api/v1/channels")).json()["channels"]] == [
        "#open",
        "#other",
    ]
    whois = numerics(await bob.ok("WHOIS", params=["Alice"]))
    assert [c for c, _, _ in whois] == ["311", "312", "319", "320", "317", "318"]
    assert whois[2] == ("319", ["alice"], ["@#open @#other"])
    assert whois[3] == ("320", ["alice"], ["is online"])
    assert numerics(await alice.ok("WHOIS", params=["bob"]))[2][0] == "320"  # #secret hidden
    await refused(alice, 404, "ERR_NOSUCHNICK", "WHOIS", params=["ghost"])
    who = numerics(await bob.ok("WHO", to="#open"))
    assert who[0][0] == "352" and who[0][1][0] == "#open" and who[0][1][4] == "alice"
    assert who[0][1][5] == "H@"
    assert who[-1] == ("315", ["#open"], ["End of /WHO list"])
    by_mask = numerics(await bob.ok("WHO", params=["ali*"]))
    assert [n[1][4] for n in by_mask if n[0] == "352"] == ["alice"]
    motd = numerics(await alice.ok("MOTD"))
    assert [c for c, _, _ in motd] == ["375", "372", "376"]
    assert motd[1][2] == ["- Welcome to chinwag."]
    lusers = numerics(await alice.ok("LUSERS"))
    assert lusers[0][2] == ["There are 2 users and 0 services on 1 servers"]
    assert ("254", ["3"], ["channels formed"]) in lusers

    async with system.db() as conn:
        await conn.execute("UPDATE identity.clients SET last_seen = now() - interval '1 hour'")
    user = (await alice.http.get("/api/v1/users/bob")).json()
    assert user["channels"] == [] and user["online"] is False and user["away"] is None
    offline = numerics(await alice.ok("WHOIS", params=["bob"]))
    assert ("320", ["bob"], ["has no client online"]) in offline
    await bob.poll()  # polling makes a client online
    user = (await alice.http.get("/api/v1/users/bob")).json()
    assert user["online"] is True and user["idle_seconds"] >= 0 and user["signon"].endswith("Z")
    server = (await alice.http.get("/api/v1/server")).json()
    assert (server["name"], server["users"], server["channels"]) == ("chinwag.local", 2, 3)
    async with httpx.AsyncClient(base_url=system.base_url) as http:
        health = (await http.get("/.well-known/healthcheck.json")).json()
        assert health == {"status": "ok", "users": 2, "clients": 2, "channels": 3}
    await close(alice, bob)


async def test_idle_and_clientless_sessions_expire(system: System) -> None:
    alice = await ApiClient.create(system.base_url, "alice", password="pw")
    phone = await ApiClient.login(system.base_url, "alice", "pw")
    bob, idle = await people(system, "bob", "idle")
    await alice.join("#x")
    await bob.join("#x")
    await idle.join("#x")
    await alice.http.post("/api/v1/logout")  # one of two clients: the session lives on
    await phone.say("#x", "still me")
    assert await system.expire_idle(idle, sweeps=2) == [1, 0]
    await phone.http.post("/api/v1/logout")  # the last client: the session ends at once
    # Two sessions' QUITs are two targets: no order between them is promised.
    items = await bob.receive_until(lambda i: i["command"] == "QUIT", deadline=20)
    while sum(i["command"] == "QUIT" for i in items) < 2:
        items += await bob.receive(1)
    quits = [(i["from"], i["body"]) for i in items if i["command"] == "QUIT"]
    assert sorted(quits) == [("alice", ["logged out"]), ("idle", ["expired"])]
    await bob.nothing_more()
    assert (await bob.http.get("/api/v1/users/idle")).status_code == 404
    assert (await bob.http.get("/api/v1/users/alice")).status_code == 404
    await close(alice, phone, bob, idle)


async def test_commands_are_rate_limited_per_client(system: System) -> None:
    url = await system.start_gateway("gateway-strict", command_rate=0.5, command_burst=3)
    alice = await ApiClient.create(url, "alice")
    statuses = [(await alice.command("PING", params=["x"])).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await alice.command("PING", params=["x"])
    assert limited.json()["error"]["code"] == "ERR_RATE_LIMITED"
    assert int(limited.headers["Retry-After"]) >= 1
    (other,) = await people(system, "other")  # another client has its own bucket
    assert (await other.command("PING", params=["x"])).status_code == 200
    await close(alice, other)


async def test_history_is_bounded_and_trimmed_only_once_acknowledged(system: System) -> None:
    await system.stop("history")
    await system.stop("fanout")
    small = system.settings.model_copy(update={"max_history": 5})
    system.start("history", small)
    system.start("fanout", small)
    alice, bob = await people(system, "alice", "bob")
    await alice.join("#r")
    await bob.join("#r")
    for n in range(12):
        await alice.say("#r", f"r{n}")
    await alice.receive_until(lambda i: i["body"] == ["r11"])
    page = (await alice.http.get("/api/v1/history", params={"target": "#r"})).json()
    assert texts(page["messages"]) == [f"r{n}" for n in range(7, 12)]
    assert page["has_more"] is False
    pool = await asyncpg.create_pool(system.settings.dsn(), min_size=1, max_size=1)
    try:
        await fanout_store.trim_acknowledged(pool)
        await fanout_store.trim_history(pool, keep=5)
        # Bob has acknowledged nothing: every item waits in his queue, so none goes.
        everything = await bob.receive_until(lambda i: i["body"] == ["r11"])
        assert texts(everything) == [f"r{n}" for n in range(12)]
        await bob.poll()  # acknowledges all
        await alice.poll()
        await fanout_store.trim_acknowledged(pool)
        await fanout_store.trim_history(pool, keep=5)
        remaining = await pool.fetch("SELECT pos FROM delivery.messages ORDER BY pos")
        assert [r["pos"] for r in remaining] == [10, 11, 12, 13, 14]
    finally:
        await pool.close()
    await close(alice, bob)
