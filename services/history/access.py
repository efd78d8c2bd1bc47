"""Who may read what: a channel's members, and a DM's two participants."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from libs import errors
from libs.events import dm_target
from libs.irc import fold, is_channel
from services.history import store


async def conversation_key(pool: asyncpg.Pool[Any], session_id: uuid.UUID, target: str) -> str:
    """The target key of a channel the session is in, or of its DM with a nick."""
    if is_channel(target):
        key = fold(target)
        modes = await store.channel_modes(pool, key)
        if modes is None:
            raise errors.no_such_channel(target)
        if not await store.is_member(pool, key, session_id):
            if "s" in modes:  # a secret channel does not exist for outsiders
                raise errors.no_such_channel(target)
            raise errors.not_on_channel(target)
        return key
    peer = await store.session_by_nick(pool, fold(target))
    if peer is None:
        raise errors.no_such_nick(target)
    return dm_target(session_id, peer)
