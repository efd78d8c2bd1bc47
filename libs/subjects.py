"""NATS subject names, and the partitioning of the event stream by target."""

from __future__ import annotations

import zlib

from libs.events import AnyEvent, event_type


def partition_of(target: str, partitions: int) -> int:
    """The stable partition of a target key: crc32 of its UTF-8 form, mod P."""
    return zlib.crc32(target.encode()) % partitions


class Subjects:
    """Every subject chinwag uses, under one prefix (so test runs can share a server)."""

    def __init__(self, prefix: str, partitions: int) -> None:
        self.prefix = prefix
        self.partitions = partitions

    @property
    def events_wildcard(self) -> str:
        return f"{self.prefix}.ev.>"

    def partition_filter(self, partition: int) -> str:
        return f"{self.prefix}.ev.{partition}.>"

    def event(self, event: AnyEvent) -> str:
        """The subject an event is published on: ``<prefix>.ev.<partition>.<type>``."""
        partition = partition_of(event.target, self.partitions)
        return f"{self.prefix}.ev.{partition}.{event_type(event)}"

    @property
    def wake(self) -> str:
        """Core NATS subject of wake-ups from fanout to every gateway."""
        return f"{self.prefix}.wake"

    def service(self, name: str, endpoint: str) -> str:
        """Request/reply subject of an internal service endpoint."""
        return f"{self.prefix}.{name}.{endpoint}"
