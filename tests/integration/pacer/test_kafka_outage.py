"""Kafka down under a broker: enqueue still succeeds, and jobs are dispatched when Kafka is back.

The shared Kafka must never be stopped: the broker's group and doorbells use a private Kafka broker
started by the stack launcher (its own STACK_HOME and ports); the jobs live in the shared MariaDB.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.singer_outage import PrivateKafka, private_kafka
from pacer import JobState
from pacer.client import Client
from tests.integration.pacer.brokers import BrokerProcess
from tests.integration.pacer.conftest import ADMIN_TOKEN, wait_for_owners
from tests.integration.pacer.test_broker_api import drain
from tests.services import LOCAL_CLUSTER_PREFIX


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[PrivateKafka]:
    with private_kafka(tmp_path) as started:
        yield started


def test_enqueue_succeeds_while_kafka_is_down_and_dispatch_resumes(
    start_broker: Callable[..., BrokerProcess], kafka: PrivateKafka
) -> None:
    topic = "pacer-control-outage"
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(30)
    broker = start_broker(control_topic=LOCAL_CLUSTER_PREFIX + topic, psc={"psc.discovery.file": kafka.discovery_file})
    client = Client(broker.url, admin_token=ADMIN_TOKEN, retry_for=30)
    client.create_queue("outage", partitions=2, lease=timedelta(seconds=30))
    wait_for_owners(client, "outage", {broker.url})

    kafka.down()
    started = time.monotonic()
    during = client.enqueue("outage", [f"during-{i}".encode() for i in range(6)])
    assert len(during) == 6 and time.monotonic() - started < 10  # stored without waiting for Kafka
    assert client.count("outage", JobState.PENDING) == 6

    kafka.up()
    leases = drain(client, "outage", 6, timeout=40)
    assert sorted(lease.descriptor for lease in leases) == sorted(during)
    result = client.ack("outage", succeeded=leases)
    assert not result.rejected and len(result.accepted) == 6
