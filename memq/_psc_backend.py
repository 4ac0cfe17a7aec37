"""The ``memq`` backend of PSC: ``psc.Producer`` and ``psc.Consumer`` with ``plaintext:/rn:memq:...`` topic URIs.

Discovery maps a MemQ cluster prefix to its brokers: the discovery entry's ``connect`` lists bootstrap
brokers (``host:port,...``), and a ``secure:`` URI gets TLS with the entry's (or ``psc.ssl.*``) certificates.
PSC hands the backend librdkafka-named settings; the ones that mean something for MemQ are translated:

- ``linger.ms`` -> ``linger_ms``; ``batch.size`` -> ``max_request_bytes``;
- ``compression.type``/``compression.codec``: none, gzip and zstd as such; Kafka's lz4 and snappy, which
  MemQ lacks, become zstd (MemQ's default);
- ``delivery.timeout.ms``/``message.timeout.ms`` -> ``request_timeout_ms`` (it covers the acknowledgement);
- ``queue.buffering.max.kbytes`` -> ``max_inflight_bytes``; ``max.in.flight`` -> ``max_inflight_requests``;
- ``delivery.report.only.error`` -> ``delivery_report_only_error``.

Everything else (acks, idempotence, client id, ...) is Kafka's and ignored: a MemQ acknowledgement is always
durable. Produced records report partition 0 and no offset (MemQ assigns offsets when objects are announced).

The consumer wraps :class:`memq.Consumer`: TOPIC_METADATA names each topic's notification topic and the
Kafka cluster it lives on, and the notification topic's partitions are the MemQ topic's partitions as PSC
sees them. Offsets are packed (notification offset << 19 | record index in the object), and commits keep
the exact position. Group membership is the notification consumer's: ``subscribe`` only; manual assignment,
pause/resume and offsets-for-times are not offered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import psc
from memq._config import MIB, ProducerConfig, TlsConfig
from memq._consumer import _METADATA_PREFIX, Consumer, unpack_offset
from memq._producer import Producer
from memq._wire import TopicMetadata as WireTopicMetadata
from psc.backends.base import (
    Backend,
    BackendConsumer,
    BackendPartition,
    BackendProducer,
    BrokerMetadata,
    ClusterMetadata,
    PartitionMetadata,
    PartitionsCallback,
    TopicMetadata,
)
from psc.errors import InvalidUriError

if TYPE_CHECKING:
    from psc._discovery import ServiceEndpoint
    from psc._uri import TopicUri

__all__ = ["MemqBackend", "producer_config"]

_PROTOCOLS = ("plaintext", "secure")
_SECURE = {"SSL", "SASL_SSL"}


def producer_config(endpoint: ServiceEndpoint, native: Mapping[str, Any]) -> ProducerConfig:
    """A :class:`ProducerConfig` from a discovered endpoint and PSC's librdkafka-named settings."""
    settings: dict[str, Any] = {"brokers": [b.strip() for b in endpoint.bootstrap.split(",") if b.strip()]}
    if "linger.ms" in native:
        settings["linger_ms"] = int(float(native["linger.ms"]))
    if "batch.size" in native:
        settings["max_request_bytes"] = min(max(int(native["batch.size"]), 1024), 4 * MIB - 1024)
    codec = native.get("compression.type", native.get("compression.codec"))
    if codec is not None:
        settings["compression"] = codec if codec in ("none", "gzip", "zstd") else "zstd"
    timeout = native.get("delivery.timeout.ms", native.get("message.timeout.ms"))
    if timeout is not None and int(timeout) > 0:
        settings["request_timeout_ms"] = int(timeout)
    if "queue.buffering.max.kbytes" in native:
        settings["max_inflight_bytes"] = int(native["queue.buffering.max.kbytes"]) * 1024
    if str(native.get("delivery.report.only.error", "")).lower() == "true":
        settings["delivery_report_only_error"] = True
    if "max.in.flight" in native:
        settings["max_inflight_requests"] = int(native["max.in.flight"])
    security = endpoint.security
    if security.get("security.protocol", "").upper() in _SECURE:
        settings["tls"] = TlsConfig(
            ca_file=security.get("ssl.ca.location"),
            cert_file=security.get("ssl.certificate.location"),
            key_file=security.get("ssl.key.location"),
            verify=security.get("enable.ssl.certificate.verification", "true").lower() != "false",
        )
    return ProducerConfig.model_validate(settings)


