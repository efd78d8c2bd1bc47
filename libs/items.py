"""What clients receive: the queue and history item, and the wake-up between services."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from libs.events import Body

_time_encoder = msgspec.json.Encoder()


def rfc3339(ts: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. ``2026-11-23T10:00:00.123456Z``.

    Made once per item of every page: msgspec writes a UTC time in this form, but
    for leaving the fraction out when it is zero, in a tenth of ``strftime``'s time.
    """
    if ts.tzinfo is not UTC:
        ts = ts.astimezone(UTC)  # a naive time is local, as ``astimezone`` takes it
    if ts.microsecond == 0:
        return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return _time_encoder.encode(ts)[1:-1].decode()


class Reaction(msgspec.Struct):
    """One emoji on a message: how many reacted with it, and who (oldest first)."""

    emoji: str
    count: int
    nicks: list[str]


class Tombstone(msgspec.Struct):
    """What remains of a deleted message: who deleted it, and when."""

    by: str
    ts: str


class Item(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One queue or history item. ``seq`` is set only in a client's queue.

    History items that are chat lines also carry what happened to them since:
    ``reactions``, ``reply_count``, ``edited`` (when last), ``deleted`` and
    ``pinned``; each is left out while it has nothing to say.
    """

    seq: int | None = None
    pos: int
    id: str
    ts: str
    command: str
    from_: str = msgspec.field(name="from")
    to: str
    params: list[str]
    body: Body
    meta: dict[str, Any]
    reactions: list[Reaction] = []
    reply_count: int = 0
    edited: str | None = None
    deleted: Tombstone | None = None
    pinned: bool = False


# An ``Item`` as fanout stores it (``stored_wire``): the fields every item has but
# its position, in the same order, so that ``seq`` and ``pos`` splice in before them.
_Stored = msgspec.defstruct(
    "_Stored",
    [
        (f.name, f.type, msgspec.field(name=f.encode_name))
        for f in msgspec.structs.fields(Item)
        if f.required and f.name != "pos"
    ],
)

# The columns every item query selects, in this order (``m`` is delivery.messages).
ITEM_COLUMNS = (
    "m.pos, m.event_id, m.created_at, m.command, m.sender, m.to_name, m.params, m.body, m.meta"
)

# What a queue read selects (``q`` is delivery.client_queues): the item as fanout
# encoded it, and its columns only where there is none (one edited or deleted since).
QUEUE_COLUMNS = "q.seq, m.pos, m.wire, " + ", ".join(
    f"CASE WHEN m.wire IS NULL THEN m.{column} END AS {column}"
    for column in ITEM_COLUMNS.replace("m.", "").split(", ")[1:]
)


def stored_wire(
    event_id: uuid.UUID,
    created_at: datetime,
    command: str,
    sender: str,
    to_name: str,
    params: list[str],
    body: Body,
    meta: dict[str, Any],
) -> bytes:
    """The item's JSON without ``seq`` and ``pos`` (``delivery.messages.wire``): a
    queue read splices those in (``queue_item``) instead of building the item."""
    ts = rfc3339(created_at)
    return _wire_encoder.encode(
        _Stored(str(event_id), ts, command, sender, to_name, params, body, meta)
    )


def with_pos(pos: int, wire: bytes) -> bytes:
    """``encode_item`` of the item ``wire`` holds, at position ``pos``."""
    return b'{"pos":%d,' % pos + wire[1:]


def queue_item(row: Any) -> bytes:
    """A queue row read with ``QUEUE_COLUMNS``, encoded as ``encode_item`` encodes it."""
    wire: bytes | None = row["wire"]
    if wire is None:
        return encode_item(item_from_row(row, row["seq"]))
    return b'{"seq":%d,"pos":%d,' % (row["seq"], row["pos"]) + wire[1:]


def item_from_row(row: Any, seq: int | None = None) -> Item:
    """Build an item from a row holding ``ITEM_COLUMNS``."""
    return Item(
        seq=seq,
        pos=row["pos"],
        id=str(row["event_id"]),
        ts=rfc3339(row["created_at"]),
        command=row["command"],
        from_=row["sender"],
        to=row["to_name"],
        params=row["params"],
        body=row["body"],
        meta=row["meta"],
    )


class Wake(msgspec.Struct, array_like=True):
    """Published by fanout after a commit: these clients' queues now reach these seqs.

    A small batch's wake also carries its items (encoded without ``seq``) and, per
    client, which of them its queue got, in order: their seqs run up to the client's
    last seq. A gateway answers a poll from it when it holds every item the poll
    needs, without reading the queue again.

    ``recheck`` asks every gateway to read each parked poll's queue again and to
    forget what it knows of queues' tips: sent by a fanout worker that starts on a
    partition or reconnects, as the wakes of an owner that died between its
    commit and its wake, or of a link that broke, never came. A wake of no
    clients is a heartbeat: every fanout worker sends one each ``HEARTBEAT``
    seconds, so a gateway knows that wakes reach it.

    Each worker process numbers its wake messages (``origin``, ``number``: 1, 2,
    3 …, heartbeats and rechecks included), so a gateway sees a message of its
    lost on the way as a gap, and one worker's silence while others are heard.
    """

    clients: list[tuple[str, int]]
    items: list[msgspec.Raw] = []
    picks: list[list[int]] = []
    recheck: bool = False
    rewrote: bool = False  # the batch edited or deleted items: gateways drop the ones they keep
    origin: str = ""  # the publishing worker process ("": unnumbered)
    number: int = 0  # its wake messages' count, this one included


HEARTBEAT = 1.0  # seconds between two heartbeats of a fanout worker on the wake subject
WAKE_CHUNK = 2000  # clients per wake message
WAKE_ITEMS = 16  # items a wake carries at most …
WAKE_ITEM_BYTES = 65_536  # … and their encoded size at most

_item_encoder = msgspec.json.Encoder()
_wire_encoder = msgspec.json.Encoder()


def encode_item(item: Item) -> bytes:
    return _item_encoder.encode(item)


def page_json(items: list[bytes], first_seq: int, after: int) -> bytes:
    """A long-poll answer, ``{"messages": [...], "last_seq": N}``, from items encoded
    without ``seq``, numbered from ``first_seq`` (``after`` when there are none)."""
    parts = [b'{"seq":%d,' % (first_seq + i) + item[1:] for i, item in enumerate(items)]
    last = first_seq + len(items) - 1 if items else after
    return b'{"messages":[' + b",".join(parts) + b'],"last_seq":%d}' % last
