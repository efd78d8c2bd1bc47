"""A realistic afternoon on a channel, checked item by item in every client's queue.

Four sessions, one of them (alice) with three clients. After each step every
client receives exactly the items that step should give it, in order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.harness import ApiClient, System
from tests.integration.test_irc import codes, refused

Seen = tuple[str, str, str, list[str], list[str]]  # command, from, to, params, body


def seen(item: dict[str, Any]) -> Seen:
    return (item["command"], item["from"], item["to"], item["params"], item["body"])


async def test_an_afternoon_on_a_channel(system: System) -> None:
    url = system.base_url
    laptop = await ApiClient.create(url, "alice", password="earl-grey")
    phone = await ApiClient.login(url, "alice", "earl-grey")
    tablet = await ApiClient.login(url, "alice", "earl-grey")
    bob = await ApiClient.create(url, "bob")
    carol = await ApiClient.create(url, "carol")
    dave = await ApiClient.create(url, "dave")
    alice = [laptop, phone, tablet]
    everyone = [*alice, bob, carol, dave]

    async def step(
        action: Callable[[], Awaitable[Any]], *deliveries: tuple[list[ApiClient], Seen]
    ) -> Any:
        result = await action()
        expected: dict[str, list[Seen]] = {c.client_id: [] for c in everyone}
        for clients, item in deliveries:
            for client in clients:
                expected[client.client_id].append(item)
        for client in everyone:
            want = expected[client.client_id]
            got = [seen(i) for i in await client.receive(len(want))] if want else []
            assert got == want, (client.nick, client.client_id[:8])
        return result

    await step(
        lambda: laptop.join("#tea"),
        (alice, ("JOIN", "alice", "#tea", [], [])),
    )
    await step(
        lambda: bob.join("#Tea"),
        ([*alice, bob], ("JOIN", "bob", "#tea", [], [])),
    )
    await step(
        lambda: phone.ok("TOPIC", to="#tea", body=["afternoon tea"]),
        ([*alice, bob], ("TOPIC", "alice", "#tea", [], ["afternoon tea"])),
    )
    joined = await step(
        lambda: carol.join("#tea"),
        ([*alice, bob, carol], ("JOIN", "carol", "#tea", [], [])),
    )
    assert codes(joined) == ["332", "333", "353", "366"]
    members = [*alice, bob, carol]
    await step(
        lambda: tablet.ok("MODE", to="#tea", params=["+i"]),
        (members, ("MODE", "alice", "#tea", ["+i"], [])),
    )
    await refused(dave, 403, "ERR_INVITEONLYCHAN", "JOIN", to="#tea")
    await refused(bob, 403, "ERR_CHANOPRIVSNEEDED", "INVITE", params=["dave", "#tea"])
    await step(
        lambda: laptop.ok("INVITE", params=["dave", "#tea"]),
        ([dave], ("INVITE", "alice", "dave", ["dave", "#tea"], [])),
    )
    members.append(dave)
    await step(
        lambda: dave.join("#tea"),
        (members, ("JOIN", "dave", "#tea", [], [])),
    )
    await step(
        lambda: bob.say("#tea", "scones?"),
        (members, ("PRIVMSG", "bob", "#tea", [], ["scones?"])),
    )
    await step(
        lambda: dave.say("#tea", "spam spam spam"),
        (members, ("PRIVMSG", "dave", "#tea", [], ["spam spam spam"])),
    )
    await step(
        lambda: laptop.ok("KICK", to="#tea", params=["dave"], body=["no spam"]),
        (members, ("KICK", "alice", "#tea", ["dave"], ["no spam"])),
    )
    members.remove(dave)
    await step(
        lambda: laptop.ok("MODE", to="#tea", params=["+b", "dave"]),
        (members, ("MODE", "alice", "#tea", ["+b", "dave!*@*"], [])),
    )
    await refused(dave, 403, "ERR_BANNEDFROMCHAN", "JOIN", to="#tea")
    await refused(dave, 403, "ERR_CANNOTSENDTOCHAN", "PRIVMSG", to="#tea", body=["let me in"])
    await step(
        lambda: carol.ok("NICK", params=["Caroline"]),
        (members, ("NICK", "carol", "Caroline", ["Caroline"], [])),
    )
    away = await step(
        lambda: phone.ok("AWAY", body=["brb, kettle"]),
        (alice, ("AWAY", "alice", "alice", [], ["brb, kettle"])),
    )
    assert codes(away) == ["306"]
    dm = await step(
        lambda: bob.say("alice", "you there?"),
        ([*alice, bob], ("PRIVMSG", "bob", "alice", [], ["you there?"])),
    )
    assert dm["replies"][0]["command"] == "301"
    await step(
        lambda: tablet.ok("AWAY"),
        (alice, ("AWAY", "alice", "alice", [], [])),
    )
    await step(
        lambda: laptop.say("bob", "back, with tea"),
        ([*alice, bob], ("PRIVMSG", "alice", "bob", [], ["back, with tea"])),
    )
    await step(
        lambda: laptop.ok("MODE", to="#tea", params=["-b", "dave"]),
        (members, ("MODE", "alice", "#tea", ["-b", "dave!*@*"], [])),
    )
    await step(
        lambda: laptop.ok("INVITE", params=["dave", "#tea"]),
        ([dave], ("INVITE", "alice", "dave", ["dave", "#tea"], [])),
    )
    members.append(dave)
    await step(
        lambda: dave.join("#tea"),
        (members, ("JOIN", "dave", "#tea", [], [])),
    )
    members.remove(bob)
    await step(
        lambda: bob.ok("QUIT", body=["tea's over"]),
        (members, ("QUIT", "bob", "bob", [], ["tea's over"])),
    )
    await step(
        lambda: dave.ok("PART", to="#tea", body=["thanks"]),
        (members, ("PART", "dave", "#tea", [], ["thanks"])),
    )
    members.remove(dave)
    names = await carol.ok("NAMES", to="#tea")
    assert names["replies"][0]["body"] == ["@alice Caroline"]
    for client in everyone:
        if client is not bob:
            await client.nothing_more()
        await client.close()
