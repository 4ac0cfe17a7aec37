"""psc.Producer with memq topic URIs: discovery maps the memq cluster prefix to the brokers."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import psc
from tests.integration.memq.brokers import (
    BrokerProcess,
    broker_config,
    read_notifications,
    self_signed_certificate,
    stored_records,
)

CLUSTER = "plaintext:/rn:memq:local:local_dev::memqit:"


@pytest.fixture
def memq_cluster(
    tmp_path: Path, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> Iterator[tuple[list[BrokerProcess], str, Path]]:
    """Two brokers serving one topic, and a discovery file naming both under the cluster prefix."""
    notify = new_topic()
    topics = [{"name": "clicks", "notification_topic": notify, "batch_max_ms": 200}]
    first = BrokerProcess(broker_config(tmp_path / "objects", topics, kafka_bootstrap), tmp_path).start()
    config = broker_config(tmp_path / "objects", topics, kafka_bootstrap, cluster_brokers=[first.address])
    second = BrokerProcess(config, tmp_path).start()
    discovery = tmp_path / "discovery.json"
    discovery.write_text(json.dumps({CLUSTER: {"connect": f"{second.address}"}}))
    try:
        yield [first, second], notify, discovery
    finally:
        second.stop()
        first.stop()


def _producer(discovery: Path, **extra: Any) -> psc.Producer:
    return psc.Producer({"psc.project": "memq-it", "psc.discovery.file": str(discovery), **extra})


def test_psc_producer_writes_memq_records_with_callbacks_and_futures(
    memq_cluster: tuple[list[BrokerProcess], str, Path], kafka_bootstrap: str
) -> None:
    _brokers, notify, discovery = memq_cluster
    producer = _producer(discovery, **{"psc.producer.linger.ms": "20"})
    reports: list[tuple[Any, Any]] = []
    for i in range(50):
        producer.produce(
            CLUSTER + "clicks",
            b"value-%d" % i,
            key=b"key-%d" % i,
            headers=[("n", b"%d" % i)],
            on_delivery=lambda err, msg: reports.append((err, msg)),
        )
    future = producer.send(CLUSTER + "clicks", b"by-future", key=b"f")
    assert producer.flush(30) == 0
    message_id = future.result(0)
    assert message_id.topic_uri == CLUSTER + "clicks"
    assert len(reports) == 50 and all(err is None for err, _ in reports)
    assert reports[0][1].topic_uri == CLUSTER + "clicks"
    producer.close()
    stored = {record.value: record for _n, record in stored_records(read_notifications(kafka_bootstrap, notify))}
    assert set(stored) == {b"value-%d" % i for i in range(50)} | {b"by-future"}
    assert stored[b"value-7"].key == b"key-7" and stored[b"value-7"].headers == (("n", b"7"),)


def test_psc_producer_fails_over_to_the_other_broker(
    memq_cluster: tuple[list[BrokerProcess], str, Path], kafka_bootstrap: str
) -> None:
    brokers, notify, discovery = memq_cluster
    producer = _producer(discovery, **{"psc.producer.linger.ms": "0"})
    before = producer.send(CLUSTER + "clicks", b"before")
    assert producer.flush(30) == 0
    assert before.result(0).topic_uri == CLUSTER + "clicks"
    brokers[1].stop()  # the bootstrap broker goes away; the first one, listed in metadata, remains
    afters = [producer.send(CLUSTER + "clicks", b"after-%d" % i) for i in range(6)]
    assert producer.flush(30) == 0
    assert all(f.result(0).topic_uri == CLUSTER + "clicks" for f in afters)
    producer.close()
    values = {record.value for _n, record in stored_records(read_notifications(kafka_bootstrap, notify))}
    assert {b"before"} | {b"after-%d" % i for i in range(6)} <= values


def test_memq_uri_with_a_bad_protocol_is_rejected(tmp_path: Path) -> None:
    discovery = tmp_path / "discovery.json"
    discovery.write_text(json.dumps({CLUSTER: {"connect": "127.0.0.1:20000"}}))
    producer = _producer(discovery)
    with pytest.raises(psc.InvalidUriError, match="MemQ URIs use protocol"):
        producer.produce("tls:/rn:memq:local:local_dev::memqit:clicks", b"x")
    producer.close()


def test_psc_consumer_reads_memq_topics_with_packed_offsets_and_exact_commits(
    memq_cluster: tuple[list[BrokerProcess], str, Path], kafka_bootstrap: str
) -> None:
    _brokers, _notify, discovery = memq_cluster
    producer = _producer(discovery, **{"psc.producer.linger.ms": "5000"})
    for i in range(10):
        producer.produce(CLUSTER + "clicks", b"c-%d" % i, key=b"k-%d" % i, headers=[("i", b"%d" % i)])
        if i % 5 == 4:
            assert producer.flush(30) == 0  # one request, so one object, per five records
    producer.close()

    group = f"memq-it-{uuid.uuid4().hex[:8]}"
    settings = {
        "psc.project": "memq-it",
        "psc.discovery.file": str(discovery),
        "psc.consumer.group.id": group,
        "psc.consumer.offset.auto.reset": "earliest",
    }
    consumer = psc.Consumer(settings)
    consumer.subscribe([CLUSTER + "clicks"])
    first = _read(consumer, 4)
    assert [m.value() for m in first] == [b"c-%d" % i for i in range(4)]
    assert first[1].key() == b"k-1" and first[1].headers() == [("i", b"1")]
    assert first[0].topic() == CLUSTER + "clicks"
    offsets = [m.offset() or 0 for m in first]
    assert offsets == [offsets[0] + i for i in range(4)]  # packed: notification offset << 19 | record index
    assert offsets[0] & 0x7FFFF == 0
    consumer.commit(first[-1], asynchronous=False)
    consumer.close()

    again = psc.Consumer(settings)
    again.subscribe([CLUSTER + "clicks"])
    rest = _read(again, 6)
    # Resumed mid-object, right after the committed record, then on to the next object.
    assert [m.value() for m in rest] == [b"c-%d" % i for i in range(4, 10)]
    assert (rest[1].offset() or 0) >> 19 > offsets[0] >> 19
    again.close()


def _read(consumer: psc.Consumer, count: int) -> list[psc.Message]:
    found: list[psc.Message] = []
    deadline = time.monotonic() + 60
    while len(found) < count and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None:
            found.append(message)
    assert len(found) == count, f"read {len(found)} of {count}"
    return found


def test_secure_uri_gets_tls(tmp_path: Path, kafka_bootstrap: str, new_topic: Callable[..., str]) -> None:
    cert_file, key_file = self_signed_certificate(tmp_path)
    notify = new_topic()
    topics = [{"name": "sealed", "notification_topic": notify, "batch_max_ms": 100}]
    tls = {"cert_file": str(cert_file), "key_file": str(key_file)}
    broker = BrokerProcess(broker_config(tmp_path / "objects", topics, kafka_bootstrap, tls=tls), tmp_path).start()
    secure = "secure:/rn:memq:local:local_dev::memqtls:"
    discovery = tmp_path / "secure.json"
    discovery.write_text(json.dumps({secure: {"connect": broker.address, "ssl.ca.location": str(cert_file)}}))
    try:
        producer = _producer(discovery)
        future = producer.send(secure + "sealed", b"private")
        assert producer.flush(30) == 0
        assert future.result(0).topic_uri == secure + "sealed"
        producer.close()
    finally:
        broker.stop()
    assert [r.value for _n, r in stored_records(read_notifications(kafka_bootstrap, notify))] == [b"private"]
