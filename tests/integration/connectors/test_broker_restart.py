"""A private Kafka broker killed and restarted under a running job: the job recovers by itself.

The shared broker must never be stopped, so the job runs against a broker of its own (the stack launcher
with its own home and ports). A broker restart leaves librdkafka's transactional calls blocked past their
timeouts; the job gives up on the stuck producer, fences it with a new one and restores its checkpoint.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.singer_outage import PrivateKafka, private_kafka
from tests.integration.connectors.harness import PARTITIONS, Harness, stop


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[PrivateKafka]:
    with private_kafka(tmp_path) as started:
        yield started


def kill_broker(kafka: PrivateKafka) -> None:
    """SIGKILL the broker's process group, as a crash would."""
    pid = int((kafka.home / "kafka.pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def topics(kafka: PrivateKafka) -> tuple[str, str]:
    names = (f"conn-in-{uuid.uuid4().hex[:8]}", f"conn-out-{uuid.uuid4().hex[:8]}")
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    for future in admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names]).values():
        future.result(30)
    return names


def test_broker_killed_and_restarted_mid_job_the_job_recovers_exactly_once(kafka: PrivateKafka, tmp_path: Path) -> None:
    source, out = topics(kafka)
    harness = Harness(kafka.bootstrap, kafka.discovery_file, source, out, tmp_path)
    harness.produce(1500)
    proc = harness.start(CONN_INTERVAL="0.5", CONN_TXN_TIMEOUT="6", CONN_MAX_RESTARTS="10")
    try:
        first = harness.read(out, until=1500, timeout=30)
        assert sum(map(len, first.values())) >= 1500  # running and committing before the crash
        feeder = threading.Thread(target=harness.produce, args=(3000, 1500.0))  # records in flight at the crash
        feeder.start()
        time.sleep(1)
        kill_broker(kafka)
        time.sleep(3)
        kafka.up()
        feeder.join()
        found = harness.read(out, until=len(harness.produced), timeout=60)
    finally:
        rc, err = stop(proc)
    assert rc == 0, err[-3000:]
    counts = {p: (len(found.get(p, [])), len(v)) for p, v in harness.expected().items()}
    # each record once under read_committed, per-partition order kept
    assert found == harness.expected(), f"found/expected per partition {counts}\n{err[-3000:]}"
