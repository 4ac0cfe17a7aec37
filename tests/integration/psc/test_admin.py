"""psc.admin.AdminClient against the real broker: every operation, addressed by topic and cluster URIs.

Two cluster prefixes are discovered to the same broker, so a call naming topics of both fans out to two
native clients and its futures map back to the keys the caller passed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicCollection, TopicPartition

import psc
from psc.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConsumerGroupDescription,
    KafkaError,
    KafkaException,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)
from tests.services import Services

TIMEOUT = 30.0
CLUSTER_A = "plaintext:/rn:kafka:local:local_dev::adminA:"
CLUSTER_B = "plaintext:/rn:kafka:local:local_dev::adminB:"


@pytest.fixture
def base(services: Services, tmp_path: Path) -> dict[str, Any]:
    discovery = tmp_path / "discovery.json"
    connect = {"connect": services.kafka_bootstrap_servers}
    discovery.write_text(json.dumps({CLUSTER_A: connect, CLUSTER_B: connect}))
    return {"psc.project": "it-admin", "psc.discovery.file": str(discovery), "psc.admin.cluster.uri": CLUSTER_A}


@pytest.fixture
def admin(base: dict[str, Any]) -> AdminClient:
    return AdminClient(base)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def topic_uri(admin: AdminClient) -> Iterator[str]:
    """A fresh 2-partition topic on cluster A, deleted afterwards."""
    uri = CLUSTER_A + unique("adm")
    admin.create_topics([NewTopic(uri, 2, 1)])[uri].result(TIMEOUT)
    yield uri
    admin.delete_topics([uri])[uri].result(TIMEOUT)


def produce(base: dict[str, Any], uri: str, count: int) -> None:
    with psc.Producer(base) as producer:
        for i in range(count):
            producer.produce(uri, f"v{i}".encode(), partition=0)
        assert producer.flush(TIMEOUT) == 0


def test_topics_across_two_clusters_create_describe_and_delete(admin: AdminClient) -> None:
    uri_a, uri_b = CLUSTER_A + unique("adm"), CLUSTER_B + unique("adm")
    created = admin.create_topics(
        [NewTopic(uri_a, 3, 1, config={"retention.ms": "3600000"}), NewTopic(uri_b, 1, 1)],
        operation_timeout=TIMEOUT,
    )
    assert set(created) == {uri_a, uri_b}
    assert [f.result(TIMEOUT) for f in created.values()] == [None, None]

    # A new topic reaches the broker's metadata cache a moment after CreateTopics answers.
    deadline = time.monotonic() + TIMEOUT
    while True:
        described = admin.describe_topics(TopicCollection([uri_a, uri_b]))
        try:
            sizes = {uri: len(f.result(TIMEOUT).partitions) for uri, f in described.items()}
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        break
    assert sizes == {uri_a: 3, uri_b: 1}
    assert described[uri_a].result().name == uri_a

    listed = admin.list_topics(uri_a, timeout=TIMEOUT)
    assert list(listed.topics) == [uri_a]
    assert listed.topics[uri_a].topic == uri_a
    assert len(listed.topics[uri_a].partitions) == 3
    assert uri_a in admin.list_topics(timeout=TIMEOUT).topics  # the default cluster, every topic

    again = admin.create_topics([NewTopic(uri_b, 1, 1)])[uri_b]
    with pytest.raises(KafkaException) as caught:
        again.result(TIMEOUT)
    assert caught.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    deleted = admin.delete_topics([uri_a, uri_b], operation_timeout=TIMEOUT)
    assert [f.result(TIMEOUT) for f in deleted.values()] == [None, None]
    missing = admin.delete_topics([uri_a])[uri_a]
    with pytest.raises(KafkaException) as caught:
        missing.result(TIMEOUT)
    assert caught.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_create_partitions(admin: AdminClient, topic_uri: str) -> None:
    futures = admin.create_partitions([NewPartitions(topic_uri, 4)], operation_timeout=TIMEOUT)
    assert list(futures) == [topic_uri]
    assert futures[topic_uri].result(TIMEOUT) is None
    assert len(admin.list_topics(topic_uri, timeout=TIMEOUT).topics[topic_uri].partitions) == 4


def described_once_applied(admin: AdminClient, resource: ConfigResource, applied: Any) -> Any:
    """The resource's configs once ``applied(configs)`` holds: a KRaft broker applies an altered config from
    its metadata log a moment after the alter call returns, so one describe right after may be stale."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        configs = admin.describe_configs([resource])[resource].result(TIMEOUT)
        if applied(configs) or time.monotonic() > deadline:
            return configs
        time.sleep(0.1)


def test_topic_configs_describe_and_alter(admin: AdminClient, topic_uri: str) -> None:
    entry = ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)
    altered = ConfigResource(ResourceType.TOPIC, topic_uri, incremental_configs=[entry])
    futures = admin.incremental_alter_configs([altered])
    assert list(futures) == [altered]
    assert futures[altered].result(TIMEOUT) is None

    resource = ConfigResource(ResourceType.TOPIC, topic_uri)
    configs = described_once_applied(admin, resource, lambda c: c["retention.ms"].value == "7200000")
    assert configs["retention.ms"].value == "7200000"

    replaced = ConfigResource(ResourceType.TOPIC, topic_uri, set_config={"cleanup.policy": "compact"})
    with pytest.warns(DeprecationWarning):
        admin.alter_configs([replaced])[replaced].result(TIMEOUT)
    configs = described_once_applied(admin, resource, lambda c: c["cleanup.policy"].value == "compact")
    assert configs["cleanup.policy"].value == "compact"
    assert configs["retention.ms"].is_default  # alter_configs replaces the whole config


