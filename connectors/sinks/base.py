"""Sinks: a Sink names its topic and guarantee; its writer produces, and in exactly-once mode runs one
transaction per checkpoint under a transactional id that is stable per job instance."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Literal

from connectors._bounded import ClientStuckError, bounded
from connectors._ports import ProducerPort, Record
from connectors.checkpointing.state import Family, SinkState, read_sink, sink_section
from connectors.errors import JobConfigError

Guarantee = Literal["exactly_once", "at_least_once"]
Partitioning = Literal["key", "source"]
TXN_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 60.0  # init_transactions, and flush at most: how long the broker may be away before a restart
GRACE_S = 2.0  # past a call's own timeout before it counts as stuck


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
    """Produces records; ``commit`` ends the checkpoint's transaction with the source offsets in it.

    Every call that waits on the broker is bounded (``connectors._bounded``): a stuck call abandons the
    producer, the job's attempt fails, and the next attempt's writer creates a new producer under the same
    transactional id, whose ``init_transactions`` fences the stuck one."""

    def __init__(self, sink: Sink, transactional_id: str | None) -> None:
        self.sink = sink
        self.transactional_id = transactional_id if sink.exactly_once else None
        self.port = sink.open_port(self.transactional_id)
        self._keep_partition = sink.partitioning == "source"
        self._abandoned = False

    def _bounded(self, timeout_s: float, what: str, call: Callable[[], None]) -> None:
        try:
            bounded(timeout_s + GRACE_S, what, call)
        except ClientStuckError:
            self._abandoned = True
            raise

    def start(self) -> None:
        """Exactly-once: ``init_transactions`` fences any earlier owner of the id and aborts its open
        transaction at once, rather than after the transaction timeout."""
        if self.transactional_id is not None:
            port = self.port
            self._bounded(CALL_TIMEOUT_S, "init_transactions", lambda: port.init_transactions(CALL_TIMEOUT_S))
            port.begin_transaction()

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

    def copy(self, records: Sequence[Record]) -> int:
        """Input records unchanged to the sink's topic (no user function): one call per batch."""
        self.port.produce_records(self.sink.topic, records, self._keep_partition)
        return len(records)

    def flush(self) -> None:
        """Deliver the checkpoint's records within the transaction timeout (also the at-least-once limit):
        a producer that cannot deliver by then is replaced, and the job replays from its last checkpoint."""
        port, timeout = self.port, min(CALL_TIMEOUT_S, self.sink.transaction_timeout_s)
        self._bounded(timeout, "flush", lambda: port.flush(timeout))

    def commit(self, offsets: list[Any], group_metadata: Any) -> None:
        """Commit the open transaction, within the transaction timeout: past it the broker aborts it anyway."""
        if self.transactional_id is None:
            return
        port, timeout = self.port, self.sink.transaction_timeout_s

        def end() -> None:
            if offsets:  # an instance may own no partition
                port.send_offsets_to_transaction(offsets, group_metadata, timeout)
            port.commit_transaction(timeout)

        self._bounded(timeout, "send_offsets_to_transaction/commit_transaction", end)
        port.begin_transaction()

    def abort(self) -> None:
        """Abort the open transaction and begin the next one."""
        port = self.port
        self._bounded(30, "abort_transaction", lambda: port.abort_transaction(30))
        port.begin_transaction()

    def close(self) -> None:
        """Abort the open transaction and close the producer, unless a stuck call still holds it."""
        if self._abandoned:
            return
        port = self.port
        try:
            if self.transactional_id is not None:
                self._bounded(10, "abort_transaction", lambda: port.abort_transaction(10))
        finally:
            if not self._abandoned:
                self._bounded(5, "producer close", port.close)
