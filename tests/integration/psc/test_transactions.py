"""Transactions: consume-transform-produce, aborted once and committed once, read back read_committed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import psc
from tests.integration.psc.support import drain
from tests.services import Services

TIMEOUT = 20.0
OTHER_CLUSTER = "plaintext:/rn:kafka:local:local_dev::cluster02:"


@pytest.fixture
def base(services: Services, tmp_path: Path) -> dict[str, Any]:
    discovery = tmp_path / "discovery.json"
    connect = {"connect": services.kafka_bootstrap_servers}
    discovery.write_text(json.dumps({services.cluster_prefix: connect, OTHER_CLUSTER: connect}))
    return {"psc.project": "it-txn", "psc.discovery.file": str(discovery)}


def consumer_config(base: dict[str, Any], group: str) -> dict[str, Any]:
    return {
        **base,
        "psc.consumer.group.id": group,
        "psc.consumer.offset.auto.reset": "earliest",
        "psc.consumer.isolation.level": "read_committed",
    }


def transform(consumer: psc.Consumer, producer: psc.Producer, output: str, count: int) -> None:
    """One transaction's work: read ``count`` records, write them upper-cased, add the offsets."""
    producer.begin_transaction()
    for message in drain(consumer, count, TIMEOUT):
        producer.produce(output, message.value().upper(), message.key())
    positions = consumer.position(consumer.assignment())
    producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), TIMEOUT)


def test_consume_transform_produce_abort_then_commit(
    base: dict[str, Any], services: Services, new_topic: Callable[..., str]
) -> None:
    source, output = services.cluster_prefix + new_topic(), services.cluster_prefix + new_topic()
    with psc.Producer(base) as plain:
        for i in range(10):
            plain.produce(source, f"r{i}".encode(), f"k{i}".encode())
        assert plain.flush(TIMEOUT) == 0
    group = f"g-{uuid.uuid4().hex[:8]}"
    txn_config = {**base, "psc.producer.transactional.id": f"txn-{uuid.uuid4().hex[:8]}"}
    with psc.Consumer(consumer_config(base, group)) as consumer, psc.Producer(txn_config) as producer:
        producer.init_transactions(TIMEOUT)
        consumer.assign([psc.TopicUriPartition(source, 0, psc.OFFSET_STORED)])

        transform(consumer, producer, output, 10)
        producer.abort_transaction(TIMEOUT)
        # The aborted offsets were not committed: rewind to the group's committed position.
        committed = consumer.committed([psc.TopicUriPartition(source, 0)], TIMEOUT)[0].offset
        consumer.seek(psc.TopicUriPartition(source, 0, committed if committed >= 0 else psc.OFFSET_BEGINNING))

        transform(consumer, producer, output, 10)
        producer.commit_transaction(TIMEOUT)

    with psc.Consumer(consumer_config(base, f"check-{uuid.uuid4().hex[:8]}")) as check:
        check.subscribe([output])
        values = [m.value() for m in drain(check, 20, 3.0)]
    assert sorted(values) == sorted(f"R{i}".encode() for i in range(10))  # nothing lost, no duplicates
    with psc.Consumer(consumer_config(base, group)) as group_view:
        assert group_view.committed([psc.TopicUriPartition(source, 0)], TIMEOUT)[0].offset == 10


def test_deferred_init_binds_to_first_cluster_and_rejects_another(
    base: dict[str, Any], services: Services, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    txn_config = {**base, "psc.producer.transactional.id": f"txn-{uuid.uuid4().hex[:8]}"}
    with psc.Producer(txn_config) as producer:
        producer.init_transactions(TIMEOUT)  # no cluster yet: runs on the first send
        producer.begin_transaction()
        producer.produce(services.cluster_prefix + topic, b"x")
        with pytest.raises(psc.TransactionError, match="one cluster"):
            producer.produce(OTHER_CLUSTER + topic, b"y")
        producer.commit_transaction(TIMEOUT)
    with psc.Consumer(consumer_config(base, f"g-{uuid.uuid4().hex[:8]}")) as check:
        check.subscribe([services.cluster_prefix + topic])
        assert [m.value() for m in drain(check, 1, TIMEOUT)] == [b"x"]


def test_transaction_calls_need_a_transactional_producer(base: dict[str, Any]) -> None:
    with psc.Producer(base) as producer:
        for call in (
            lambda: producer.init_transactions(1),
            producer.begin_transaction,
            lambda: producer.commit_transaction(1),
            lambda: producer.abort_transaction(1),
        ):
            with pytest.raises(psc.TransactionError):
                call()
