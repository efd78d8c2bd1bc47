"""Read endpoints beyond IRC: search, threads, edit histories, pins and signing keys."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from libs import errors
from libs.feature_contracts import (
    EditsRequest,
    EditsResult,
    PinsRequest,
    PinsResult,
    SearchRequest,
    SearchResult,
    ThreadRequest,
    ThreadResult,
)
from libs.irc import PLAIN_PATTERN, fold
from libs.signatures import ALG
from services.gateway import feature_store
from services.gateway.app import CallerDep, GatewayDep, ask_history
from services.gateway.models import ItemOut, PathName, Position, QueryTarget

router = APIRouter(tags=["messages"])


class SearchOut(BaseModel):
    messages: list[ItemOut]
    next: str | None


class ThreadOut(BaseModel):
    messages: list[ItemOut]
    has_more: bool


class VersionOut(BaseModel):
    body: list[str] | dict[str, Any]
    replaced_at: str


class EditsOut(BaseModel):
    message: ItemOut
    versions: list[VersionOut]


class PinsOut(BaseModel):
    messages: list[ItemOut]


class KeyOut(BaseModel):
    nick: str
    alg: str
    key: str


@router.get("/api/v1/search", response_model=SearchOut)
async def search(
    caller: CallerDep,
    gw: GatewayDep,
    q: Annotated[str, Query(min_length=1, max_length=200, pattern=PLAIN_PATTERN)],
    target: QueryTarget | None = None,
    before: Annotated[str | None, Query(pattern=r"^[0-9]{1,20}\.[0-9]{1,19}$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Full-text search over the channels the caller is in and its own DMs, newest first;
    ``before`` takes the ``next`` of the previous page."""
    request = SearchRequest(caller.session_id, q, target, before, limit)
    return await ask_history(gw, "search", request, SearchResult)


@router.get("/api/v1/thread", response_model=ThreadOut)
async def thread(
    caller: CallerDep,
    gw: GatewayDep,
    target: QueryTarget,
    id: uuid.UUID,
    after: Position | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    """A message and every reply under it (replies to replies too), oldest first."""
    request = ThreadRequest(caller.session_id, target, id, after, limit)
    return await ask_history(gw, "thread", request, ThreadResult)


@router.get("/api/v1/edits", response_model=EditsOut)
async def edits(caller: CallerDep, gw: GatewayDep, target: QueryTarget, id: uuid.UUID) -> Response:
    """A message as it is now, and each earlier text with when it was replaced."""
    return await ask_history(gw, "edits", EditsRequest(caller.session_id, target, id), EditsResult)


@router.get("/api/v1/channels/{name}/pins", response_model=PinsOut, tags=["state"])
async def pins(name: PathName, caller: CallerDep, gw: GatewayDep) -> Response:
    """A channel's pinned messages (members only), in the order they were pinned."""
    channel = name if name.startswith("#") else f"#{name}"
    return await ask_history(gw, "pins", PinsRequest(caller.session_id, channel), PinsResult)


@router.get("/api/v1/users/{nick}/key", response_model=KeyOut, tags=["state"])
async def key(nick: PathName, caller: CallerDep, gw: GatewayDep) -> KeyOut:
    """The Ed25519 key a user announced with PUBKEY; 404 when none."""
    row = await feature_store.signing_key(gw.pool, fold(nick))
    if row is None:
        raise errors.no_such_nick(nick)
    if row["signing_key"] is None:
        raise errors.no_such_key(row["nick"])
    return KeyOut(nick=row["nick"], alg=ALG, key=row["signing_key"])
