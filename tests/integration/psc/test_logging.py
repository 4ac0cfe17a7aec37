"""librdkafka's own lines reach the application as ``logging`` records, with the client and cluster URI."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import psc
from tests.services import Services

CLOSED = "plaintext:/rn:kafka:local:local_dev::closed:"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def native_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "psc.librdkafka"]


def wait_for_native(caplog: pytest.LogCaptureFixture, serve: Callable[[], object], limit_s: float = 10.0) -> None:
    """librdkafka hands its lines to the logger only when the client is polled: poll until one arrives."""
    deadline = time.monotonic() + limit_s
    while not native_records(caplog) and time.monotonic() < deadline:
        serve()


def test_connection_failures_are_error_records_naming_the_cluster(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    discovery = tmp_path / "discovery.json"
    discovery.write_text(json.dumps({CLOSED: {"connect": f"127.0.0.1:{closed_port()}"}}))
    caplog.set_level(logging.DEBUG, logger="psc")
    config = {"psc.project": "it-logging", "psc.client.id": "it-logging", "psc.discovery.file": str(discovery)}
    with psc.Producer(config) as producer:
        producer.produce(CLOSED + "nowhere", b"x")
        wait_for_native(caplog, lambda: producer.poll(0.2))
        producer.purge()
    [first, *_] = native_records(caplog)
    assert first.levelno == logging.ERROR
    assert first.cluster_uri == CLOSED and first.client_type == "producer"  # type: ignore[attr-defined]
    assert first.facility == "FAIL" and "Connection refused" in first.getMessage()  # type: ignore[attr-defined]
    assert first.client.startswith("it-logging#producer-")  # type: ignore[attr-defined]

    caplog.clear()
    consumer_config = {**config, "psc.consumer.group.id": "it-logging"}
    with psc.Consumer(consumer_config) as consumer:
        consumer.assign([psc.TopicUriPartition(CLOSED + "nowhere", 0, psc.OFFSET_BEGINNING)])
        wait_for_native(caplog, lambda: consumer.poll(0.2))
    [first, *_] = native_records(caplog)
    assert first.levelno == logging.ERROR and first.client_type == "consumer"  # type: ignore[attr-defined]
    assert first.cluster_uri == CLOSED  # type: ignore[attr-defined]

    caplog.clear()
    admin = psc.AdminClient({**config, "psc.admin.cluster.uri": CLOSED})
    with pytest.raises(psc.KafkaException):
        admin.list_topics(timeout=1)
    wait_for_native(caplog, lambda: admin.poll(0.2))
    [first, *_] = native_records(caplog)
    assert first.levelno == logging.ERROR and first.client_type == "admin"  # type: ignore[attr-defined]
    assert first.cluster_uri == CLOSED  # type: ignore[attr-defined]


def test_a_working_client_writes_nothing_by_default(
    services: Services, new_topic: Callable[..., str], capfd: pytest.CaptureFixture[str]
) -> None:
    topic_uri = services.cluster_prefix + new_topic()
    config = {"psc.project": "it-logging", "psc.discovery.file": services.psc_discovery_file}
    with psc.Producer(config) as producer:
        producer.produce(topic_uri, b"x")
        assert producer.flush(10) == 0
    consumer_config = {**config, "psc.consumer.group.id": "it-logging", "psc.consumer.offset.auto.reset": "earliest"}
    with psc.Consumer(consumer_config) as consumer:
        consumer.subscribe([topic_uri])
        deadline = time.monotonic() + 20
        message = None
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
        assert message is not None and message.value() == b"x"
    out, err = capfd.readouterr()
    assert out == "" and err == ""
