"""A worker process killed mid-job: the lease expires and another worker runs the job again."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from pacer import Job, JobState
from pacer.client import Client
from tests.integration.pacer.brokers import BrokerProcess, Process
from tests.integration.pacer.conftest import ADMIN_TOKEN, wait_for_owners


def test_sigkill_of_a_worker_mid_job_runs_the_job_again(
    start_broker: Callable[..., BrokerProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = start_broker()
    client = Client(broker.url, admin_token=ADMIN_TOKEN)
    client.create_queue("tasks", partitions=2, lease=timedelta(seconds=2))
    wait_for_owners(client, "tasks", {broker.url})
    runs = tmp_path / "runs.txt"
    monkeypatch.setenv("PACER_TEST_RUNS", str(runs))  # the worker processes inherit it

    args = ["worker", "tests.integration.pacer.handlers:record", "--queue", "tasks", "--broker", broker.url]
    first = Process(args, tmp_path / "worker1.log")
    first.wait_for("serving tasks")
    (slow,) = client.enqueue("tasks", [Job(b"slow", attempts=3)])
    quick = client.enqueue("tasks", [b"quick-1", b"quick-2"])
    deadline = time.monotonic() + 30
    while f"start {slow}" not in (runs.read_text() if runs.exists() else ""):
        assert time.monotonic() < deadline, "the worker never started the job"
        time.sleep(0.1)
    first.kill()  # SIGKILL while the handler runs: no ack, no lease extension any more
    assert client.lookup([slow])[slow].state is JobState.IN_PROGRESS

    second = Process(args, tmp_path / "worker2.log")
    deadline = time.monotonic() + 30
    while client.lookup([slow])[slow].state is not JobState.SUCCEEDED:
        assert time.monotonic() < deadline, "the job did not run again"
        time.sleep(0.2)
    assert second.stop() == 0  # SIGTERM: a clean exit
    lines = runs.read_text().splitlines()
    assert lines.count(f"start {slow}") == 2 and lines.count(f"done {slow}") == 1
    assert client.lookup([slow])[slow].attempts_remaining == 2  # the expired lease used one attempt
    assert all(info.state is JobState.SUCCEEDED for info in client.lookup(quick).values())
