"""confluent-kafka behind the source and sink ports.

PSC's clients take confluent-kafka's call shapes (topic URIs where topic names go), so the PSC ports
(``_psc_adapter.py``) are these classes with PSC's client and partition types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from connectors._ports import Committed, Rebalance, Record, SinkWriteError, SourceReadError


class KafkaConsumerPort:
    client: ClassVar[Any] = Consumer
    partition_type: ClassVar[Any] = TopicPartition

    def __init__(self, config: dict[str, Any]) -> None:
        self._consumer = self.client(config)

    def partitions(self, topic: str) -> list[int]:
        meta = self._consumer.list_topics(topic, timeout=30).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise SourceReadError(
                f"topic {topic!r} does not exist or has no partitions ({getattr(meta, 'error', None)})"
            )
        return sorted(meta.partitions)

    def assign(self, positions: Sequence[tuple[str, int, int]]) -> None:
        self._consumer.assign([self.partition_type(t, p, o) for t, p, o in positions])

    def subscribe(self, topics: Sequence[str], on_assign: Rebalance, on_revoke: Rebalance, on_lost: Rebalance) -> None:
        def pairs(parts: list[TopicPartition]) -> list[tuple[str, int]]:
            return [(tp.topic, tp.partition) for tp in parts]

        self._consumer.subscribe(
            list(topics),
            on_assign=lambda _, parts: on_assign(pairs(parts)),
            on_revoke=lambda _, parts: on_revoke(pairs(parts)),
            on_lost=lambda _, parts: on_lost(pairs(parts)),
        )

    def consume(self, max_records: int, timeout: float) -> Sequence[Record]:
        messages: list[Any] = self._consumer.consume(max_records, timeout)
        for msg in messages:
            err = msg.error()
            if err is not None:
                return _without_errors(messages)
        records: list[Record] = messages
        return records

    def positions(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        found = self._consumer.position([self.partition_type(t, p) for t, p in partitions])
        return {(tp.topic, tp.partition): tp.offset for tp in found}

    def committed(self, partitions: Sequence[tuple[str, int]], timeout: float) -> dict[tuple[str, int], Committed]:
        found = self._consumer.committed([self.partition_type(t, p) for t, p in partitions], timeout=timeout)
        return {(tp.topic, tp.partition): Committed(tp.offset, tp.metadata) for tp in found}

    def watermarks(self, topic: str, partition: int, timeout: float, cached: bool = False) -> tuple[int, int]:
        partition_at = self.partition_type(topic, partition)
        found = self._consumer.get_watermark_offsets(partition_at, timeout=timeout, cached=cached)
        return (int(found[0]), int(found[1])) if found else (-1, -1)

    def group_metadata(self) -> Any:
        return self._consumer.consumer_group_metadata()

    def commit(self, offsets: Sequence[tuple[str, int, int]], metadata: str | None, asynchronous: bool) -> None:
        native = self.transaction_offsets(offsets, metadata)
        if asynchronous:
            self._consumer.commit(offsets=native, asynchronous=True)
        else:
            self._consumer.commit(offsets=native, asynchronous=False)

    def transaction_offsets(self, offsets: Sequence[tuple[str, int, int]], metadata: str | None) -> list[Any]:
        return [self.partition_type(t, p, o, metadata=metadata) for t, p, o in offsets]

    def close(self) -> None:
        self._consumer.close()


def _without_errors(messages: list[Any]) -> list[Record]:
    """The records of a batch holding errors: end-of-partition notices dropped, anything else raised."""
    for msg in messages:
        err = msg.error()
        if err is not None and err.code() != KafkaError._PARTITION_EOF:
            raise SourceReadError(f"reading {msg.topic()} [{msg.partition()}]: {err}")
    return [msg for msg in messages if msg.error() is None]


class KafkaProducerPort:
    """``config`` must ask for delivery reports of failures only (``delivery.report.only.error``): a Python
    call per delivered record would cost as much as producing it."""

    client: ClassVar[Any] = Producer

    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = self.client({**config, "on_delivery": self._on_delivery})
        self._failure: str | None = None

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None and self._failure is None:
            self._failure = f"{msg.topic()} [{msg.partition()}]: {err}"

    def produce(self, topic: str, value: bytes | None, key: bytes | None, partition: int | None) -> None:
        while True:
            try:
                if partition is None:
                    self._producer.produce(topic, value, key)
                else:
                    self._producer.produce(topic, value, key, partition)
                return
            except BufferError:
                self._producer.poll(0.05)

    def produce_records(self, topic: str, records: Sequence[Record], keep_partition: bool) -> None:
        produce = self._producer.produce
        for record in records:
            while True:
                try:
                    if keep_partition:
                        produce(topic, record.value(), record.key(), record.partition())
                    else:
                        produce(topic, record.value(), record.key())
                    break
                except BufferError:
                    self._producer.poll(0.05)

    def flush(self, timeout: float) -> None:
        left = self._producer.flush(timeout)
        failure, self._failure = self._failure, None
        if failure is not None:
            raise SinkWriteError(f"record not delivered: {failure}")
        if left:
            raise SinkWriteError(f"{left} records still undelivered after {timeout}s")

    def init_transactions(self, timeout: float) -> None:
        self._producer.init_transactions(timeout)

    def begin_transaction(self) -> None:
        self._producer.begin_transaction()

    def send_offsets_to_transaction(self, offsets: list[Any], group_metadata: Any, timeout: float) -> None:
        self._producer.send_offsets_to_transaction(offsets, group_metadata, timeout)

    def commit_transaction(self, timeout: float) -> None:
        self._producer.commit_transaction(timeout)

    def abort_transaction(self, timeout: float) -> None:
        self._producer.abort_transaction(timeout)

    def close(self) -> None:
        self._producer.flush(5)
