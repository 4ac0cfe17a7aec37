"""The group mode with real processes: instances join and leave one consumer group while input arrives."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.connectors.harness import PARTITIONS, Harness
from tests.services import Services


@pytest.fixture
def harness(services: Services, new_topic: Callable[..., str], tmp_path: Path) -> Iterator[Harness]:
    yield Harness(
        services.kafka_bootstrap_servers,
        services.psc_discovery_file,
        new_topic(PARTITIONS, prefix="conn-in"),
        new_topic(PARTITIONS, prefix="conn-out"),
        tmp_path,
    )


class Instance:
    """A job instance in the group mode whose log lines are collected as they come."""

    def __init__(self, harness: Harness, number: int) -> None:
        self.proc = harness.start("--group", "--instance", str(number), CONN_INTERVAL="0.3")
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def assignments(self) -> list[list[str]]:
        """The partitions it was given at each assignment."""
        return [json.loads(line)["partitions"] for line in list(self.lines) if '"partitions_assigned"' in line]

    def wait_assigned(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not (self.assignments() and len(self.assignments()[-1]) == count):
            assert time.monotonic() < deadline, "".join(self.lines[-20:])
            time.sleep(0.2)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        assert self.proc.returncode == 0, "".join(self.lines[-20:])
        return "".join(self.lines)


def test_rescale_from_two_instances_to_one_and_from_one_to_three_while_running(harness: Harness) -> None:
    feeder = threading.Thread(target=harness.produce, args=(9000, 1000.0))
    feeder.start()
    first, second = Instance(harness, 0), Instance(harness, 1)
    second.wait_assigned(1)  # three partitions over two instances: one gets two, the other one
    first.wait_assigned(2)
    time.sleep(1)
    second.stop()  # 2 -> 1: the leaving instance commits before its partitions move
    first.wait_assigned(3)
    time.sleep(1)
    added = [Instance(harness, 1), Instance(harness, 2)]  # 1 -> 3
    for instance in (first, *added):
        instance.wait_assigned(1)
    feeder.join()
    found = harness.read(harness.out, until=len(harness.produced), timeout=60)
    for instance in (first, *added):
        instance.stop()
    assert found == harness.expected()  # no record read twice or skipped, per-partition order and state kept


def test_group_mode_refuses_a_bounded_source(harness: Harness) -> None:
    proc = harness.start("--group", "--instance", "0", CONN_BOUNDED="1")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "the group mode reads unbounded sources" in err
