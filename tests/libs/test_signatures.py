from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from libs.signatures import (
    canonical_form,
    check_meta_signature,
    encode_public_key,
    public_key,
    sign,
    verify,
    verify_item,
)


def test_the_canonical_form_is_jcs_with_the_name_folded_and_the_signature_left_out() -> None:
    form = canonical_form("privmsg", "#Chan[1]", [], ["é", "b"], {"z": 1, "a": 2, "sig": "s"})
    assert (
        form
        == (
            '{"body":["é","b"],"command":"PRIVMSG","meta":{"a":2,"z":1},'
            '"params":[],"to":"#chan{1}"}'
        ).encode()
    )


def test_a_signature_verifies_only_for_its_key_and_its_message() -> None:
    private = Ed25519PrivateKey.generate()
    key = encode_public_key(private.public_key())
    meta = sign(private, "PRIVMSG", "#a", [], ["hi"], {"reply_to": "x"})
    item = {"command": "PRIVMSG", "to": "#A", "params": [], "body": ["hi"], "meta": meta}
    assert verify_item(item, key)
    other = encode_public_key(Ed25519PrivateKey.generate().public_key())
    assert not verify_item(item, other)
    assert not verify_item({**item, "body": ["ho"]}, key)
    assert not verify_item({**item, "meta": {**meta, "reply_to": "y"}}, key)
    assert not verify_item({**item, "command": "NOTICE"}, key)
    assert not verify_item({**item, "meta": {**meta, "alg": "rsa"}}, key)
    assert not verify(key, "PRIVMSG", "#a", [], ["hi"], {"sig": "%%%"})
    assert not verify("not a key", "PRIVMSG", "#a", [], ["hi"], meta)


def test_keys_and_signatures_are_checked_for_shape() -> None:
    assert public_key(base64.b64encode(b"x" * 31).decode()) is None
    assert public_key("***") is None
    assert check_meta_signature({}) is None
    assert check_meta_signature({"sig": base64.b64encode(b"s" * 64).decode()}) is None
    assert check_meta_signature({"sig": base64.b64encode(b"s" * 63).decode()}) is not None
    assert check_meta_signature({"sig": 1}) is not None
    assert check_meta_signature({"alg": "ed448"}) is not None
