"""PSC behind the source and sink ports: the only module that calls ``psc`` clients.

Called conservatively so it holds across PSC's API changes: topic URIs are passed positionally,
auto-commit is always set explicitly, and every polled message's ``error()`` is checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psc
from connectors._ports import Committed, Rebalance, Record, SinkWriteError, SourceReadError
from connectors.errors import JobConfigError


class PscConsumerPort:
    def __init__(self, config: dict[str, Any]) -> None:
        self._consumer = psc.Consumer({**config, "psc.consumer.commit.auto.enabled": "false"})

    def partitions(self, topic: str) -> list[int]:
        meta = self._consumer.list_topics(topic, 30).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise SourceReadError(f"topic URI {topic!r} does not exist or has no partitions")
        return sorted(meta.partitions)

    def assign(self, positions: Sequence[tuple[str, int, int]]) -> None:
        self._consumer.assign([psc.TopicUriPartition(t, p, o) for t, p, o in positions])

    def subscribe(self, topics: Sequence[str], on_assign: Rebalance, on_revoke: Rebalance, on_lost: Rebalance) -> None:
        # PSC's consumer keeps its own bookkeeping of a subscription; assigning from inside its callbacks
        # (how the group mode sets each partition's committed offset) would replace that subscription
        raise JobConfigError("the group mode needs a KafkaSource; PscSource runs with --instance/--instances")

    def consume(self, max_records: int, timeout: float) -> Sequence[Record]:
        messages = self._consumer.consume(max_records, timeout)
        for msg in messages:
            if msg.error() is not None:
                if not msg.is_eof():
                    raise SourceReadError(f"reading {msg.topic()} [{msg.partition()}]: {msg.error()}")
                return [m for m in messages if m.error() is None]
        return messages

    def positions(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        found = self._consumer.position([psc.TopicUriPartition(t, p) for t, p in partitions])
        return {(tp.topic_uri, tp.partition): tp.offset for tp in found}

    def committed(self, partitions: Sequence[tuple[str, int]], timeout: float) -> dict[tuple[str, int], Committed]:
        found = self._consumer.committed([psc.TopicUriPartition(t, p) for t, p in partitions], timeout)
        return {(tp.topic_uri, tp.partition): Committed(tp.offset, tp.metadata) for tp in found}

    def watermarks(self, topic: str, partition: int, timeout: float, cached: bool = False) -> tuple[int, int]:
        found = self._consumer.get_watermark_offsets(psc.TopicUriPartition(topic, partition), timeout, cached)
        if found is None:
            if cached:
                return -1, -1
            raise SourceReadError(f"no watermarks for {topic} [{partition}]")
        return int(found[0]), int(found[1])

    def group_metadata(self) -> Any:
        return self._consumer.consumer_group_metadata()

    def commit(self, offsets: Sequence[tuple[str, int, int]], metadata: str | None, asynchronous: bool) -> None:
        native = self.transaction_offsets(offsets, metadata)
        if asynchronous:
            self._consumer.commit(offsets=native, asynchronous=True)
        else:
            self._consumer.commit(offsets=native, asynchronous=False)

    def transaction_offsets(self, offsets: Sequence[tuple[str, int, int]], metadata: str | None) -> list[Any]:
        return [psc.TopicUriPartition(t, p, o, metadata) for t, p, o in offsets]

    def close(self) -> None:
        self._consumer.close()


class PscProducerPort:
    def __init__(self, config: dict[str, Any], cluster_uri: str | None) -> None:
        self._producer = psc.Producer(config)
        self._cluster_uri = cluster_uri
        self._failure: str | None = None

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None and self._failure is None:
            self._failure = f"{msg.topic()} [{msg.partition()}]: {err}"

    def produce(self, topic: str, value: bytes | None, key: bytes | None, partition: int | None) -> None:
        args: dict[str, Any] = {"on_delivery": self._on_delivery}
        if partition is not None:
            args["partition"] = partition
        while True:
            try:
                self._producer.produce(topic, value, key, **args)
                return
            except BufferError:
                self._producer.poll(0.05)

    def produce_records(self, topic: str, records: Sequence[Record], keep_partition: bool) -> None:
        for record in records:
            self.produce(topic, record.value(), record.key(), record.partition() if keep_partition else None)

    def flush(self, timeout: float) -> None:
        left = self._producer.flush(timeout)
        failure, self._failure = self._failure, None
        if failure is not None:
            raise SinkWriteError(f"record not delivered: {failure}")
        if left:
            raise SinkWriteError(f"{left} records still undelivered after {timeout}s")

    def init_transactions(self, timeout: float) -> None:
        # PSC defers init_transactions until the producer knows its cluster; binding it first makes the
        # call fence a previous owner of the transactional id now, before the restore reads the witness.
        if self._cluster_uri is not None:
            self._producer.list_topics(self._cluster_uri, timeout)
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
        self._producer.close(5)
