"""The Kafka source (confluent-kafka): splits are (topic, partition)."""

from __future__ import annotations

from connectors._kafka import KafkaConsumerPort
from connectors._ports import ConsumerPort
from connectors.sources.base import Source


class KafkaSource(Source):
    """``config`` holds librdkafka consumer settings, at least ``bootstrap.servers``."""

    family = "kafka"

    def open_port(self, group_id: str) -> ConsumerPort:
        return KafkaConsumerPort(
            {
                **self.config,
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "isolation.level": "read_committed",
            }
        )
