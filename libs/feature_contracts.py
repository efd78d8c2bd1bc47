"""Requests and results of the history endpoints beyond IRC: search, threads, edits, pins."""

from __future__ import annotations

import uuid

import msgspec

from libs.items import Item


class SearchRequest(msgspec.Struct, frozen=True):
    """Full-text search over what ``session_id`` may read (``target`` narrows it to one
    conversation); ``before`` is the cursor a previous page returned as ``next``."""

    session_id: uuid.UUID
    q: str
    target: str | None = None
    before: str | None = None
    limit: int = 20


class SearchResult(msgspec.Struct, frozen=True):
    messages: list[Item]  # newest first
    next: str | None = None


class ThreadRequest(msgspec.Struct, frozen=True):
    session_id: uuid.UUID
    target: str
    id: uuid.UUID
    after: int | None = None
    limit: int = 100


class ThreadResult(msgspec.Struct, frozen=True):
    messages: list[Item]  # the message first, then every reply under it, oldest first
    has_more: bool


class EditsRequest(msgspec.Struct, frozen=True):
    session_id: uuid.UUID
    target: str
    id: uuid.UUID


class Version(msgspec.Struct, frozen=True):
    body: list[str] | dict[str, object]
    replaced_at: str


class EditsResult(msgspec.Struct, frozen=True):
    message: Item
    versions: list[Version]  # earlier texts, oldest first, each with when it was replaced


class PinsRequest(msgspec.Struct, frozen=True):
    session_id: uuid.UUID
    channel: str


class PinsResult(msgspec.Struct, frozen=True):
    messages: list[Item]  # in the order they were pinned
