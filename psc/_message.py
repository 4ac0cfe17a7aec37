"""Messages, message ids and topic-URI partitions.

:class:`Message` wraps a native record without copying it: the topic URI, key, value and headers are read
from the native record when asked for, so consuming costs one small object per record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psc._accel import Message as Message  # in C when built: see psc/_speedups.c
from psc.errors import BackendError

if TYPE_CHECKING:
    from psc.backends.base import NativeRecord

OFFSET_BEGINNING = -2
OFFSET_END = -1
OFFSET_STORED = -1000
OFFSET_INVALID = -1001

TIMESTAMP_NOT_AVAILABLE = 0
TIMESTAMP_CREATE_TIME = 1
TIMESTAMP_LOG_APPEND_TIME = 2

PARTITION_EOF = "_PARTITION_EOF"


@dataclass(frozen=True, slots=True)
class MessageId:
    """Where a message lives: topic URI, partition and offset, plus its timestamp in ms (-1 if unknown)."""

    topic_uri: str
    partition: int
    offset: int
    timestamp: int = -1


@dataclass(slots=True, eq=False)
class TopicUriPartition:
    """A partition of a topic URI with an offset: PSC's ``confluent_kafka.TopicPartition``.

    As with ``TopicPartition``, equality and hashing consider only the topic URI and partition, so
    partitions can be looked up in sets and dicts whatever offset they carry.
    """

    topic_uri: str
    partition: int = -1
    offset: int = OFFSET_INVALID
    metadata: str | None = None
    leader_epoch: int | None = None
    error: BackendError | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TopicUriPartition):
            return NotImplemented
        return self.topic_uri == other.topic_uri and self.partition == other.partition

    def __hash__(self) -> int:
        return hash((self.topic_uri, self.partition))

    def __lt__(self, other: TopicUriPartition) -> bool:
        return (self.topic_uri, self.partition) < (other.topic_uri, other.partition)


class Source:
    """What a message needs from the client that received it: topic URIs of native topic names, and the
    parts of a message that are Python objects of PSC (its error, its id)."""

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

    def error_of(self, native: NativeRecord) -> BackendError | None:
        error = native.error()
        return None if error is None else BackendError.from_native(error, topic_uri=self.topic_uri(native.topic()))

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


class DecodedMessage(Message):
    """A message whose key, value or headers were changed by serde or interceptors: those are kept here.

    Plain clients (bytes serde, no interceptors) return :class:`Message`, which reads everything from the
    native record; keeping the decoded parts in a subclass keeps that common case one object of two slots.
    """

    __slots__ = ("_decoded",)
    _decoded: tuple[Any, Any, Any]  # (key, value, headers)

    @classmethod
    def of(cls, native: NativeRecord, source: Source, decoded: tuple[Any, Any, Any]) -> DecodedMessage:
        message = cls(native, source)
        message._decoded = decoded
        return message

    def key(self) -> Any:
        return self._decoded[0]

    def value(self) -> Any:
        return self._decoded[1]

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        headers: list[tuple[str, bytes | None]] | None = self._decoded[2]
        return headers
