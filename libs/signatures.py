"""Ed25519 message signatures: the canonical form a client signs, and checking it.

A session announces its public key with PUBKEY (``body: {"alg": "ed25519",
"key": <base64 of the 32-byte raw key>}``). A client signs a message's
canonical form and sends the signature in ``meta.sig`` (base64 of 64 bytes)
with ``meta.alg: "ed25519"``. The server stores and relays keys and
signatures unchanged; anyone can check them with ``verify_item``.

The canonical form is the RFC 8785 (JCS) serialisation of
``{"command", "to", "params", "body", "meta"}`` where ``to`` is case-folded
(rfc1459) and ``meta`` omits ``sig`` and ``alg``: all of it known to the
sender before the server answers, so a signature covers where the message was
sent and what it says, and a copy sent elsewhere does not verify.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from libs.irc import fold

ALG = "ed25519"
KEY_BYTES = 32
SIG_BYTES = 64
UNSIGNED_META = ("sig", "alg")


def canonical_form(
    command: str, to: str, params: list[str], body: Any, meta: dict[str, Any]
) -> bytes:
    """The bytes a signature covers (see the module docstring)."""
    signed_meta = {k: v for k, v in meta.items() if k not in UNSIGNED_META}
    return rfc8785.dumps(
        {
            "command": command.upper(),
            "to": fold(to),
            "params": params,
            "body": body,
            "meta": signed_meta,
        }
    )


def decode_b64(text: str, size: int) -> bytes | None:
    """Standard base64 of exactly ``size`` bytes, or None."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def public_key(text: str) -> Ed25519PublicKey | None:
    """An announced key (base64 of the raw 32 bytes), or None when it is not one."""
    raw = decode_b64(text, KEY_BYTES)
    if raw is None:
        return None
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return None


def encode_public_key(key: Ed25519PublicKey) -> str:
    """The form PUBKEY announces: base64 of the raw 32 bytes."""
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def sign(
    private_key: Ed25519PrivateKey,
    command: str,
    to: str,
    params: list[str],
    body: Any,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """``meta`` with ``sig`` and ``alg`` added: what a signing client sends."""
    signature = private_key.sign(canonical_form(command, to, params, body, meta))
    return {**meta, "sig": base64.b64encode(signature).decode(), "alg": ALG}


def verify(key: str, command: str, to: str, params: list[str], body: Any, meta: Any) -> bool:
    """Whether ``meta.sig`` is ``key``'s signature of this message's canonical form."""
    public = public_key(key)
    if public is None or not isinstance(meta, dict) or meta.get("alg", ALG) != ALG:
        return False
    sig = meta.get("sig")
    raw = decode_b64(sig, SIG_BYTES) if isinstance(sig, str) else None
    if raw is None:
        return False
    try:
        public.verify(raw, canonical_form(command, to, params, body, meta))
    except InvalidSignature:
        return False
    return True


def verify_item(item: dict[str, Any], key: str) -> bool:
    """Check a queue or history item (as JSON) against its sender's announced key."""
    return verify(
        key,
        str(item.get("command", "")),
        str(item.get("to", "")),
        list(item.get("params") or []),
        item.get("body"),
        item.get("meta") or {},
    )


def check_meta_signature(meta: dict[str, Any]) -> str | None:
    """What is wrong with a ``meta.sig``/``meta.alg`` a client sent, or None."""
    if "alg" in meta and meta["alg"] != ALG:
        return f"meta.alg must be {ALG!r}"
    if "sig" not in meta:
        return None
    sig = meta["sig"]
    if not isinstance(sig, str) or decode_b64(sig, SIG_BYTES) is None:
        return "meta.sig must be the base64 of a 64-byte Ed25519 signature"
    return None
