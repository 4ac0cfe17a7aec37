"""The few client calls sources and sinks make, as two small protocols with a Kafka and a PSC backend.

Sources and sinks are written once against these; ``_kafka.py`` and ``_psc_adapter.py`` translate them
to confluent-kafka and PSC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from connectors.errors import ConnectorError

OFFSET_BEGINNING = -2
OFFSET_END = -1


class SourceReadError(ConnectorError):
    """The client returned an error message instead of a record."""


class SinkWriteError(ConnectorError):
    """A record was not delivered; the transaction or checkpoint it belongs to must not complete."""


class Record(Protocol):
    """An input record: confluent-kafka's and PSC's messages both fit, so none is copied on the hot path.
    ``topic()`` is a topic name (Kafka) or a topic URI (PSC); ports return only records without errors."""

    def topic(self) -> str | None: ...

    def partition(self) -> int | None: ...

    def offset(self) -> int | None: ...

    def key(self) -> Any: ...

    def value(self) -> Any: ...


Rebalance = Callable[[list[tuple[str, int]]], None]


class Committed(NamedTuple):
    offset: int
    metadata: str | None


class ConsumerPort(Protocol):
    def partitions(self, topic: str) -> list[int]: ...

    def assign(self, positions: Sequence[tuple[str, int, int]]) -> None: ...

    def subscribe(self, topics: Sequence[str], on_assign: Rebalance, on_revoke: Rebalance, on_lost: Rebalance) -> None:
        """Join the consumer group; the callbacks run inside ``consume`` with (topic, partition) pairs."""

    def consume(self, max_records: int, timeout: float) -> Sequence[Record]: ...

    def positions(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]: ...

    def committed(self, partitions: Sequence[tuple[str, int]], timeout: float) -> dict[tuple[str, int], Committed]: ...

    def watermarks(self, topic: str, partition: int, timeout: float, cached: bool = False) -> tuple[int, int]:
        """Low and high offsets; ``cached`` answers from the last fetch without asking the broker (-1 unknown)."""

    def group_metadata(self) -> Any: ...

    def commit(self, offsets: Sequence[tuple[str, int, int]], metadata: str | None, asynchronous: bool) -> None: ...

    def transaction_offsets(self, offsets: Sequence[tuple[str, int, int]], metadata: str) -> list[Any]: ...

    def close(self) -> None: ...


class ProducerPort(Protocol):
    def produce(self, topic: str, value: bytes | None, key: bytes | None, partition: int | None) -> None: ...

    def produce_records(self, topic: str, records: Sequence[Record], keep_partition: bool) -> None:
        """Copy input records (value and key) to ``topic``, in their own partition numbers if ``keep_partition``."""

    def flush(self, timeout: float) -> None:
        """Deliver everything queued; raise ``SinkWriteError`` for the first failed record since the last flush."""

    def init_transactions(self, timeout: float) -> None: ...

    def begin_transaction(self) -> None: ...

    def send_offsets_to_transaction(self, offsets: list[Any], group_metadata: Any, timeout: float) -> None: ...

    def commit_transaction(self, timeout: float) -> None: ...

    def abort_transaction(self, timeout: float) -> None: ...

    def close(self) -> None: ...
