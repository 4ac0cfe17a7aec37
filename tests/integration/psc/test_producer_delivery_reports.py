"""``psc.producer.delivery.report.only.error`` against a real broker: silent successes, reported failures."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

import psc
from tests.services import Services

TIMEOUT = 30.0


def producer_config(services: Services) -> dict[str, Any]:
    return {
        "psc.project": "it-producer-reports",
        "psc.discovery.file": services.psc_discovery_file,
        "psc.producer.delivery.report.only.error": "true",
    }


def read_values(services: Services, topic_uri: str, count: int) -> list[bytes]:
    config = {
        "psc.project": "it-producer-reports",
        "psc.discovery.file": services.psc_discovery_file,
        "psc.consumer.group.id": f"g-{uuid.uuid4().hex[:8]}",
        "psc.consumer.offset.auto.reset": "earliest",
    }
    out: list[bytes] = []
    with psc.Consumer(config) as consumer:
        consumer.subscribe([topic_uri])
        for _ in range(60):
            out += [m.value() or b"" for m in consumer.consume(count - len(out), 0.5)]
            if len(out) >= count:
                break
    return out


def test_successes_are_not_reported(services: Services, new_topic: Callable[..., str]) -> None:
    topic_uri = services.cluster_prefix + new_topic(partitions=2)
    reports: list[Any] = []
    with psc.Producer(producer_config(services)) as producer:
        for i in range(50):
            producer.produce(topic_uri, f"v{i}".encode(), on_delivery=lambda e, m: reports.append(e))
        assert producer.flush(TIMEOUT) == 0
    assert reports == []
    assert sorted(read_values(services, topic_uri, 50)) == sorted(f"v{i}".encode() for i in range(50))


def test_failures_reach_the_callback(services: Services, kafka_bootstrap: str, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=1)
    entry = ConfigEntry("max.message.bytes", "200", incremental_operation=AlterConfigOpType.SET)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.incremental_alter_configs(
        [ConfigResource("TOPIC", topic, incremental_configs=[entry])]
    ).values():
        future.result(TIMEOUT)
    reports: list[Any] = []
    with psc.Producer(producer_config(services)) as producer:
        # Random bytes: lz4 must not shrink the record under the topic's limit.
        producer.produce(services.cluster_prefix + topic, os.urandom(1000), on_delivery=lambda e, m: reports.append(e))
        producer.flush(TIMEOUT)
    [error] = reports
    assert isinstance(error, psc.BackendError) and error.name == "MSG_SIZE_TOO_LARGE"
