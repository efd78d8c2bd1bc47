"""Big populations for the big-room and idle scenarios, made in bulk.

Sessions and clients are made either through the API (``POST /session``,
concurrently) or by one ``unnest`` insert into the same identity tables with
tokens hashed the way the gateway hashes them, which is far faster. Membership
of the big channels is always inserted in bulk, into presence's members and
fanout's membership projection alike: through the API every JOIN would be
queued to every earlier member, M²/2 queue rows (50 million for 10,000
members), which measures JOIN broadcast rather than one message's fanout.
The channel itself is created by a real JOIN of its first member.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from libs.irc import fold
from services.bench.client import Api, BenchError, Member
from services.bench.room import bounded
from services.gateway.auth import new_token, token_hash

_SESSIONS = """INSERT INTO identity.sessions (id, nick, nick_folded)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])"""
_CLIENTS = """INSERT INTO identity.clients (id, session_id, token_hash)
              SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bytea[])"""
_PRESENCE_MEMBERS = """INSERT INTO presence.members (channel, session_id)
                       SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING"""
_DELIVERY_MEMBERS = """INSERT INTO delivery.members (channel, session_id)
                       SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING"""
_CHUNK = 5000


async def population(
    api: Api, pool: asyncpg.Pool[Any], run: str, count: int, how: str
) -> tuple[list[Member], float]:
    """``count`` sessions of one client each, and the seconds it took to make them."""
    start = time.monotonic()
    nicks = [f"p{run}x{i}" for i in range(count)]
    if how == "api":

        def create(nick: str) -> Callable[[], Awaitable[Member]]:
            return lambda: api.create_session(nick)

        members = await bounded(32, [create(n) for n in nicks])
        return members, time.monotonic() - start
    members = [Member(nick, new_token(), str(uuid.uuid4()), str(uuid.uuid4())) for nick in nicks]
    async with pool.acquire() as conn:
        for lo in range(0, count, _CHUNK):
            chunk = members[lo : lo + _CHUNK]
            async with conn.transaction():
                await conn.execute(
                    _SESSIONS,
                    [m.session_id for m in chunk],
                    [m.nick for m in chunk],
                    [fold(m.nick) for m in chunk],
                )
                await conn.execute(
                    _CLIENTS,
                    [m.client_id for m in chunk],
                    [m.session_id for m in chunk],
                    [token_hash(m.token) for m in chunk],
                )
    return members, time.monotonic() - start


async def channel_of(
    api: Api, pool: asyncpg.Pool[Any], founder: Member, name: str, members: list[Member]
) -> None:
    """Make ``name`` by the founder's JOIN, then add ``members`` to it in bulk.

    The bulk rows go in only once fanout has projected the founder's JOIN, so
    that JOIN is queued to the founder alone, as it would have been.
    """
    await api.command(founder, "JOIN", to=name)
    deadline = time.monotonic() + 30.0
    while True:
        page = await api.poll(founder, founder.seen, timeout=5.0)
        if page.messages:
            founder.seen = page.messages[-1].seq
        if any(i.command == "JOIN" for i in page.messages):
            break
        if time.monotonic() > deadline:
            raise BenchError(f"the founder's JOIN of {name} never reached its queue")
    folded = fold(name)
    sessions = [m.session_id for m in members]
    async with pool.acquire() as conn, conn.transaction():
        for lo in range(0, len(sessions), _CHUNK):
            await conn.execute(_PRESENCE_MEMBERS, folded, sessions[lo : lo + _CHUNK])
            await conn.execute(_DELIVERY_MEMBERS, folded, sessions[lo : lo + _CHUNK])


async def last_seqs(pool: asyncpg.Pool[Any], members: list[Member]) -> None:
    """Bring each member's ``seen`` to the last seq of its queue."""
    rows = await pool.fetch(
        "SELECT client_id::text AS id, last_seq FROM delivery.client_seq "
        "WHERE client_id = ANY($1::uuid[])",
        [m.client_id for m in members],
    )
    last = {r["id"]: r["last_seq"] for r in rows}
    for member in members:
        member.seen = int(last.get(member.client_id, 0))
