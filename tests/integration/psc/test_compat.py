"""confluent-kafka's semantics against a real broker: errors as messages, auto-commit, _NO_OFFSET."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

import psc
from tests.integration.psc.support import drain
from tests.services import Services

TIMEOUT = 15.0


@pytest.fixture
def base(services: Services) -> dict[str, Any]:
    return {"psc.project": "it-compat", "psc.discovery.file": services.psc_discovery_file}


def produce(base: dict[str, Any], uri: str, values: list[bytes]) -> None:
    with psc.Producer(base) as producer:
        for value in values:
            producer.produce(topic=uri, value=value)
        assert producer.flush(TIMEOUT) == 0


def test_auto_commit_is_on_by_default_so_a_restart_resumes(
    base: dict[str, Any], services: Services, new_topic: Callable[..., str]
) -> None:
    uri = services.cluster_prefix + new_topic(partitions=1)
    produce(base, uri, [b"%d" % i for i in range(30)])
    # Only librdkafka's keys as a confluent-kafka user sets them: no commit call anywhere.
    config = {
        **base,
        "psc.consumer.group.id": f"g-{uuid.uuid4().hex[:8]}",
        "psc.consumer.auto.offset.reset": "earliest",
    }
    with psc.Consumer(config) as consumer:
        consumer.subscribe([uri])
        first = [m.value() for m in drain(consumer, 20)]  # some of the batch stays buffered, never returned
        assert first == [b"%d" % i for i in range(20)]
    with psc.Consumer(config) as again:  # the same group resumes after the last returned record
        again.subscribe([uri])
        rest = [m.value() for m in drain(again, 10)]
        assert rest == [b"%d" % i for i in range(20, 30)]
        assert again.poll(1.0) is None


def test_a_synchronous_commit_with_nothing_stored_raises_no_offset(
    base: dict[str, Any], services: Services, new_topic: Callable[..., str]
) -> None:
    uri = services.cluster_prefix + new_topic(partitions=1)
    config = {**base, "psc.consumer.group.id": f"g-{uuid.uuid4().hex[:8]}"}
    with psc.Consumer(config) as consumer:
        with pytest.raises(psc.KafkaException) as raised:
            consumer.commit(asynchronous=False)  # nothing assigned yet
        assert raised.value.args[0].code() == psc.KafkaError._NO_OFFSET
        consumer.assign([psc.TopicPartition(uri, 0, psc.OFFSET_END)])
        consumer.poll(1.0)
        with pytest.raises(psc.KafkaException) as raised:
            consumer.commit(asynchronous=False)  # assigned, but no record returned: nothing stored
        assert raised.value.args[0].code() == psc.KafkaError._NO_OFFSET
        produce(base, uri, [b"x"])
        deadline = time.monotonic() + TIMEOUT
        message = None
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
        assert message is not None and message.error() is None
        committed = consumer.commit(asynchronous=False)
        assert committed == [psc.TopicPartition(uri, 0)] and committed[0].offset == message.offset() + 1


def test_errors_reach_the_application_as_messages(base: dict[str, Any], services: Services) -> None:
    missing = services.cluster_prefix + f"missing-{uuid.uuid4().hex[:8]}"
    config = {**base, "psc.consumer.group.id": f"g-{uuid.uuid4().hex[:8]}"}
    with psc.Consumer(config) as consumer:
        consumer.subscribe([missing])
        deadline = time.monotonic() + TIMEOUT
        messages: list[psc.Message] = []
        while not messages and time.monotonic() < deadline:
            messages = consumer.consume(10, 0.5)
        assert messages, "the missing topic is reported within seconds"
        error = messages[0].error()
        assert error is not None and error.code() == psc.KafkaError.UNKNOWN_TOPIC_OR_PART
        assert not error.fatal()
        assert messages[0].topic() == missing


def test_config_callbacks_reach_the_application(
    base: dict[str, Any], services: Services, new_topic: Callable[..., str]
) -> None:
    uri = services.cluster_prefix + new_topic(partitions=1)
    stats: list[str] = []
    delivered: list[tuple[Any, Any]] = []
    conf = {**base, "psc.producer.statistics.interval.ms": 100, "psc.producer.stats_cb": stats.append}
    with psc.Producer(conf, on_delivery=lambda err, msg: delivered.append((err, msg.offset()))) as producer:
        producer.produce(uri, b"v")
        deadline = time.monotonic() + TIMEOUT
        while (not stats or not delivered) and time.monotonic() < deadline:
            producer.poll(0.1)
    assert delivered == [(None, 0)]
    assert stats and json.loads(stats[0])["type"] == "producer"  # librdkafka's statistics, unchanged
    commits: list[tuple[Any, list[psc.TopicPartition]]] = []
    config = {
        **base,
        "psc.consumer.group.id": f"g-{uuid.uuid4().hex[:8]}",
        "psc.consumer.offset.auto.reset": "earliest",
        "psc.consumer.on_commit": lambda err, parts: commits.append((err, parts)),
    }
    with psc.Consumer(config) as consumer:
        consumer.subscribe([uri])
        [message] = drain(consumer, 1)
        consumer.commit(message, asynchronous=False)
        consumer.poll(0.5)  # serves the commit result
    assert commits and commits[0][0] is None
    assert [(p.topic, p.partition, p.offset) for p in commits[0][1]] == [(uri, 0, 1)]


def test_cluster_id_and_member_id_as_confluent_kafka_reports_them(
    base: dict[str, Any], services: Services, new_topic: Callable[..., str]
) -> None:
    from confluent_kafka import Consumer as NativeConsumer

    uri = services.cluster_prefix + new_topic(partitions=1)
    native = NativeConsumer({"bootstrap.servers": services.kafka_bootstrap_servers, "group.id": "unused"})
    try:
        expected = native.cluster_id(TIMEOUT)
    finally:
        native.close()
    assert expected
    with psc.Producer(base) as producer:
        producer.produce(uri, b"v")
        assert producer.cluster_id(TIMEOUT) == expected
    config = {
        **base,
        "psc.consumer.group.id": f"g-{uuid.uuid4().hex[:8]}",
        "psc.consumer.offset.auto.reset": "earliest",
    }
    with psc.Consumer(config) as consumer:
        consumer.subscribe([uri])
        assert drain(consumer, 1)
        assert consumer.cluster_id(TIMEOUT) == expected
        member = consumer.memberid()
        assert member is not None and member.startswith("it-compat-")  # librdkafka: client.id (psc.project), a uuid
