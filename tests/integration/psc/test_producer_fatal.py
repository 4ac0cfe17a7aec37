"""A real fatal idempotent-producer error: PSC replaces the client and re-produces what it failed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry

import psc
from psc._metrics import ClientMetrics
from psc.common import MetricsRegistry
from tests.integration.psc.support import read_from_start, set_max_message_bytes
from tests.services import Services

TIMEOUT = 30.0


def test_gapless_fatal_error_is_remediated_without_the_application_noticing(
    services: Services, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=1)
    topic_uri = services.cluster_prefix + topic
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    registry = CollectorRegistry()
    config = {
        "psc.project": "it-producer-fatal",
        "psc.discovery.file": services.psc_discovery_file,
        "psc.producer.enable.gapless.guarantee": "true",
        "psc.producer.linger.ms": 50,
        # Every re-produce during the fault fails the new client again: leave room until the fault ends.
        "psc.auto.resolution.retry.count": 50,
        "psc.auto.resolution.backoff.initial.ms": 100,
        "psc.auto.resolution.backoff.max.ms": 300,
    }
    reports: list[Any] = []
    producer = psc.Producer(config, metrics=ClientMetrics(MetricsRegistry("psc", registry)))
    try:
        producer.produce(topic_uri, b"warm-up", on_delivery=lambda e, m: reports.append(e))
        assert producer.flush(TIMEOUT) == 0
        # Batches of several records exceed 120 bytes: the broker rejects them permanently, which an
        # idempotent producer with the gap-less guarantee can only answer with a fatal error.
        set_max_message_bytes(admin, topic, 120)
        time.sleep(1.0)
        values = [f"record-{i:03d}-{'x' * 30}".encode() for i in range(20)]
        for i, value in enumerate(values):
            if i % 2:
                producer.produce(topic_uri, value)  # owned by PSC alone
            else:
                producer.produce(topic_uri, value, on_delivery=lambda e, m: reports.append(e))
        resets = 0.0
        deadline = time.monotonic() + TIMEOUT
        while not resets and time.monotonic() < deadline:
            producer.poll(0.1)  # must not raise
            resets = registry.get_sample_value("psc_client_resets_total", {"topic_uri": services.cluster_prefix}) or 0
        assert resets >= 1, "the fault did not make the producer fail fatally"
        set_max_message_bytes(admin, topic, 1048588)
        assert producer.flush(TIMEOUT) == 0
    finally:
        producer.close(5)
        set_max_message_bytes(admin, topic, 1048588)
    assert reports == [None] * 11
    got = [m.value() for m in read_from_start(services, topic_uri, 21, distinct=True)]
    assert set(values) <= set(got), "records were lost"
