"""The group mode with real processes: instances join and leave one consumer group while input arrives."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.connectors.harness import PARTITIONS, Harness, Running
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


_started: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def no_instance_left_running() -> Iterator[None]:
    """A failed test must not leave its job processes behind."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_for(condition: Callable[[], bool], timeout: float, lines: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "".join(lines[-20:])
        time.sleep(0.2)


def wait_shared(instances: list[Instance], timeout: float = 30) -> None:
    """Until every instance holds a partition and together they hold all of them."""

    def shared() -> bool:
        owned = [instance.owned() for instance in instances]
        return min(owned) > 0 and sum(owned) == PARTITIONS

    wait_for(shared, timeout, instances[0].lines)


class Instance(Running):
    """A job instance in the group mode whose log lines are collected as they come."""

    def __init__(self, harness: Harness, number: int, **env: str) -> None:
        super().__init__(harness, "--group", "--instance", str(number), CONN_INTERVAL="0.3", **env)
        _started.append(self.proc)

    def owned(self) -> int:
        """How many partitions it holds now (as last assigned; none after a revoke or a loss)."""
        count = 0
        for line in list(self.lines):
            if '"partitions_assigned"' in line:
                count = len(json.loads(line)["partitions"])
            elif '"partitions_revoked"' in line or '"partitions_lost"' in line:
                count = 0
        return count

    def wait_assigned(self, count: int, timeout: float = 30) -> None:
        wait_for(lambda: self.owned() == count, timeout, self.lines)

    def stop(self) -> tuple[int, str]:
        returncode, log = super().stop()
        assert returncode == 0, "".join(self.lines[-20:])
        return returncode, log


def test_rescale_from_two_instances_to_one_and_from_one_to_three_while_running(harness: Harness) -> None:
    feeder = threading.Thread(target=harness.produce, args=(9000, 1000.0))
    feeder.start()
    first, second = Instance(harness, 0), Instance(harness, 1)
    wait_shared([first, second])
    time.sleep(1)
    second.stop()  # 2 -> 1: the leaving instance commits before its partitions move
    first.wait_assigned(3)
    time.sleep(1)
    added = [Instance(harness, 1), Instance(harness, 2)]  # 1 -> 3
    wait_shared([first, *added])
    feeder.join()
    found = harness.read(harness.out, until=len(harness.produced), timeout=60)
    for instance in (first, *added):
        instance.stop()
    assert found == harness.expected()  # no record read twice or skipped, per-partition order and state kept


def test_rescale_with_the_psc_source_and_sink_from_two_instances_to_one_and_back(harness: Harness) -> None:
    feeder = threading.Thread(target=harness.produce, args=(4000, 1000.0))
    feeder.start()
    first, second = Instance(harness, 0, CONN_FAMILY="psc"), Instance(harness, 1, CONN_FAMILY="psc")
    wait_shared([first, second])
    second.stop()
    first.wait_assigned(3)
    second = Instance(harness, 1, CONN_FAMILY="psc")
    wait_shared([first, second])
    feeder.join()
    found = harness.read(harness.out, until=len(harness.produced), timeout=60)
    for instance in (first, second):
        instance.stop()
    assert found == harness.expected()


def test_a_paused_instance_is_fenced_by_the_group_and_a_killed_one_restarts(harness: Harness) -> None:
    """SIGSTOP an instance until the group gives its partitions away, then SIGCONT it: its transaction must
    not commit. Then SIGKILL the other and restart it under its instance number."""
    env = {"CONN_SESSION_MS": "6000", "CONN_TXN_TIMEOUT": "10"}
    feeder = threading.Thread(target=harness.produce, args=(12000, 800.0))
    feeder.start()
    first, second = Instance(harness, 0, **env), Instance(harness, 1, **env)
    wait_shared([first, second])
    second.proc.send_signal(signal.SIGSTOP)
    first.wait_assigned(3)  # the session timed out: the group moved the paused instance's partition
    second.proc.send_signal(signal.SIGCONT)  # a zombie now: its open transaction carries a stale generation
    time.sleep(3)
    first.proc.kill()
    first.proc.wait()
    first = Instance(harness, 0, **env)  # fences the killed process's transactional id, aborting its transaction
    feeder.join()
    found = harness.read(harness.out, until=len(harness.produced), timeout=60)
    for instance in (first, second):
        if instance.proc.poll() is None:
            instance.stop()
    assert found == harness.expected(), "".join(second.lines[-30:])
    events = "".join(second.lines)
    assert '"partitions_lost"' in events or '"fenced"' in events or '"job_restarting"' in events, events[-3000:]


def test_group_mode_refuses_a_bounded_source(harness: Harness) -> None:
    proc = harness.start("--group", "--instance", "0", CONN_BOUNDED="1")
    _started.append(proc)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "the group mode reads unbounded sources" in err
