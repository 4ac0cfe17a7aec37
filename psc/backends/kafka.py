"""The Kafka backend: a thin layer over confluent-kafka.

A topic URI addresses the Kafka topic named by its ``topic`` field on the cluster discovered for its
cluster prefix; topic names come back as ``cluster URI + topic``. Records and errors pass through as
confluent-kafka objects, and ``produce``/``poll``/``consume`` are confluent-kafka's own bound methods.

A producer whose default ``on_delivery`` is a :class:`FailureReports` gets no default callback in
confluent-kafka, which then reports a record without a callback of its own without calling Python. The
failures go to ``psc._failure_trap`` instead, a librdkafka plugin loaded into the producer, and from there to
the ``FailureReports`` as confluent-kafka ``Message`` objects, from ``poll``, ``flush`` and ``close``. Where
the plugin is not built or ``PSC_NO_SPEEDUPS`` is set, the ``FailureReports`` is confluent-kafka's default
callback as usual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import confluent_kafka as ck

from psc._librdkafka import load_module
from psc.backends.base import (
    Backend,
    BackendConsumer,
    BackendPartition,
    BackendProducer,
    BrokerMetadata,
    ClusterMetadata,
    FailureReports,
    PartitionMetadata,
    PartitionsCallback,
    TopicMetadata,
)
from psc.common import get_logger

if TYPE_CHECKING:
    from psc._discovery import ServiceEndpoint

_log = get_logger("psc.backends.kafka")
_TRAP, _NO_TRAP = load_module("psc._failure_trap", same_as_confluent=True)


def native_config(endpoint: ServiceEndpoint, config: Mapping[str, Any]) -> dict[str, Any]:
    """librdkafka settings: the caller's, then the discovered bootstrap servers and security."""
    merged = dict(config)
    merged.update(endpoint.security)
    merged["bootstrap.servers"] = endpoint.bootstrap
    return merged


class NativeLogger:
    """confluent-kafka's ``logger``: librdkafka's own lines as records of the ``psc.librdkafka`` logger.

    confluent-kafka maps librdkafka's syslog levels to ``logging``'s (0-2 CRITICAL, 3 ERROR, 4 WARNING,
    5-6 INFO, 7 DEBUG) and calls ``log(level, "%s [%s] %s", facility, client name, text)`` from ``poll``,
    ``consume`` or ``flush``. Each record carries the client's type and name and its cluster URI.
    """

    def __init__(self, cluster_uri: str, client_type: str) -> None:
        self._log = get_logger("psc.librdkafka", cluster_uri=cluster_uri, client_type=client_type)

    def log(self, level: int, msg: str, *args: Any) -> None:
        if len(args) == 3:
            facility, client, text = args
            self._log.log(level, text, facility=facility, client=client)
        else:
            self._log.log(level, msg % args if args else msg)


def with_logger(config: Mapping[str, Any], cluster_uri: str, client_type: str) -> dict[str, Any]:
    """``config`` with a :class:`NativeLogger`, unless the application gave its own ``logger``."""
    native = dict(config)
    if native.get("logger") is None:
        native["logger"] = NativeLogger(cluster_uri, client_type)
    return native


def to_native(partitions: Sequence[BackendPartition]) -> list[ck.TopicPartition]:
    out = []
    for p in partitions:
        extra: dict[str, Any] = {}
        if p.metadata is not None:
            extra["metadata"] = p.metadata
        if p.leader_epoch is not None:
            extra["leader_epoch"] = p.leader_epoch
        out.append(ck.TopicPartition(p.topic, p.partition, p.offset, **extra))
    return out


def from_native(partitions: Sequence[ck.TopicPartition]) -> list[BackendPartition]:
    return [BackendPartition(p.topic, p.partition, p.offset, p.error, p.metadata, p.leader_epoch) for p in partitions]


def _metadata(cluster_uri: str, native: Any) -> ClusterMetadata:
    topics = {}
    for name, topic in native.topics.items():
        parts = {
            pid: PartitionMetadata(pid, p.leader, tuple(p.replicas), tuple(p.isrs), p.error)
            for pid, p in topic.partitions.items()
        }
        uri = cluster_uri + name
        topics[uri] = TopicMetadata(uri, parts, topic.error)
    brokers = {bid: BrokerMetadata(bid, b.host, b.port) for bid, b in native.brokers.items()}
    return ClusterMetadata(
        cluster_uri,
        native.cluster_id,
        native.controller_id,
        brokers,
        topics,
        native.orig_broker_id,
        native.orig_broker_name,
    )


