"""Messages, message ids and topic-URI partitions.

:class:`Message` wraps a native record without copying it: the topic URI, key, value and headers are read
from the native record when asked for, so consuming costs one small object per record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError

from psc._accel import Message as Message  # in C when built: see psc/_speedups.c

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


class TopicPartition:
    """A partition of a topic URI with an offset: ``confluent_kafka.TopicPartition`` with a topic URI as topic.

    As with confluent-kafka's, equality and hashing consider only the topic and partition, so partitions can
    be looked up in sets and dicts whatever offset they carry; ``error`` is a ``KafkaError`` or None.
    ``topic_uri`` is another name of ``topic``.
    """

    __slots__ = ("error", "leader_epoch", "metadata", "offset", "partition", "topic")

    def __init__(
        self,
        topic: str,
        partition: int = -1,
        offset: int = OFFSET_INVALID,
        metadata: str | None = None,
        leader_epoch: int | None = None,
        error: KafkaError | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.metadata = metadata
        self.leader_epoch = leader_epoch
        self.error = error

    @property
    def topic_uri(self) -> str:
        return self.topic

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TopicPartition):
            return NotImplemented
        return self.topic == other.topic and self.partition == other.partition

    def __hash__(self) -> int:
        return hash((self.topic, self.partition))

    def __lt__(self, other: TopicPartition) -> bool:
        return (self.topic, self.partition) < (other.topic, other.partition)

    def __repr__(self) -> str:
        return (
            f"TopicPartition{{topic={self.topic},partition={self.partition},offset={self.offset},"
            f"leader_epoch={self.leader_epoch},error={self.error!r}}}"
        )

    __str__ = __repr__


TopicUriPartition = TopicPartition  # PSC's earlier name


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
