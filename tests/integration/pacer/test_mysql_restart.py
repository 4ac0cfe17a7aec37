"""MySQL restarted under a broker and a worker: both recover by themselves and every job completes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from pacer import Descriptor, JobState
from pacer.client import Client
from tests.integration.pacer.brokers import BrokerProcess, Process
from tests.integration.pacer.conftest import ADMIN_TOKEN, wait_for_owners
from tests.integration.pacer.private_mariadb import PrivateMariadb


@pytest.fixture
def private_mariadb(tmp_path: Path) -> Iterator[PrivateMariadb]:
    server = PrivateMariadb(tmp_path / "mariadb")
    yield server
    server.close()


def wait_succeeded(client: Client, jobs: list[Descriptor], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = {info.state for info in client.lookup(jobs).values()}
        if states == {JobState.SUCCEEDED} and len(client.lookup(jobs)) == len(jobs):
            return
        assert time.monotonic() < deadline, f"jobs still in {states} after {timeout} s"
        time.sleep(0.3)


def test_broker_and_worker_recover_from_a_mysql_restart(
    start_broker: Callable[..., BrokerProcess],
    private_mariadb: PrivateMariadb,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = start_broker(storage=[private_mariadb.url("pacer_restart")])
    client = Client(broker.url, admin_token=ADMIN_TOKEN, retry_for=30)
    client.create_queue("tasks", partitions=2, lease=timedelta(seconds=5))
    wait_for_owners(client, "tasks", {broker.url})
    monkeypatch.setenv("PACER_TEST_RUNS", str(tmp_path / "runs.txt"))
    args = ["worker", "tests.integration.pacer.handlers:record", "--queue", "tasks", "--broker", broker.url]
    worker = Process(args, tmp_path / "worker.log")
    worker.wait_for("serving tasks")
    before = client.enqueue("tasks", [f"before-{i}".encode() for i in range(10)])
    wait_succeeded(client, before, 30)

    during = client.enqueue("tasks", [f"during-{i}".encode() for i in range(10)])  # some buffered, some running
    private_mariadb.stop()
    time.sleep(3)  # the broker's maintenance, the worker's dequeues and acks fail meanwhile
    private_mariadb.start()  # every pooled connection of the broker is dead

    after = client.enqueue("tasks", [f"after-{i}".encode() for i in range(10)])
    wait_succeeded(client, during + after, 40)
    assert broker.proc.poll() is None and worker.proc.poll() is None  # neither was restarted
    assert worker.stop() == 0
