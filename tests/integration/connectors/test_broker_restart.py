"""A private Kafka broker killed and restarted under a running job: the job recovers by itself.

The shared broker must never be stopped, so the job runs against a broker of its own (the stack launcher
with its own home and ports). A broker restart can leave librdkafka's calls blocked past their timeouts:
each has a deadline, after which the job gives up on the client, fences a stuck producer with a new one
and restores its checkpoint. ``python -m benchmarks.connectors_broker_restart`` runs longer schedules.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.connectors_broker_restart import create_topics, kill_broker
from benchmarks.singer_outage import PrivateKafka, private_kafka
from tests.integration.connectors.harness import Harness, Running, first_copies


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[PrivateKafka]:
    with private_kafka(tmp_path) as started:
        yield started


def events(log: str) -> str:
    """The job's log lines but librdkafka's and routine checkpoints, for a failure message."""
    lines = [line for line in log.splitlines() if line.startswith("{") and "checkpoint_completed" not in line]
    return "\n".join(lines[-40:])


def test_broker_killed_and_restarted_mid_job_both_guarantees_recover_on_their_own(
    kafka: PrivateKafka, tmp_path: Path
) -> None:
    """An exactly-once and an at-least-once job read one topic while the broker is SIGKILLed and restarted."""
    source, exactly, at_least = create_topics(kafka, 3)
    harness = Harness(kafka.bootstrap, kafka.discovery_file, source, exactly, tmp_path)
    alo = Harness(kafka.bootstrap, kafka.discovery_file, source, at_least, tmp_path)
    alo.produced = harness.produced  # one input, two jobs
    harness.produce(1500)
    settings = {"CONN_INTERVAL": "0.5", "CONN_TXN_TIMEOUT": "6", "CONN_MAX_RESTARTS": "10"}
    jobs = [Running(harness, **settings), Running(alo, CONN_GUARANTEE="at_least_once", **settings)]
    try:
        for out in (exactly, at_least):  # running and committing before the crash
            assert sum(map(len, harness.read(out, until=1500, timeout=30).values())) >= 1500
        feeder = threading.Thread(target=harness.produce, args=(3000, 1500.0))  # records in flight at the crash
        feeder.start()
        time.sleep(1)
        kill_broker(kafka)
        time.sleep(3)
        kafka.up()
        feeder.join()
        expected = harness.expected()
        found = harness.read(exactly, until=len(harness.produced), timeout=60)
        replayed = harness.read(
            at_least, until=0, timeout=60, done=lambda got: {p: first_copies(v) for p, v in got.items()} == expected
        )
    finally:
        (rc, err), (alo_rc, alo_err) = jobs[0].stop(), jobs[1].stop()
    assert rc == 0 and alo_rc == 0, events(err) + events(alo_err)
    counts = {p: (len(found.get(p, [])), len(v)) for p, v in expected.items()}
    # each record once under read_committed, per-partition order kept
    assert found == expected, f"found/expected per partition {counts}\n{events(err)}"
    # at least once: every record, in order, a replayed stretch repeating earlier output exactly
    assert {p: first_copies(v) for p, v in replayed.items()} == expected, events(alo_err)
