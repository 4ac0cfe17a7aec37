"""The Kafka sink (confluent-kafka)."""

from __future__ import annotations

from connectors._kafka import KafkaProducerPort
from connectors._ports import ProducerPort
from connectors.sinks.base import Sink


class KafkaSink(Sink):
    """``config`` holds librdkafka producer settings, at least ``bootstrap.servers``."""

    family = "kafka"

    def open_port(self, transactional_id: str | None) -> ProducerPort:
        config = {**self.config, "enable.idempotence": True, "acks": "all", "delivery.report.only.error": True}
        if transactional_id is not None:
            config["transactional.id"] = transactional_id
            config["transaction.timeout.ms"] = int(self.transaction_timeout_s * 1000)
        return KafkaProducerPort(config)
