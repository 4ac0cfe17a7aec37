"""Sinks: a Sink names its topic and guarantee; its writer produces, and in exactly-once mode runs one
transaction per checkpoint under a transactional id that is stable per job instance."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Literal

from connectors._ports import ProducerPort
from connectors.checkpointing.state import Family, SinkState, read_sink, sink_section
from connectors.errors import JobConfigError

Guarantee = Literal["exactly_once", "at_least_once"]
Partitioning = Literal["key", "source"]
TXN_TIMEOUT_S = 30.0


def to_bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, separators=(",", ":")).encode()


class Sink(ABC):
    """Writes to ``topic``. ``partitioning="source"`` keeps each record in its input partition's number,
    so per-partition order carries through; ``"key"`` leaves it to the producer's partitioner."""

    family: Family

    def __init__(
        self,
        topic: str,
        *,
        guarantee: Guarantee = "exactly_once",
        partitioning: Partitioning = "key",
        transaction_timeout_s: float = TXN_TIMEOUT_S,
        config: dict[str, Any] | None = None,
    ) -> None:
        name = type(self).__name__
        if not isinstance(topic, str) or not topic:
            raise JobConfigError(f"{name}: topic must be a non-empty string, got {topic!r}")
        if guarantee not in ("exactly_once", "at_least_once"):
            raise JobConfigError(f"{name}: guarantee must be 'exactly_once' or 'at_least_once', got {guarantee!r}")
        if partitioning not in ("key", "source"):
            raise JobConfigError(f"{name}: partitioning must be 'key' or 'source', got {partitioning!r}")
        self.topic = topic
        self.guarantee = guarantee
        self.partitioning = partitioning
        self.transaction_timeout_s = transaction_timeout_s
        self.config = dict(config or {})

    @property
    def exactly_once(self) -> bool:
        return self.guarantee == "exactly_once"

    def validate(self, checkpoint_interval_s: float) -> None:
        """An open transaction must outlive a checkpoint interval, or the broker aborts it under us."""
        if self.exactly_once and self.transaction_timeout_s <= checkpoint_interval_s:
            raise JobConfigError(
                f"{type(self).__name__}: transaction_timeout_s={self.transaction_timeout_s} must exceed the "
                f"checkpoint interval checkpoint_interval_s={checkpoint_interval_s}: the broker would abort every "
                "transaction before its checkpoint commits it"
            )

    @abstractmethod
    def open_port(self, transactional_id: str | None) -> ProducerPort: ...

    def restore(self, section: dict[str, Any], operator: str) -> SinkState:
        return read_sink(self.family, section, operator)

    def snapshot(self, state: SinkState) -> dict[str, Any]:
        return sink_section(self.family, state)


class SinkWriter:
    """Produces records; ``commit`` ends the checkpoint's transaction with the source offsets in it."""

    def __init__(self, sink: Sink, transactional_id: str | None) -> None:
        self.sink = sink
        self.transactional_id = transactional_id if sink.exactly_once else None
        self.port = sink.open_port(self.transactional_id)
        self._keep_partition = sink.partitioning == "source"

    def start(self) -> None:
        """Exactly-once: ``init_transactions`` fences any earlier owner of the id and aborts its open
        transaction at once, rather than after the transaction timeout."""
        if self.transactional_id is not None:
            self.port.init_transactions(60)
            self.port.begin_transaction()

    def write(self, value: Any, key: bytes | None, partition: int, topic: str | None = None) -> None:
        self.port.produce(
            topic or self.sink.topic,
            value if type(value) is bytes else to_bytes(value),
            key,
            partition if self._keep_partition and topic is None else None,
        )

    def writer_for_sink_topic(self) -> Callable[[Any, bytes | None, int], None]:
        """``write`` to the sink's own topic, with the per-record decisions taken once."""
        produce, topic, keep = self.port.produce, self.sink.topic, self._keep_partition

        def write(value: Any, key: bytes | None, partition: int) -> None:
            produce(topic, value if type(value) is bytes else to_bytes(value), key, partition if keep else None)

        return write

    def flush(self) -> None:
        self.port.flush(60)

    def commit(self, offsets: list[Any], group_metadata: Any) -> None:
        if self.transactional_id is None:
            return
        if offsets:  # an instance may own no partition
            self.port.send_offsets_to_transaction(offsets, group_metadata, 60)
        self.port.commit_transaction(60)
        self.port.begin_transaction()

    def close(self) -> None:
        try:
            if self.transactional_id is not None:
                self.port.abort_transaction(10)
        finally:
            self.port.close()
