"""Config logging: one record per client start, secrets redacted, the config-log producer not logged."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

import psc
from psc._configlog import report_config
from tests.services import Services

SECRET = "hunter2-do-not-log"


def read_records(services: Services, uri: str, minimum: int, limit_s: float = 15.0) -> list[dict[str, Any]]:
    config = {
        "psc.project": "it-configlog-reader",
        "psc.discovery.file": services.psc_discovery_file,
        "psc.consumer.group.id": f"g-{uuid.uuid4().hex[:8]}",
        "psc.consumer.offset.auto.reset": "earliest",
    }
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + limit_s
    with psc.Consumer(config) as consumer:
        consumer.subscribe([uri])
        while len(records) < minimum and time.monotonic() < deadline:
            records += [json.loads(m.value()) for m in consumer.consume(10, 0.5)]
        records += [json.loads(m.value()) for m in consumer.consume(10, 1.0)]  # anything unexpected
    return records


def test_each_client_reports_its_redacted_config_once(
    services: Services, new_topic: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    log_uri = services.cluster_prefix + new_topic()
    data_uri = services.cluster_prefix + new_topic()
    config = {
        "psc.project": "it-configlog",
        "psc.discovery.file": services.psc_discovery_file,
        "psc.config.logging.enabled": "true",
        "psc.config.logging.topic.uri": log_uri,
        "psc.ssl.key.password": SECRET,
        "psc.producer.sasl.password": SECRET,
    }
    with psc.Producer(config) as producer:
        producer.produce(data_uri, b"x")
        producer.produce(data_uri, b"y")  # a second send does not report again
        producer.flush(10)
    consumer_config = {key: value for key, value in config.items() if not key.startswith("psc.producer.")}
    consumer_config["psc.consumer.group.id"] = "configlog-group"
    with psc.Consumer(consumer_config) as consumer:
        consumer.subscribe([data_uri])

    records = read_records(services, log_uri, 2)
    assert sorted(r["client_type"] for r in records) == ["consumer", "producer"]
    for record in records:
        assert {"config", "host", "timestamp", "project", "client_type", "client_id", "topic_uris"} <= set(record)
        assert record["project"] == "it-configlog"
        assert record["config"]["psc.ssl.key.password"] == "[redacted]"
        assert SECRET not in json.dumps(record)
    [consumer_record] = [r for r in records if r["client_type"] == "consumer"]
    assert consumer_record["topic_uris"] == [data_uri]
    assert consumer_record["config"]["psc.consumer.group.id"] == "configlog-group"
    assert SECRET not in capsys.readouterr().err


def test_config_logging_never_breaks_start_up(services: Services, new_topic: Callable[..., str]) -> None:
    config = {
        "psc.project": "it-configlog",
        "psc.discovery.file": services.psc_discovery_file,
        "psc.config.logging.enabled": "true",
        # A cluster no provider knows: the record cannot be sent, the client must work regardless.
        "psc.config.logging.topic.uri": "plaintext:/rn:kafka:local:local_dev::nowhere:configs",
    }
    data_uri = services.cluster_prefix + new_topic()
    with psc.Producer(config) as producer:
        future = producer.send(data_uri, b"x")
        producer.flush(10)
        assert future.result(1).offset == 0
    pconfig = psc.PscConfig.from_mapping(config, "producer")
    thread = report_config(pconfig, "producer", [data_uri], psc.Producer)
    assert thread is not None
    thread.join(10)
    assert not thread.is_alive()
