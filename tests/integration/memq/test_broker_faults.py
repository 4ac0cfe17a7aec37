"""The broker against S3 (moto), with storage or Kafka failing, and behind TLS."""

from __future__ import annotations

import socket
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from memq._config import TlsConfig
from memq._format import iter_object_records
from memq._producer import Producer, ProducerError
from memq._wire import ResponseCode
from tests.integration.memq.brokers import (
    BrokerProcess,
    S3Proxy,
    broker_config,
    read_notifications,
    self_signed_certificate,
)
from tests.services import Services


@pytest.fixture
def bucket(services: Services) -> Iterator[tuple[Any, str]]:
    s3 = boto3.client(
        "s3",
        endpoint_url=services.s3_endpoint_url,
        aws_access_key_id="memq",
        aws_secret_access_key="memq",
        region_name="us-east-1",
    )
    name = f"memq-it-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    yield s3, name
    for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def start_broker(tmp_path: Path, kafka_bootstrap: str) -> Iterator[Callable[..., BrokerProcess]]:
    started: list[BrokerProcess] = []

    def start(topics: list[dict[str, Any]], **extra: Any) -> BrokerProcess:
        config = broker_config(tmp_path / "objects", topics, kafka_bootstrap, **extra)
        started.append(BrokerProcess(config, tmp_path).start())
        return started[-1]

    yield start
    for broker in started:
        broker.stop()


def test_objects_go_to_s3_under_hash_prefixes_and_are_announced_by_bucket_and_key(
    start_broker: Callable[..., BrokerProcess],
    bucket: tuple[Any, str],
    services: Services,
    new_topic: Callable[..., str],
    kafka_bootstrap: str,
) -> None:
    s3, name = bucket
    notify = new_topic()
    broker = start_broker(
        [{"name": "s3-topic", "notification_topic": notify, "batch_max_ms": 200}],
        storage=f"s3://{name}/memq",
        s3_endpoint_url=services.s3_endpoint_url,
    )
    with Producer(brokers=[broker.address], linger_ms=0) as producer:
        futures = [producer.send("s3-topic", b"s3-%d" % i, key=b"k%d" % i) for i in range(20)]
        for future in futures:
            future.result(30)
    values = []
    notifications = read_notifications(kafka_bootstrap, notify)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics", timeout=10).read().decode()
    assert f'memq_broker_storage_requests_total{{operation="PutObject"}} {len(notifications)}.0' in metrics
    for notification in notifications:
        assert notification.bucket == name and notification.key is not None
        prefix, path, *_ = notification.key.split("/")
        assert len(prefix) == 2 and int(prefix, 16) >= 0 and path == "memq"
        data = s3.get_object(Bucket=name, Key=notification.key)["Body"].read()
        assert len(data) == notification.object_size
        values += [record.value for *_, record in iter_object_records(data)]
    assert sorted(values) == sorted(b"s3-%d" % i for i in range(20))


def test_storage_that_keeps_failing_answers_502_and_announces_nothing(
    start_broker: Callable[..., BrokerProcess],
    services: Services,
    new_topic: Callable[..., str],
    kafka_bootstrap: str,
) -> None:
    notify = new_topic()
    broker = start_broker(
        [{"name": "doomed", "notification_topic": notify, "batch_max_ms": 100}],
        storage=f"s3://memq-missing-{uuid.uuid4().hex[:8]}/x?max_attempts=1",  # no such bucket: every PUT fails
        s3_endpoint_url=services.s3_endpoint_url,
        upload_attempts=2,
        upload_backoff_s=0.1,
    )
    failing = pytest.raises(ProducerError, match="upload failed after 2 attempts")
    with Producer(brokers=[broker.address], linger_ms=0) as producer, failing as caught:
        producer.send("doomed", b"lost").result(30)
    assert caught.value.code == ResponseCode.REQUEST_FAILED
    assert read_notifications(kafka_bootstrap, notify) == []
    assert "upload_failed" in broker.log()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_kafka_down_while_announcing_means_no_ack(start_broker: Callable[..., BrokerProcess], tmp_path: Path) -> None:
    broker = start_broker(
        [{"name": "unannounced", "notification_topic": "nowhere", "batch_max_ms": 100}],
        notification_bootstrap=f"127.0.0.1:{_free_port()}",  # nothing listens there
        notify_timeout_s=2.0,
    )
    failing = pytest.raises(ProducerError, match="notification failed")
    with Producer(brokers=[broker.address], linger_ms=0) as producer, failing as caught:
        producer.send("unannounced", b"stored, never announced").result(30)
    assert caught.value.code == ResponseCode.REQUEST_FAILED
    # The object stays in storage, unannounced: no consumer reads it, and the producer was told to resend.
    assert [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]


def test_tls_broker_serves_tls_producers_only(
    start_broker: Callable[..., BrokerProcess],
    tmp_path: Path,
    new_topic: Callable[..., str],
    kafka_bootstrap: str,
) -> None:
    cert_file, key_file = self_signed_certificate(tmp_path)
    notify = new_topic()
    broker = start_broker(
        [{"name": "secret", "notification_topic": notify, "batch_max_ms": 100}],
        tls={"cert_file": str(cert_file), "key_file": str(key_file)},
    )
    with Producer(brokers=[broker.address], linger_ms=0, tls=TlsConfig(ca_file=str(cert_file))) as producer:
        assert producer.send("secret", b"over tls").result(30).error() is None
    with (
        Producer(brokers=[broker.address], linger_ms=0, request_timeout_ms=3000) as plain,
        pytest.raises(ProducerError),
    ):
        plain.send("secret", b"in the clear").result(30)
    assert len(read_notifications(kafka_bootstrap, notify)) == 1


def test_s3_5xx_responses_are_retried_with_new_keys_until_one_upload_lands(
    start_broker: Callable[..., BrokerProcess],
    bucket: tuple[Any, str],
    services: Services,
    new_topic: Callable[..., str],
    kafka_bootstrap: str,
) -> None:
    s3, name = bucket
    proxy = S3Proxy(services.s3_endpoint_url)
    proxy.fail_next = 2  # the first two PUTs get 503 Slow Down
    notify = new_topic()
    try:
        broker = start_broker(
            [{"name": "flaky", "notification_topic": notify, "batch_max_ms": 100}],
            storage=f"s3://{name}/flaky?max_attempts=1",  # no retries inside boto: the broker's own count
            s3_endpoint_url=proxy.url,
            upload_backoff_s=0.1,
        )
        with Producer(brokers=[broker.address], linger_ms=0) as producer:
            assert producer.send("flaky", b"eventually").result(30).error() is None
        ((notification),) = read_notifications(kafka_bootstrap, notify)
        # Each broker attempt failed on a 503 (the HTTP client may spend both on one attempt); the winner is named.
        assert proxy.failed == 2 and notification.attempts >= 1 and notification.key is not None
        assert f"_{notification.attempts}_" in notification.key  # every attempt writes its own key
        data = s3.get_object(Bucket=name, Key=notification.key)["Body"].read()
        assert [r.value for *_, r in iter_object_records(data)] == [b"eventually"]
        assert broker.log().count("upload_failed") == notification.attempts
    finally:
        proxy.close()