class MemqBackendProducer(BackendProducer):
    def __init__(self, cluster_uri: str, producer: Producer) -> None:
        super().__init__(cluster_uri)
        self.native = producer
        # produce(topic, value, key, partition, on_delivery, timestamp, headers), PSC's order, straight into the
        # producer (in C when built): no Python frame per record on this path.
        self.produce = producer.psc_produce

    def poll(self, timeout: float) -> int:
        return self.native.poll(max(timeout, 0.0))

    def flush(self, timeout: float) -> int:
        return self.native.flush(None if timeout is None or timeout < 0 else timeout)

    def purge(self, in_queue: bool, in_flight: bool, blocking: bool) -> None:
        """Requests already sent cannot be called back; MemQ keeps nothing queued beyond ``linger_ms``."""

    def __len__(self) -> int:
        return len(self.native)

    def list_topics(self, topic: str | None, timeout: float) -> ClusterMetadata:
        return _cluster_metadata(self.cluster_uri, self.native.list_topics(topic, _seconds(timeout)))

    def close(self, timeout: float = 0.0) -> None:
        self.native.close(timeout)


class MemqBackend(Backend):
    name = "memq"

    def create_producer(
        self, endpoint: ServiceEndpoint, config: Mapping[str, Any], cluster_uri: str
    ) -> BackendProducer:
        report = config.get("on_delivery")
        return MemqBackendProducer(cluster_uri, Producer(producer_config(endpoint, config), on_delivery=report))

    def create_consumer(
        self, endpoint: ServiceEndpoint, config: Mapping[str, Any], cluster_uri: str
    ) -> BackendConsumer:
        return MemqBackendConsumer(cluster_uri, producer_config(endpoint, {}), config)

    def validate(self, uri: TopicUri) -> None:
        if uri.protocol not in _PROTOCOLS:
            raise InvalidUriError(str(uri), f"MemQ URIs use protocol 'plaintext' or 'secure', not {uri.protocol!r}")
        if not uri.topic or len(uri.topic.encode()) > 249:
            raise InvalidUriError(str(uri), "MemQ topic names have 1 to 249 bytes")


def _seconds(timeout: float | None) -> float:
    return timeout if timeout is not None and timeout > 0 else 10.0


def _cluster_metadata(cluster_uri: str, found: list[WireTopicMetadata]) -> ClusterMetadata:
    ids: dict[str, int] = {}  # broker address -> the id it is listed under
    brokers: dict[int, BrokerMetadata] = {}
    topics: dict[str, TopicMetadata] = {}
    for md in found:
        for broker in md.write_brokers:
            if str(broker) not in ids:
                ids[str(broker)] = len(ids)
                brokers[ids[str(broker)]] = BrokerMetadata(ids[str(broker)], broker.host, broker.port)
        replicas = tuple(ids[str(broker)] for broker in md.write_brokers)
        partition = PartitionMetadata(0, replicas[0] if replicas else -1, replicas, replicas)
        uri = cluster_uri + md.topic
        topics[uri] = TopicMetadata(uri, {0: partition})
    return ClusterMetadata(cluster_uri, None, -1, brokers, topics)