def test_broker_configs_by_cluster_uri(admin: AdminClient) -> None:
    controller = admin.describe_cluster().result(TIMEOUT).controller.id
    by_id = ConfigResource(ResourceType.BROKER, f"{CLUSTER_B}{controller}")
    by_cluster = ConfigResource(ResourceType.BROKER, CLUSTER_A)
    futures = admin.describe_configs([by_id])
    futures.update(admin.describe_configs([by_cluster]))
    for resource in (by_id, by_cluster):
        assert "num.partitions" in futures[resource].result(TIMEOUT)


def test_describe_cluster(admin: AdminClient) -> None:
    result = admin.describe_cluster(request_timeout=TIMEOUT).result(TIMEOUT)
    assert result.cluster_id == admin.cluster_id(timeout=TIMEOUT)
    assert result.controller.id in {node.id for node in result.nodes}


def test_groups_and_their_offsets(base: dict[str, Any], admin: AdminClient, topic_uri: str) -> None:
    produce(base, topic_uri, 5)
    group = unique("adm-g")
    consumer_config = {**base, "psc.consumer.group.id": group, "psc.consumer.offset.auto.reset": "earliest"}
    consumer_config.pop("psc.admin.cluster.uri")
    with psc.Consumer(consumer_config) as consumer:
        consumer.subscribe([topic_uri])
        read = 0
        deadline = time.monotonic() + TIMEOUT
        while read < 5 and time.monotonic() < deadline:
            read += len(consumer.consume(5, 0.5))
        assert read == 5
        consumer.commit(asynchronous=False)

        listed = admin.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
        assert group in {g.group_id for g in listed.valid}
        description = admin.describe_consumer_groups([group])[group].result(TIMEOUT)
        assert isinstance(description, ConsumerGroupDescription)
        members: list[Any] = description.members
        assigned = {tp.topic_uri for m in members for tp in m.assignment.topic_partitions}
        assert assigned == {topic_uri}

    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic_uri, 0)])
    offsets = admin.list_consumer_group_offsets([request])[group].result(TIMEOUT)
    assert [(tp.topic_uri, tp.partition, tp.offset) for tp in offsets.topic_partitions] == [(topic_uri, 0, 5)]
    everything = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(TIMEOUT)
    assert {(tp.topic_uri, tp.partition) for tp in everything.topic_partitions} >= {(topic_uri, 0)}

    rewind = ConsumerGroupTopicPartitions(group, [TopicPartition(topic_uri, 0, 2)])
    altered = admin.alter_consumer_group_offsets([rewind])[group].result(TIMEOUT)
    assert [(tp.topic_uri, tp.offset) for tp in altered.topic_partitions] == [(topic_uri, 2)]
    offsets = admin.list_consumer_group_offsets([request])[group].result(TIMEOUT)
    assert [tp.offset for tp in offsets.topic_partitions] == [2]

    assert admin.delete_consumer_groups([group], request_timeout=TIMEOUT)[group].result(TIMEOUT) is None
    listed = admin.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
    assert group not in {g.group_id for g in listed.valid}


def test_delete_records_and_list_offsets(base: dict[str, Any], admin: AdminClient, topic_uri: str) -> None:
    produce(base, topic_uri, 6)
    partition = TopicPartition(topic_uri, 0, 4)
    deleted = admin.delete_records([partition], operation_timeout=TIMEOUT)
    assert list(deleted) == [partition]
    assert deleted[partition].result(TIMEOUT).low_watermark == 4

    earliest, latest = TopicPartition(topic_uri, 0), TopicPartition(topic_uri, 1)
    listed = admin.list_offsets({earliest: OffsetSpec.earliest(), latest: OffsetSpec.latest()})  # type: ignore[no-untyped-call]
    assert listed[earliest].result(TIMEOUT).offset == 4
    assert listed[latest].result(TIMEOUT).offset == 0


def test_group_call_without_a_cluster_and_bad_uris_fail_at_once(base: dict[str, Any]) -> None:
    without = {k: v for k, v in base.items() if k != "psc.admin.cluster.uri"}
    admin = AdminClient(without)
    with pytest.raises(psc.ConfigError, match=r"psc\.admin\.cluster\.uri"):
        admin.list_consumer_groups()
    with pytest.raises(psc.InvalidUriError, match="names a cluster, not a topic"):
        admin.create_topics([NewTopic(CLUSTER_A, 1, 1)])
    with pytest.raises(psc.InvalidUriError, match=r"'orders': missing '<protocol>:/'"):
        admin.delete_topics(["orders"])
    good = CLUSTER_A + unique("adm")
    with pytest.raises(psc.DiscoveryError, match="nowhere"):
        admin.create_topics([NewTopic(good, 1, 1), NewTopic("plaintext:/rn:kafka:local:local_dev::nowhere:t", 1, 1)])
    described = admin.describe_topics(TopicCollection([good]))[good]  # unlike metadata, never auto-creates
    with pytest.raises(KafkaException) as caught:
        described.result(TIMEOUT)  # nothing of the call was sent
    assert caught.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
