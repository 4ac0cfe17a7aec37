"""PSC behind the source and sink ports: the only module that calls ``psc`` clients.

``psc.Consumer`` and ``psc.Producer`` take confluent-kafka's call shapes with topic URIs for topic names,
so these are the Kafka ports with PSC's client and partition types; what differs is binding a
transactional producer to its cluster and closing the producer.
"""

from __future__ import annotations

from typing import Any

import psc
from connectors._kafka import KafkaConsumerPort, KafkaProducerPort


class PscConsumerPort(KafkaConsumerPort):
    client = psc.Consumer
    partition_type = psc.TopicPartition


class PscProducerPort(KafkaProducerPort):
    client = psc.Producer

    def __init__(self, config: dict[str, Any], cluster_uri: str | None) -> None:
        super().__init__(config)
        self._cluster_uri = cluster_uri

    def init_transactions(self, timeout: float) -> None:
        # PSC defers init_transactions until the producer knows its cluster; binding it first makes the
        # call fence a previous owner of the transactional id now, before the restore reads the witness.
        if self._cluster_uri is not None:
            self._producer.list_topics(self._cluster_uri, timeout)
        self._producer.init_transactions(timeout)

    def close(self) -> None:
        self._producer.close(5)