class _Record(tuple):  # type: ignore[type-arg]
    """A consumed MemQ record shaped like confluent-kafka's ``Message``; ``topic()`` is the MemQ topic.

    The fields of a :class:`ConsumerRecord` in its order: the consumer makes records of this type directly, in
    C, instead of a ConsumerRecord and a wrapper around it (one object and one Python frame fewer per record).
    """

    __slots__ = ()

    def topic(self) -> str:
        return self[0]  # type: ignore[no-any-return]

    def partition(self) -> int:
        return self[2]  # type: ignore[no-any-return]

    def offset(self) -> int:
        return self[3]  # type: ignore[no-any-return]

    def timestamp(self) -> tuple[int, int]:
        return (1, self[7])

    def key(self) -> bytes | None:
        return self[4]  # type: ignore[no-any-return]

    def value(self) -> bytes:
        return self[5]  # type: ignore[no-any-return]

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return list(self[6]) or None

    def error(self) -> None:
        return None


# Native settings that configure the notification consumer (PSC passes librdkafka names).
_CONSUMER_KEYS = ("group.id", "auto.offset.reset", "enable.auto.commit", "auto.commit.interval.ms", "client.id")


class MemqBackendConsumer(BackendConsumer):
    """Reads MemQ topics through :class:`memq.Consumer` on their notification topics."""

    def __init__(self, cluster_uri: str, brokers: ProducerConfig, native: Mapping[str, Any]) -> None:
        super().__init__(cluster_uri)
        self._brokers = brokers
        self._native = {k: str(v) for k, v in native.items() if k in _CONSUMER_KEYS}
        self._consumer: Consumer | None = None
        self._uris: dict[str, str] = {}  # memq topic -> notification topic URI
        self._topics: dict[str, str] = {}  # notification topic URI -> memq topic

    def _metadata(self, topics: Sequence[str] | None) -> list[WireTopicMetadata]:
        with Producer(self._brokers) as client:
            if topics is None:
                return client.list_topics(None)
            return [md for topic in topics for md in client.list_topics(topic) if md.topic == topic]

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: PartitionsCallback | None,
        on_revoke: PartitionsCallback | None,
        on_lost: PartitionsCallback | None,
    ) -> None:
        found = {md.topic: md for md in self._metadata(topics)}
        missing = [t for t in topics if t not in found or "notificationTopic" not in found[t].properties]
        if missing:
            raise psc.ConsumerError(f"MemQ brokers {self._brokers.brokers} do not serve topics {missing}")
        bootstrap = {md.properties.get("notificationBootstrap", "") for md in found.values()} - {""}
        endpoints = {md.properties.get("s3EndpointUrl", "") for md in found.values()} - {""}
        if len(bootstrap) > 1:
            raise psc.ConsumerError(f"topics {list(topics)} announce on different Kafka clusters: {bootstrap}")
        for topic, md in found.items():
            uri = md.properties["notificationCluster"] + md.properties["notificationTopic"]
            self._uris[topic], self._topics[uri] = uri, topic
        if self._consumer is None:
            config = {"psc.project": self._native.get("client.id", "memq-consumer")}
            config.update({f"psc.consumer.{k}": v for k, v in self._native.items() if k != "client.id"})
            if bootstrap:
                config["psc.discovery.connect"] = bootstrap.pop()
            # Objects on an S3-compatible endpoint are read where the brokers wrote them.
            storage = {"endpoint_url": endpoints.pop()} if len(endpoints) == 1 else None
            self._consumer = Consumer(config, storage_options=storage, _record_type=_Record)
        for md in found.values():
            url = urlsplit(md.properties.get("storage", ""))
            if url.scheme == "s3" and url.netloc:
                self._consumer.open_bucket(url.netloc)
        self._consumer.subscribe([self._uris[t] for t in topics])

    def _inner(self) -> Consumer:
        if self._consumer is None:
            raise psc.ConsumerError("subscribe to MemQ topics first")
        return self._consumer

    def poll(self, timeout: float) -> _Record | None:
        record = self._inner().poll(None if timeout is None or timeout < 0 else timeout)
        return record  # type: ignore[return-value]  # made as _Record (see subscribe)

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        records = self._inner().consume(num_messages, None if timeout is None or timeout < 0 else timeout)
        return records  # made as _Records (see subscribe)

    def unsubscribe(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _partition(self, uri: str, partition: int, offset: int) -> BackendPartition:
        return BackendPartition(self._topics.get(uri, uri), partition, offset)

    def assignment(self) -> list[BackendPartition]:
        if self._consumer is None:
            return []
        return [self._partition(uri, partition, -1001) for uri, partition in self._consumer.assignment()]

    def commit(self, offsets: Sequence[BackendPartition] | None, asynchronous: bool) -> list[BackendPartition]:
        consumer = self._inner()
        if offsets is None:
            consumer.commit(asynchronous=asynchronous)
            return [self._partition(uri, p, offset) for (uri, p), offset in consumer.position().items()]
        exact = []
        for part in offsets:
            notification_offset, index = unpack_offset(part.offset)
            metadata = f"{_METADATA_PREFIX}{index}" if index else None
            exact.append(psc.TopicUriPartition(self._uris[part.topic], part.partition, notification_offset, metadata))
        consumer._inner.commit(offsets=exact, asynchronous=asynchronous)
        return list(offsets)

    def committed(self, partitions: Sequence[BackendPartition], timeout: float) -> list[BackendPartition]:
        asked = [psc.TopicUriPartition(self._uris[p.topic], p.partition) for p in partitions]
        found = []
        for tp in self._inner()._inner.committed(asked, timeout) or []:
            metadata = tp.metadata or ""
            index = int(metadata[len(_METADATA_PREFIX) :]) if metadata.startswith(_METADATA_PREFIX) else 0
            offset = tp.offset << 19 | index if tp.offset >= 0 else tp.offset
            found.append(self._partition(tp.topic_uri, tp.partition, offset))
        return found

    def position(self, partitions: Sequence[BackendPartition]) -> list[BackendPartition]:
        known = self._inner().position() if self._consumer is not None else {}
        return [p._replace(offset=known.get((self._uris.get(p.topic, ""), p.partition), -1001)) for p in partitions]

    def seek(self, partition: BackendPartition) -> None:
        self._inner().seek(self._uris[partition.topic], partition.partition, partition.offset)

    def list_topics(self, topic: str | None, timeout: float) -> ClusterMetadata:
        return _cluster_metadata(self.cluster_uri, self._metadata(None if topic is None else [topic]))

    def consumer_group_metadata(self) -> Any:
        return None

    def close(self) -> None:
        self.unsubscribe()

    def _unsupported(self, what: str) -> NotImplementedError:
        return NotImplementedError(f"MemQ consumers {what}; use subscribe()")

    def assign(self, partitions: Sequence[BackendPartition]) -> None:
        raise self._unsupported("read whole notification partitions in a group")

    def unassign(self) -> None:
        raise self._unsupported("read whole notification partitions in a group")

    def incremental_assign(self, partitions: Sequence[BackendPartition]) -> None:
        raise self._unsupported("read whole notification partitions in a group")

    def incremental_unassign(self, partitions: Sequence[BackendPartition]) -> None:
        raise self._unsupported("read whole notification partitions in a group")

    def pause(self, partitions: Sequence[BackendPartition]) -> None:
        raise self._unsupported("cannot pause partitions")

    def resume(self, partitions: Sequence[BackendPartition]) -> None:
        raise self._unsupported("cannot pause partitions")

    def get_watermark_offsets(
        self, partition: BackendPartition, timeout: float, cached: bool
    ) -> tuple[int, int] | None:
        raise self._unsupported("have no watermarks per record")

    def offsets_for_times(self, partitions: Sequence[BackendPartition], timeout: float) -> list[BackendPartition]:
        raise self._unsupported("cannot look offsets up by time")
