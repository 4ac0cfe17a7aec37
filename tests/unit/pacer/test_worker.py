"""Worker pools over the embedded store: acks, retries, lease extension and graceful shutdown."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pacer import AckResult, Checkpoint, Job, JobState, Lease, Pacer
from pacer.worker import Retry, Worker, exponential, load_handler


@pytest.fixture
def pacer(tmp_path: Path) -> Iterator[Pacer]:
    service = Pacer.open(f"sqlite:///{tmp_path}/jobs.db")
    yield service
    service.close()


def run(worker: Worker, until: Callable[[], bool], timeout: float = 10.0, maintain: Pacer | None = None) -> None:
    thread = threading.Thread(target=worker.run)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not until():
            assert time.monotonic() < deadline, "condition not met in time"
            if maintain is not None:
                maintain.run_maintenance(worker.queue)
            time.sleep(0.05)
    finally:
        worker.stop()
        thread.join(10)
    assert not thread.is_alive()


def test_jobs_succeed_with_bounded_concurrency(pacer: Pacer) -> None:
    pacer.create_queue("q")
    descriptors = pacer.enqueue("q", [f"{i}".encode() for i in range(20)])
    running, peak, lock = [0], [0], threading.Lock()

    def handler(job: Lease) -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return f"ok {job.body.decode()}"

    worker = Worker(pacer, "q", handler, concurrency=4, poll_interval=0.05)
    run(worker, lambda: pacer.count("q", JobState.SUCCEEDED) == 20)
    assert 1 < peak[0] <= 4
    info = pacer.lookup([descriptors[3]])[descriptors[3]]
    assert info.custom_status == "ok 3"


def test_handler_chosen_delay_and_backoff_until_failed(pacer: Pacer) -> None:
    pacer.create_queue("q")
    (chosen,) = pacer.enqueue("q", [Job(b"retry-me", attempts=2)])
    (broken,) = pacer.enqueue("q", [Job(b"broken", attempts=3)])
    runs: list[tuple[bytes, float]] = []

    def handler(job: Lease) -> None:
        runs.append((job.body, time.monotonic()))
        if job.body == b"retry-me" and job.attempts_remaining == 2:
            raise Retry(after=timedelta(seconds=0.3), status="not yet")
        if job.body == b"broken":
            raise RuntimeError("always")

    policy = exponential(first=timedelta(seconds=0.05), factor=2, jitter=0)
    worker = Worker(pacer, "q", handler, concurrency=2, retry=policy, poll_interval=0.02)

    # Both jobs in a final state: two counts, one per state, could each miss a job moving between them (a
    # retried job goes from in progress back to pending).
    def both_finished() -> bool:
        infos = pacer.lookup([chosen, broken])
        return len(infos) == 2 and all(info.state in (JobState.SUCCEEDED, JobState.FAILED) for info in infos.values())

    run(worker, both_finished)
    chosen_runs = [at for body, at in runs if body == b"retry-me"]
    assert len(chosen_runs) == 2 and chosen_runs[1] - chosen_runs[0] >= 0.3
    broken_runs = [at for body, at in runs if body == b"broken"]
    assert len(broken_runs) == 3 and broken_runs[2] - broken_runs[1] >= 0.1  # second delay doubled
    assert pacer.lookup([chosen])[chosen].state is JobState.SUCCEEDED
    info = pacer.lookup([broken])[broken]
    assert info.state is JobState.FAILED and "RuntimeError: always" in info.custom_status


def test_long_jobs_keep_their_lease(pacer: Pacer) -> None:
    pacer.create_queue("q", lease=timedelta(seconds=1))
    (descriptor,) = pacer.enqueue("q", [Job(b"slow", attempts=1)])
    runs = []

    def handler(job: Lease) -> None:
        runs.append(job.claim)
        time.sleep(2.5)  # two and a half leases long

    worker = Worker(pacer, "q", handler, poll_interval=0.02)
    run(worker, lambda: pacer.count("q", JobState.SUCCEEDED) == 1, maintain=pacer)
    assert len(runs) == 1
    assert pacer.lookup([descriptor])[descriptor].state is JobState.SUCCEEDED


def test_stop_finishes_jobs_in_hand_then_releases_the_rest(pacer: Pacer) -> None:
    pacer.create_queue("q")
    finished, stuck = pacer.enqueue("q", [b"quick", b"stuck"])
    release = threading.Event()

    def handler(job: Lease) -> None:
        if job.body == b"quick":
            time.sleep(0.2)
        else:
            release.wait(5)

    worker = Worker(pacer, "q", handler, concurrency=2, poll_interval=0.02, grace=0.5)
    thread = threading.Thread(target=worker.run)
    thread.start()
    while pacer.count("q", JobState.IN_PROGRESS) < 2:
        time.sleep(0.02)
    worker.stop()
    thread.join(10)
    release.set()
    assert pacer.lookup([finished])[finished].state is JobState.SUCCEEDED
    assert pacer.lookup([stuck])[stuck].state is JobState.PENDING


def test_handler_paths_are_checked() -> None:
    assert load_handler("json:dumps") is not None
    for bad in ("json", "no_such_module_x:f", "json:no_such_function"):
        with pytest.raises(ValueError, match="handler"):
            load_handler(bad)


class Recording:
    """A job source over an embedded Pacer that records its calls, without ack_and_dequeue (a source may have
    none); :class:`Joint` adds it, and ``joint_fails`` makes it raise."""

    def __init__(self, pacer: Pacer, *, joint_fails: bool = False) -> None:
        self.pacer, self.joint_fails = pacer, joint_fails
        self.calls: list[str] = []

    def dequeue(self, queue: str, limit: int = 1) -> list[Lease]:
        self.calls.append("dequeue")
        return self.pacer.dequeue(queue, limit)

    def ack(self, queue: str, **acks: Any) -> AckResult:
        self.calls.append("ack")
        return self.pacer.ack(queue, **acks)

    def checkpoint(self, queue: str, items: Iterable[Checkpoint]) -> list[bool]:
        return self.pacer.checkpoint(queue, items)


class Joint(Recording):
    def ack_and_dequeue(self, queue: str, limit: int = 1, **acks: Any) -> tuple[AckResult, list[Lease]]:
        self.calls.append("ack_and_dequeue")
        if self.joint_fails:
            raise ConnectionError("storage down")
        return self.pacer.ack_and_dequeue(queue, limit, **acks)


@pytest.mark.parametrize("source_type", [Recording, Joint])
def test_a_pool_acks_with_its_next_dequeue_when_its_source_can(pacer: Pacer, source_type: type[Recording]) -> None:
    pacer.create_queue("q")
    pacer.enqueue("q", [b"x"] * 30)
    source = source_type(pacer)
    worker = Worker(source, "q", lambda job: None, concurrency=4, poll_interval=0.02)
    run(worker, lambda: pacer.count("q", JobState.SUCCEEDED) == 30)
    if source_type is Joint:
        assert "ack_and_dequeue" in source.calls and "ack" not in source.calls
    else:
        assert "ack" in source.calls and "ack_and_dequeue" not in source.calls


def test_when_the_joint_call_fails_the_acks_are_sent_alone(pacer: Pacer) -> None:
    pacer.create_queue("q")
    pacer.enqueue("q", [b"x"] * 6)
    source = Joint(pacer, joint_fails=True)
    worker = Worker(source, "q", lambda job: None, concurrency=2, poll_interval=0.02)
    run(worker, lambda: pacer.count("q", JobState.SUCCEEDED) == 6)
    assert source.calls.count("ack_and_dequeue") == source.calls.count("ack") >= 3