def _rebalance(callback: PartitionsCallback | None) -> Any:
    if callback is None:
        return None

    def invoke(_consumer: Any, partitions: list[ck.TopicPartition]) -> None:
        callback(from_native(partitions))

    return invoke


def _trapped(config: Mapping[str, Any]) -> tuple[ck.Producer, Any]:
    """A confluent-kafka producer without a default ``on_delivery``, and the trap keeping its failures."""
    assert _TRAP is not None
    native = {k: v for k, v in config.items() if k != "on_delivery"}
    plugins = [p for p in str(native.get("plugin.library.paths") or "").split(";") if p]
    native["plugin.library.paths"] = ";".join([*plugins, str(_TRAP.__file__)])
    trap = _TRAP.Trap()
    trap.install(True)  # the plugin binds to the trap the creating thread installed
    try:
        producer = ck.Producer(native)
    finally:
        trap.install(False)
    trap.bind(producer)
    return producer, trap


class KafkaProducer(BackendProducer):
    def __init__(self, cluster_uri: str, config: Mapping[str, Any]) -> None:
        super().__init__(cluster_uri)
        native = with_logger(config, cluster_uri, "producer")
        on_delivery = native.get("on_delivery")
        self._trap: Any = None
        self._trap_counts = (0, 0)
        if isinstance(on_delivery, FailureReports) and _TRAP is not None:
            self._on_failure: FailureReports = on_delivery
            self.native, self._trap = _trapped(native)
            self.reports_headers = True
        else:
            self.native = ck.Producer(native)
        self.produce = self.native.produce

    def poll(self, timeout: float) -> int:
        served: int = self.native.poll(timeout)
        if self._trap is not None and len(self._trap):
            served += self._report_trapped()
        return served

    def flush(self, timeout: float) -> int:
        left = int(self.native.flush(timeout))
        if self._trap is not None and len(self._trap):
            self._report_trapped()
        return left

    def _report_trapped(self) -> int:
        """Hand the trapped failures to the ``FailureReports``, as confluent-kafka would have."""
        failures = self._trap.take()
        for code, reason, topic, partition, offset, key, value, timestamp, headers in failures:
            err = ck.KafkaError(code, reason)
            msg = ck.Message(
                topic=topic,
                partition=partition,
                offset=offset,
                key=key,
                value=value,
                headers=headers,
                error=err,
                timestamp=timestamp,
            )
            self._on_failure(err, msg)
        counts = self._trap.counts()
        if counts != self._trap_counts:
            self._trap_counts = counts
            # Either means a confluent-kafka whose record layout the trap does not know, or no memory left.
            _log.error("failure trap out of step", cluster_uri=self.cluster_uri, foreign=counts[0], lost=counts[1])
        return len(failures)

    def purge(self, in_queue: bool, in_flight: bool, blocking: bool) -> None:
        self.native.purge(in_queue=in_queue, in_flight=in_flight, blocking=blocking)

    def __len__(self) -> int:
        return len(self.native) + (len(self._trap) if self._trap is not None else 0)

    def list_topics(self, topic: str | None, timeout: float) -> ClusterMetadata:
        return _metadata(self.cluster_uri, self.native.list_topics(topic, timeout))

    def cluster_id(self, timeout: float) -> str | None:
        found: str | None = self.native.cluster_id(timeout)
        return found

    def init_transactions(self, timeout: float) -> None:
        self.native.init_transactions(timeout)

    def begin_transaction(self) -> None:
        self.native.begin_transaction()

    def commit_transaction(self, timeout: float) -> None:
        self.native.commit_transaction(timeout)

    def abort_transaction(self, timeout: float) -> None:
        self.native.abort_transaction(timeout)

    def send_offsets_to_transaction(
        self, offsets: Sequence[BackendPartition], group_metadata: Any, timeout: float
    ) -> None:
        self.native.send_offsets_to_transaction(to_native(offsets), group_metadata, timeout)

    def close(self, timeout: float = 0.0) -> None:
        # confluent-kafka's close() flushes without a deadline: bound it, then drop what is left.
        if self.native.flush(timeout):
            self.native.purge(in_queue=True, in_flight=True, blocking=False)
            self.native.poll(0)
        if self._trap is not None and len(self._trap):
            self._report_trapped()
        self.native.close()


