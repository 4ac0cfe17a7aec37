"""The PSC sink: writes a topic URI; exactly-once binds its transactional producer to ``psc.cluster.uri``."""

from __future__ import annotations

from typing import Any

from connectors._ports import ProducerPort
from connectors.checkpointing.state import CLUSTER_URI_KEY
from connectors.errors import JobConfigError
from connectors.sinks.base import TXN_TIMEOUT_S, Guarantee, Partitioning, Sink
from psc import parse_topic_uri


class PscSink(Sink):
    """``topic`` is a topic URI; ``config`` holds PSC keys (``psc.project`` at least) and may set
    ``psc.cluster.uri`` (by default the topic URI's cluster)."""

    family = "psc"

    def __init__(
        self,
        topic: str,
        *,
        guarantee: Guarantee = "exactly_once",
        partitioning: Partitioning = "key",
        transaction_timeout_s: float = TXN_TIMEOUT_S,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            topic,
            guarantee=guarantee,
            partitioning=partitioning,
            transaction_timeout_s=transaction_timeout_s,
            config=config,
        )
        try:
            uri = parse_topic_uri(topic)
        except Exception as exc:
            raise JobConfigError(f"PscSink: {topic!r} is not a topic URI ({exc})") from None
        self.cluster_uri: str = self.config.pop(CLUSTER_URI_KEY, None) or uri.cluster_prefix

    def open_port(self, transactional_id: str | None) -> ProducerPort:
        from connectors._psc_adapter import PscProducerPort

        config = {**self.config, "psc.producer.delivery.report.only.error": "true"}
        if transactional_id is not None:
            config["psc.producer.transactional.id"] = transactional_id
            timeout_ms = int(self.transaction_timeout_s * 1000)
            config["psc.producer.transaction.timeout.ms"] = str(timeout_ms)
            # librdkafka requires deliveries to time out no later than the transaction
            delivery_ms = int(config.get("psc.producer.delivery.timeout.ms", timeout_ms))
            config["psc.producer.delivery.timeout.ms"] = str(min(delivery_ms, timeout_ms))
        return PscProducerPort(config, self.cluster_uri)
