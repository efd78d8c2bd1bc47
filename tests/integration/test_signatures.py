"""PUBKEY announces a key; signed messages are stored and relayed as signed; libs checks them."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from libs.signatures import encode_public_key, sign, verify_item
from tests.harness import ApiClient, System


async def test_keys_and_signatures_are_relayed_and_verify(system: System) -> None:
    alice, bob, mallory = [
        await ApiClient.create(system.base_url, n) for n in ("alice", "bob", "mallory")
    ]
    for who in (alice, bob, mallory):
        await who.join("#signed")
    await bob.receive_until(lambda i: i["command"] == "JOIN" and i["from"] == "mallory")
    private = Ed25519PrivateKey.generate()
    key = encode_public_key(private.public_key())

    await alice.ok("PUBKEY", body={"alg": "ed25519", "key": key})
    announced = await bob.receive_until(lambda i: i["command"] == "PUBKEY")
    assert announced[-1]["from"] == "alice"
    assert announced[-1]["body"] == {"alg": "ed25519", "key": key}
    fetched = (await bob.http.get("/api/v1/users/ALICE/key")).json()
    assert fetched == {"nick": "alice", "alg": "ed25519", "key": key}
    assert (await bob.http.get("/api/v1/users/bob/key")).status_code == 404

    body = ["I approve release 1.2"]
    meta = sign(private, "PRIVMSG", "#signed", [], body, {"nonce": "7"})
    # Signed for "#signed", sent as "#SIGNED": the canonical form folds the name.
    sent = await alice.ok("PRIVMSG", to="#SIGNED", body=body, meta=meta)
    got = await bob.receive_until(lambda i: i["id"] == sent["id"])
    item = got[-1]
    assert item["meta"] == meta
    assert verify_item(item, fetched["key"])
    history = await bob.http.get("/api/v1/history", params={"target": "#signed"})
    stored = next(i for i in history.json()["messages"] if i["id"] == sent["id"])
    assert verify_item(stored, key)

    # Replayed by someone else, or altered, it does not verify.
    mallory_key = encode_public_key(Ed25519PrivateKey.generate().public_key())
    await mallory.ok("PUBKEY", body={"alg": "ed25519", "key": mallory_key})
    copied = await mallory.ok("PRIVMSG", to="#signed", body=body, meta=meta)
    copy = (await bob.receive_until(lambda i: i["id"] == copied["id"]))[-1]
    assert not verify_item(copy, mallory_key)
    assert not verify_item({**item, "body": ["I approve release 6.6"]}, key)
    assert not verify_item({**item, "to": "#other"}, key)

    for bad in (
        {"alg": "rsa", "key": key},
        {"alg": "ed25519", "key": "c2hvcnQ="},
        {"alg": "ed25519"},
        ["not", "an", "object"],
    ):
        response = await alice.command("PUBKEY", body=bad)
        assert response.status_code == 400, response.text
    for bad_meta in ({"sig": "nope"}, {"sig": meta["sig"], "alg": "rsa"}, {"sig": 5}):
        response = await alice.command("PRIVMSG", to="#signed", body=body, meta=bad_meta)
        assert response.status_code == 400, response.text
    for who in (alice, bob, mallory):
        await who.close()