class KafkaConsumer(BackendConsumer):
    def __init__(self, cluster_uri: str, config: Mapping[str, Any]) -> None:
        super().__init__(cluster_uri)
        self.native = ck.Consumer(with_logger(config, cluster_uri, "consumer"))
        self.poll = self.native.poll
        self.consume = self.native.consume

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: PartitionsCallback | None,
        on_revoke: PartitionsCallback | None,
        on_lost: PartitionsCallback | None,
    ) -> None:
        kwargs = {}
        for name, cb in (("on_assign", on_assign), ("on_revoke", on_revoke), ("on_lost", on_lost)):
            if cb is not None:
                kwargs[name] = _rebalance(cb)
        self.native.subscribe(list(topics), **kwargs)

    def unsubscribe(self) -> None:
        self.native.unsubscribe()

    def assign(self, partitions: Sequence[BackendPartition]) -> None:
        self.native.assign(to_native(partitions))

    def unassign(self) -> None:
        self.native.unassign()

    def incremental_assign(self, partitions: Sequence[BackendPartition]) -> None:
        self.native.incremental_assign(to_native(partitions))

    def incremental_unassign(self, partitions: Sequence[BackendPartition]) -> None:
        self.native.incremental_unassign(to_native(partitions))

    def assignment(self) -> list[BackendPartition]:
        return from_native(self.native.assignment())

    def commit(self, offsets: Sequence[BackendPartition] | None, asynchronous: bool) -> list[BackendPartition]:
        commit: Any = self.native.commit  # its overloads want a literal ``asynchronous``
        if offsets is None:
            result = commit(asynchronous=asynchronous)
        else:
            result = commit(offsets=to_native(offsets), asynchronous=asynchronous)
        return from_native(result) if result else []

    def store_offsets(self, offsets: Sequence[BackendPartition]) -> None:
        self.native.store_offsets(offsets=to_native(offsets))

    def committed(self, partitions: Sequence[BackendPartition], timeout: float) -> list[BackendPartition]:
        return from_native(self.native.committed(to_native(partitions), timeout=timeout))

    def position(self, partitions: Sequence[BackendPartition]) -> list[BackendPartition]:
        return from_native(self.native.position(to_native(partitions)))

    def seek(self, partition: BackendPartition) -> None:
        self.native.seek(to_native([partition])[0])

    def pause(self, partitions: Sequence[BackendPartition]) -> None:
        self.native.pause(to_native(partitions))

    def resume(self, partitions: Sequence[BackendPartition]) -> None:
        self.native.resume(to_native(partitions))

    def get_watermark_offsets(
        self, partition: BackendPartition, timeout: float, cached: bool
    ) -> tuple[int, int] | None:
        found = self.native.get_watermark_offsets(to_native([partition])[0], timeout=timeout, cached=cached)
        return None if found is None else (int(found[0]), int(found[1]))

    def offsets_for_times(self, partitions: Sequence[BackendPartition], timeout: float) -> list[BackendPartition]:
        return from_native(self.native.offsets_for_times(to_native(partitions), timeout=timeout))

    def list_topics(self, topic: str | None, timeout: float) -> ClusterMetadata:
        return _metadata(self.cluster_uri, self.native.list_topics(topic, timeout))

    def consumer_group_metadata(self) -> Any:
        return self.native.consumer_group_metadata()

    def cluster_id(self, timeout: float) -> str | None:
        found: str | None = self.native.cluster_id(timeout)
        return found

    def memberid(self) -> str | None:
        found: str | None = self.native.memberid()
        return found

    def close(self) -> None:
        self.native.close()


class KafkaBackend(Backend):
    """Kafka through confluent-kafka (librdkafka)."""

    name = "kafka"

    def create_producer(self, endpoint: ServiceEndpoint, config: Mapping[str, Any], cluster_uri: str) -> KafkaProducer:
        return KafkaProducer(cluster_uri, native_config(endpoint, config))

    def create_consumer(self, endpoint: ServiceEndpoint, config: Mapping[str, Any], cluster_uri: str) -> KafkaConsumer:
        return KafkaConsumer(cluster_uri, native_config(endpoint, config))
