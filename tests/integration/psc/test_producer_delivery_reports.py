"""``psc.producer.delivery.report.only.error`` against a real broker: silent successes, reported failures."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from confluent_kafka.admin import AdminClient

import psc
from tests.integration.psc.support import read_from_start, set_max_message_bytes
from tests.services import Services

TIMEOUT = 30.0


def producer_config(services: Services) -> dict[str, Any]:
    return {
        "psc.project": "it-producer-reports",
        "psc.discovery.file": services.psc_discovery_file,
        "psc.producer.delivery.report.only.error": "true",
    }


def test_successes_are_not_reported(services: Services, new_topic: Callable[..., str]) -> None:
    topic_uri = services.cluster_prefix + new_topic(partitions=2)
    reports: list[Any] = []
    with psc.Producer(producer_config(services)) as producer:
        for i in range(50):
            producer.produce(topic_uri, f"v{i}".encode(), on_delivery=lambda e, m: reports.append(e))
        assert producer.flush(TIMEOUT) == 0
    assert reports == []
    values = [m.value() for m in read_from_start(services, topic_uri, 50)]
    assert sorted(values) == sorted(f"v{i}".encode() for i in range(50))


def test_failures_reach_the_callback(services: Services, kafka_bootstrap: str, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=1)
    set_max_message_bytes(AdminClient({"bootstrap.servers": kafka_bootstrap}), topic, 200)
    reports: list[Any] = []
    with psc.Producer(producer_config(services)) as producer:
        # Random bytes: lz4 must not shrink the record under the topic's limit.
        producer.produce(services.cluster_prefix + topic, os.urandom(1000), on_delivery=lambda e, m: reports.append(e))
        producer.flush(TIMEOUT)
    [error] = reports
    assert isinstance(error, psc.KafkaError) and error.name() == "MSG_SIZE_TOO_LARGE"
