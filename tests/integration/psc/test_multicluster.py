"""Clients spanning two cluster prefixes (both discovered to the same broker, under different names)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import psc
from tests.services import Services

TIMEOUT = 15.0
CLUSTER_A = "plaintext:/rn:kafka:local:local_dev::clusterA:"
CLUSTER_B = "plaintext:/rn:kafka:local:local_dev::clusterB:"


@pytest.fixture
def base(services: Services, tmp_path: Path) -> dict[str, Any]:
    discovery = tmp_path / "discovery.json"
    connect = {"connect": services.kafka_bootstrap_servers}
    discovery.write_text(json.dumps({CLUSTER_A: connect, CLUSTER_B: connect}))
    return {"psc.project": "it-multi", "psc.discovery.file": str(discovery)}


@pytest.fixture
def topics(base: dict[str, Any], new_topic: Callable[..., str]) -> tuple[str, str]:
    """One topic per cluster prefix, 5 records each, produced by one producer routing to both clusters."""
    uri_a, uri_b = CLUSTER_A + new_topic(), CLUSTER_B + new_topic()
    with psc.Producer(base) as producer:
        for i in range(5):
            producer.produce(uri_a, f"a{i}".encode())
            producer.produce(uri_b, f"b{i}".encode())
        assert producer.flush(TIMEOUT) == 0
        assert set(producer.list_topics(uri_a, TIMEOUT).topics) == {uri_a}
        with pytest.raises(psc.ProducerError):
            producer.list_topics(None, TIMEOUT)  # ambiguous: two clusters
    return uri_a, uri_b


def drain(consumer: psc.Consumer, count: int, limit_s: float = TIMEOUT) -> list[psc.Message]:
    out: list[psc.Message] = []
    deadline = time.monotonic() + limit_s
    while len(out) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None:
            out.append(message)
    return out


def test_subscribe_across_two_clusters(base: dict[str, Any], topics: tuple[str, str]) -> None:
    uri_a, uri_b = topics
    assigned: list[psc.TopicUriPartition] = []
    config = {
        **base,
        "psc.consumer.group.id": f"g-{uuid.uuid4().hex[:8]}",
        "psc.consumer.offset.auto.reset": "earliest",
    }
    with psc.Consumer(config) as consumer:
        consumer.subscribe([uri_a, uri_b], on_assign=lambda c, ps: assigned.extend(ps))
        # Both prefixes are one broker here, so the two backend consumers share one group and may
        # rebalance while joining; before the first commit that re-delivers (at least once), so dedupe.
        seen: dict[tuple[str, int], bytes] = {}
        deadline = time.monotonic() + TIMEOUT
        while len(seen) < 10 and time.monotonic() < deadline:
            for m in drain(consumer, 10 - len(seen), 2.0):
                seen[(m.topic(), m.offset() or 0)] = m.value()
        assert sorted(seen.values()) == sorted(
            [f"a{i}".encode() for i in range(5)] + [f"b{i}".encode() for i in range(5)]
        )
        assert {topic for topic, _ in seen} == {uri_a, uri_b}
        assert set(assigned) == {psc.TopicUriPartition(uri_a, 0), psc.TopicUriPartition(uri_b, 0)}
        # Positions may still be replaying after that rebalance: commit explicit offsets on both clusters.
        ends = [psc.TopicUriPartition(uri_a, 0, 5), psc.TopicUriPartition(uri_b, 0, 5)]
        committed = consumer.commit(offsets=ends, asynchronous=False)
        assert committed is not None and sorted((c.topic_uri, c.offset) for c in committed) == [(uri_a, 5), (uri_b, 5)]
        found = consumer.committed([psc.TopicUriPartition(uri_a, 0), psc.TopicUriPartition(uri_b, 0)], TIMEOUT)
        assert [c.offset for c in found] == [5, 5]
        with pytest.raises(psc.ConsumerError):
            consumer.consumer_group_metadata()  # which cluster's group? ambiguous
        assert consumer.consumer_group_metadata(uri_b) is not None


def test_assign_across_two_clusters_with_batches(base: dict[str, Any], topics: tuple[str, str]) -> None:
    uri_a, uri_b = topics
    config = {**base, "psc.consumer.group.id": f"g-{uuid.uuid4().hex[:8]}"}
    with psc.Consumer(config) as consumer:
        consumer.assign([psc.TopicUriPartition(uri_a, 0, 2), psc.TopicUriPartition(uri_b, 0, 3)])
        got: list[psc.Message] = []
        deadline = time.monotonic() + TIMEOUT
        while len(got) < 5 and time.monotonic() < deadline:
            got += consumer.consume(5 - len(got), 0.5)
        assert sorted(m.value() for m in got) == [b"a2", b"a3", b"a4", b"b3", b"b4"]
        consumer.pause([psc.TopicUriPartition(uri_a, 0)])
        consumer.seek_to_beginning()
        assert {m.topic() for m in drain(consumer, 5, 2.0)} == {uri_b}
        consumer.resume([psc.TopicUriPartition(uri_a, 0)])
        assert {m.topic() for m in drain(consumer, 5)} == {uri_a}
        positions = consumer.position(consumer.assignment())
        assert sorted((p.topic_uri, p.offset) for p in positions) == sorted([(uri_a, 5), (uri_b, 5)])
