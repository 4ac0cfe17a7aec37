"""Messages, message ids and topic-URI partitions.

:class:`Message` wraps a native record without copying it: the topic URI, key, value and headers are read
from the native record when asked for, so consuming costs one small object per record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError

from psc._accel import Message as Message  # in C when built: see psc/_speedups.c
from psc._source import PARTITION_EOF as PARTITION_EOF
from psc._source import MessageId as MessageId
from psc._source import Source as Source

if TYPE_CHECKING:
    from psc.backends.base import NativeRecord

OFFSET_BEGINNING = -2
OFFSET_END = -1
OFFSET_STORED = -1000
OFFSET_INVALID = -1001

TIMESTAMP_NOT_AVAILABLE = 0
TIMESTAMP_CREATE_TIME = 1
TIMESTAMP_LOG_APPEND_TIME = 2


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
