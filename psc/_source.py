"""What a message needs from the client that received it (:class:`Source`), and where it lives (:class:`MessageId`).

Apart from :mod:`psc._message` so that the hot paths (C and Python) can name them without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psc.backends.base import NativeRecord

PARTITION_EOF = "_PARTITION_EOF"


@dataclass(frozen=True, slots=True)
class MessageId:
    """Where a message lives: topic URI, partition and offset, plus its timestamp in ms (-1 if unknown)."""

    topic_uri: str
    partition: int
    offset: int
    timestamp: int = -1


class Source:
    """What a message needs from the client that received it: topic URIs of native topic names, and the
    parts of a message that are Python objects of PSC (its end-of-partition flag, its id)."""

    __slots__ = ("_uris", "cluster_uri", "topic_uri_of")

    def __init__(self, cluster_uri: str, topic_uri_of: Any = None) -> None:
        self.cluster_uri = cluster_uri
        self._uris: dict[str | None, str] = {}
        self.topic_uri_of = topic_uri_of

    def topic_uri(self, topic: str | None) -> str:
        uri = self._uris.get(topic)
        if uri is None:
            made = self.topic_uri_of(topic) if self.topic_uri_of is not None else self.cluster_uri + (topic or "")
            uri = self._uris[topic] = made
        return uri

    def is_eof(self, native: NativeRecord) -> bool:
        error = native.error()
        return error is not None and error.name() == PARTITION_EOF

    def message_id(self, native: NativeRecord) -> MessageId:
        partition, offset = native.partition(), native.offset()
        return MessageId(
            self.topic_uri(native.topic()),
            -1 if partition is None else partition,
            -1 if offset is None else offset,
            native.timestamp()[1],
        )


__all__ = ["PARTITION_EOF", "MessageId", "Source"]
