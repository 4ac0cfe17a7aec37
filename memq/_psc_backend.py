"""The ``memq`` backend of PSC: ``psc.Producer`` with ``plaintext:/rn:memq:...`` (or ``secure:``) topic URIs.

Discovery maps a MemQ cluster prefix to its brokers: the discovery entry's ``connect`` lists bootstrap
brokers (``host:port,...``), and a ``secure:`` URI gets TLS with the entry's (or ``psc.ssl.*``) certificates.
PSC hands the backend librdkafka-named settings; the ones that mean something for MemQ are translated:

- ``linger.ms`` -> ``linger_ms``; ``batch.size`` -> ``max_request_bytes``;
- ``compression.type``/``compression.codec``: none, gzip and zstd as such; Kafka's lz4 and snappy, which
  MemQ lacks, become zstd (MemQ's default);
- ``delivery.timeout.ms``/``message.timeout.ms`` -> ``request_timeout_ms`` (it covers the acknowledgement);
- ``queue.buffering.max.kbytes`` -> ``max_inflight_bytes``; ``max.in.flight`` -> ``max_inflight_requests``.

Everything else (acks, idempotence, client id, ...) is Kafka's and ignored: a MemQ acknowledgement is always
durable. MemQ topics have one partition as PSC sees them: 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from memq._config import MIB, ProducerConfig, TlsConfig
from memq._producer import DeliveryCallback, Producer
from psc.backends.base import (
    Backend,
    BackendConsumer,
    BackendProducer,
    ClusterMetadata,
    PartitionMetadata,
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
    def __init__(self, cluster_uri: str, producer: Producer, default_report: DeliveryCallback | None) -> None:
        super().__init__(cluster_uri)
        self.native = producer
        self._default_report = default_report

    def produce(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int = -1,
        on_delivery: DeliveryCallback | None = None,
        timestamp: int = 0,
        headers: Any = None,
    ) -> None:
        self.native.produce(
            topic,
            b"" if value is None else value,
            key,
            headers=headers,
            timestamp=timestamp,
            on_delivery=on_delivery or self._default_report,
        )

    def poll(self, timeout: float) -> int:
        return self.native.poll(max(timeout, 0.0))

    def flush(self, timeout: float) -> int:
        return self.native.flush(None if timeout is None or timeout < 0 else timeout)

    def purge(self, in_queue: bool, in_flight: bool, blocking: bool) -> None:
        """Requests already sent cannot be called back; MemQ keeps nothing queued beyond ``linger_ms``."""

    def __len__(self) -> int:
        return len(self.native)

    def list_topics(self, topic: str | None, timeout: float) -> ClusterMetadata:
        found = self.native.list_topics(topic, timeout if timeout and timeout > 0 else 10.0)
        brokers: dict[int, str] = {}
        topics: dict[str, TopicMetadata] = {}
        for md in found:
            ids = []
            for broker in md.write_brokers:
                address = str(broker)
                if address not in brokers.values():
                    brokers[len(brokers)] = address
                ids.append(next(i for i, a in brokers.items() if a == address))
            partition = PartitionMetadata(0, ids[0] if ids else -1, tuple(ids), tuple(ids))
            uri = self.cluster_uri + md.topic
            topics[uri] = TopicMetadata(uri, {0: partition})
        return ClusterMetadata(self.cluster_uri, None, -1, brokers, topics)

    def close(self, timeout: float = 0.0) -> None:
        self.native.close(timeout)


class MemqBackend(Backend):
    name = "memq"

    def create_producer(
        self, endpoint: ServiceEndpoint, config: Mapping[str, Any], cluster_uri: str
    ) -> BackendProducer:
        report = config.get("on_delivery")
        return MemqBackendProducer(cluster_uri, Producer(producer_config(endpoint, config)), report)

    def create_consumer(
        self, endpoint: ServiceEndpoint, config: Mapping[str, Any], cluster_uri: str
    ) -> BackendConsumer:
        raise NotImplementedError("psc.Consumer reads MemQ topics through memq.Consumer, not this backend yet")

    def validate(self, uri: TopicUri) -> None:
        if uri.protocol not in _PROTOCOLS:
            raise InvalidUriError(str(uri), f"MemQ URIs use protocol 'plaintext' or 'secure', not {uri.protocol!r}")
        if not uri.topic or len(uri.topic.encode()) > 249:
            raise InvalidUriError(str(uri), "MemQ topic names have 1 to 249 bytes")

