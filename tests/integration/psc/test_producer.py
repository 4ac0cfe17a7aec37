"""The PSC producer against a real broker: every public method, and bad input rejected before the broker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import psc
from tests.integration.psc.support import RECENT_MS, read_from_start
from tests.services import Services

TIMEOUT = 15.0


@pytest.fixture
def config(services: Services) -> dict[str, Any]:
    return {"psc.project": "it-producer", "psc.discovery.file": services.psc_discovery_file}


@pytest.fixture
def topic_uri(services: Services, new_topic: Callable[..., str]) -> str:
    return services.cluster_prefix + new_topic(partitions=2)


def test_produce_with_callback_alias_poll_and_flush(config: dict[str, Any], topic_uri: str, services: Services) -> None:
    reports: list[tuple[Any, psc.Message]] = []
    with psc.Producer(config) as producer:
        producer.produce(topic_uri, b"v0", b"k0", on_delivery=lambda e, m: reports.append((e, m)))
        producer.produce(topic_uri, value=b"v1", key=b"k1", partition=1, callback=lambda e, m: reports.append((e, m)))
        producer.produce(topic_uri, b"v2", headers=[("h", b"1")], timestamp=RECENT_MS)
        producer.produce(topic_uri, b"v3", b"k3", 0, lambda e, m: reports.append((e, m)), headers={"h": b"3"})
        assert len(producer) >= 1
        while len(reports) < 3:
            producer.poll(1.0)
        assert producer.flush(TIMEOUT) == 0
        assert len(producer) == 0
    assert [e for e, _ in reports] == [None, None, None]
    delivered = {m.value(): m for _, m in reports}
    assert (delivered[b"v1"].partition(), delivered[b"v3"].partition()) == (1, 0)
    assert all(m.topic() == topic_uri for m in delivered.values())
    assert delivered[b"v0"].message_id.topic_uri == topic_uri
    messages = {m.value(): m for m in read_from_start(services, topic_uri, 4)}
    assert messages[b"v2"].headers() == [("h", b"1")]
    assert messages[b"v3"].headers() == [("h", b"3")]
    assert messages[b"v2"].timestamp()[1] == RECENT_MS
    assert messages[b"v0"].key() == b"k0"


def test_send_returns_future_of_message_id(config: dict[str, Any], topic_uri: str) -> None:
    with psc.Producer(config) as producer:
        futures = [producer.send(topic_uri, f"m{i}".encode(), partition=0) for i in range(5)]
        producer.flush(TIMEOUT)
        ids = [f.result(timeout=1) for f in futures]
    assert [i.offset for i in ids] == list(range(5))
    assert {i.topic_uri for i in ids} == {topic_uri}
    assert all(i.partition == 0 and i.timestamp > 0 for i in ids)


def test_string_and_json_serde(config: dict[str, Any], topic_uri: str, services: Services) -> None:
    producer_config = {**config, "psc.producer.key.serializer": "string", "psc.producer.value.serializer": "json"}
    with psc.Producer(producer_config) as producer:
        producer.produce(topic_uri, {"a": 1}, "key")
        assert producer.flush(TIMEOUT) == 0
    [message] = read_from_start(services, topic_uri, 1)
    assert (message.key(), message.value()) == (b"key", b'{"a":1}')


def test_list_topics_by_topic_and_cluster_uri(config: dict[str, Any], topic_uri: str, services: Services) -> None:
    with psc.Producer(config) as producer:
        one = producer.list_topics(topic_uri, TIMEOUT)
        assert list(one.topics) == [topic_uri]
        assert sorted(one.topics[topic_uri].partitions) == [0, 1]
        everything = producer.list_topics(services.cluster_prefix, TIMEOUT)
        assert topic_uri in everything.topics
        assert everything.cluster_uri == services.cluster_prefix
        assert everything.brokers


def test_purge_reports_queued_records_as_failed(config: dict[str, Any], topic_uri: str) -> None:
    errors: list[Any] = []
    slow = {**config, "psc.producer.batch.duration.ms": "5000"}
    with psc.Producer(slow) as producer:
        for i in range(10):
            producer.produce(topic_uri, b"x%d" % i, on_delivery=lambda e, m: errors.append(e))
        producer.purge(in_queue=True, in_flight=True, blocking=True)
        producer.poll(1.0)
        assert len(producer) == 0
    assert len(errors) == 10
    assert all(isinstance(e, psc.KafkaError) and e.name() == "_PURGE_QUEUE" for e in errors)


def test_closed_producer_rejects_calls(config: dict[str, Any], topic_uri: str) -> None:
    producer = psc.Producer(config)
    producer.close()
    producer.close()  # idempotent
    with pytest.raises(psc.ClientClosedError):
        producer.produce(topic_uri, b"x")
    with pytest.raises(psc.ClientClosedError):
        producer.flush(1)


@pytest.mark.parametrize(
    "bad_uri",
    [
        "protocol://rn:kafka:env:aws_us-west-1::cluster01:topic",
        "plaintext:/rn:kafka:env:aws_us-west-1::cluster01:topic:more",
        "plaintext:/rn:kafka:env:aws_us-west-1::cluster01",
        "ssl:/rn:kafka:env:aws_us-west-1::cluster01:topic",
        "plaintext:/xx:kafka:env:aws_us-west-1::cluster01:topic",
    ],
)
def test_malformed_uris_are_rejected(config: dict[str, Any], bad_uri: str) -> None:
    with psc.Producer(config) as producer, pytest.raises(psc.InvalidUriError) as info:
        producer.produce(bad_uri, b"x")
    assert bad_uri in str(info.value)


def test_unknown_backend_is_rejected(config: dict[str, Any]) -> None:
    with psc.Producer(config) as producer, pytest.raises(psc.UnknownBackendError) as info:
        producer.produce("plaintext:/rn:nosuch:env:aws_us-west-1::cluster01:topic", b"x")
    assert "nosuch" in str(info.value) and "kafka" in str(info.value)


def test_undiscoverable_cluster_is_rejected(config: dict[str, Any]) -> None:
    with psc.Producer(config) as producer, pytest.raises(psc.DiscoveryError):
        producer.produce("plaintext:/rn:kafka:env:aws_us-west-1::nowhere:topic", b"x")


def test_cluster_uri_cannot_be_produced_to(config: dict[str, Any], services: Services) -> None:
    with psc.Producer(config) as producer, pytest.raises(psc.ProducerError):
        producer.produce(services.cluster_prefix, b"x")


def test_unknown_and_mistyped_config_keys_are_all_reported(config: dict[str, Any]) -> None:
    bad = {**config, "psc.producer.lingerr.ms": "5", "psc.producer.batch.duration.ms": "soon", "bogus": 1}
    with pytest.raises(psc.ConfigError) as info:
        psc.Producer(bad)
    assert len(info.value.problems) == 3
    assert "lingerr" in str(info.value) and "soon" in str(info.value) and "bogus" in str(info.value)
