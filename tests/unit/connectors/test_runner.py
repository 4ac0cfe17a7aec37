"""The runner's loop over in-memory clients: restarts after failures, bounded finish, stop, restore."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from connectors import Job, JobConfigError, Sink, Source
from connectors._ports import Committed, ConsumerPort, ProducerPort
from connectors.runtime.metrics import JobMetrics
from connectors.runtime.runner import Runner


class Message:
    def __init__(self, topic: str, partition: int, offset: int, value: bytes) -> None:
        self._t, self._p, self._o, self._v = topic, partition, offset, value

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return self._v


class Log:
    """The in-memory 'broker': one topic of records, and what the sink committed."""

    def __init__(self, records: int) -> None:
        self.records = [f"v{i}".encode() for i in range(records)]
        self.committed: list[bytes] = []
        self.group: dict[tuple[str, int], Committed] = {}
        self.failures_left = 0
        self.stuck_commits = 0  # how many next send_offsets_to_transaction calls block until released
        self.release = threading.Event()


class MemoryConsumer:
    def __init__(self, log: Log) -> None:
        self.log, self.position = log, 0

    def partitions(self, topic: str) -> list[int]:
        return [0]

    def assign(self, positions: Sequence[tuple[str, int, int]]) -> None:
        self.position = positions[0][2]

    def consume(self, max_records: int, timeout: float) -> Sequence[Message]:
        if self.log.failures_left:
            self.log.failures_left -= 1
            raise RuntimeError("broker went away")
        time.sleep(0.002)  # lets checkpoints fall between batches
        batch = self.log.records[self.position : self.position + min(max_records, 3)]
        out = [Message("t", 0, self.position + i, v) for i, v in enumerate(batch)]
        self.position += len(batch)
        return out

    def positions(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {("t", 0): self.position}

    def committed(self, partitions: Sequence[tuple[str, int]], timeout: float) -> dict[tuple[str, int], Committed]:
        return dict(self.log.group)

    def watermarks(self, topic: str, partition: int, timeout: float, cached: bool = False) -> tuple[int, int]:
        return 0, len(self.log.records)

    def group_metadata(self) -> Any:
        return None

    def commit(self, offsets: Sequence[tuple[str, int, int]], metadata: str | None, asynchronous: bool) -> None:
        self.log.group = {(t, p): Committed(o, metadata) for t, p, o in offsets}

    def transaction_offsets(self, offsets: Sequence[tuple[str, int, int]], metadata: str) -> list[Any]:
        return [(t, p, o, metadata) for t, p, o in offsets]

    def close(self) -> None:
        pass


class MemoryProducer:
    def __init__(self, log: Log) -> None:
        self.log = log
        self.open: list[bytes] = []
        self.pending_offsets: list[Any] = []

    def produce(self, topic: str, value: bytes | None, key: bytes | None, partition: int | None) -> None:
        self.open.append(value or b"")

    def produce_records(self, topic: str, records: Sequence[Any], keep_partition: bool) -> None:
        self.open.extend(record.value() for record in records)

    def flush(self, timeout: float) -> None:
        pass

    def init_transactions(self, timeout: float) -> None:
        self.open = []

    def begin_transaction(self) -> None:
        self.open = []

    def send_offsets_to_transaction(self, offsets: list[Any], group_metadata: Any, timeout: float) -> None:
        if self.log.stuck_commits:  # as librdkafka's call may, past its own timeout, after a broker restart
            self.log.stuck_commits -= 1
            self.log.release.wait()
            raise RuntimeError("fenced by a newer producer")
        self.pending_offsets = offsets

    def commit_transaction(self, timeout: float) -> None:
        self.log.committed.extend(self.open)
        self.log.group = {(t, p): Committed(o, m) for t, p, o, m in self.pending_offsets}
        self.open = []

    def abort_transaction(self, timeout: float) -> None:
        self.open = []

    def close(self) -> None:
        pass


class MemorySource(Source):
    family = "kafka"

    def __init__(self, log: Log, **kwargs: Any) -> None:
        super().__init__(["t"], **kwargs)
        self.log = log

    def open_port(self, group_id: str) -> ConsumerPort:
        return MemoryConsumer(self.log)


class MemorySink(Sink):
    family = "kafka"

    def __init__(self, log: Log, transaction_timeout_s: float = 30.0) -> None:
        super().__init__("out", transaction_timeout_s=transaction_timeout_s)
        self.log = log

    def open_port(self, transactional_id: str | None) -> ProducerPort:
        return MemoryProducer(self.log)


def build(
    tmp_path: Path, log: Log, *, stop: Any = "latest", txn_timeout_s: float = 30.0, **kwargs: Any
) -> tuple[Job, JobMetrics]:
    job = Job("mem", checkpoints=f"file:{tmp_path}", checkpoint_interval_s=0.01, restart_backoff_s=0.01, **kwargs)
    job.source("in", MemorySource(log, stop=stop)).map(lambda v: v.upper()).sink(
        "out", MemorySink(log, transaction_timeout_s=txn_timeout_s)
    )
    return job, JobMetrics("mem", CollectorRegistry())


def test_a_bounded_job_restarts_after_failures_and_finishes_exactly_once(tmp_path: Path) -> None:
    log = Log(50)
    log.failures_left = 2
    job, metrics = build(tmp_path, log)
    Runner(job, metrics=metrics).run()
    assert log.committed == [f"V{i}".encode() for i in range(50)]
    assert metrics.restarts._value.get() == 2
    assert metrics.records_in._value.get() == 50


def test_a_commit_stuck_past_the_transaction_timeout_is_abandoned_and_the_job_recovers(tmp_path: Path) -> None:
    log = Log(60)
    log.stuck_commits = 1
    job, metrics = build(tmp_path, log, txn_timeout_s=0.1)
    try:
        Runner(job, metrics=metrics).run()
    finally:
        log.release.set()
    assert log.committed == [f"V{i}".encode() for i in range(60)]  # the stuck transaction's records once
    assert metrics.restarts._value.get() == 1


def test_failures_count_again_from_zero_after_a_checkpoint_completed(tmp_path: Path) -> None:
    log = Log(30)
    log.failures_left = 1
    job, metrics = build(tmp_path, log, max_restarts=1)
    runner = Runner(job, metrics=metrics)
    original = runner._checkpoint

    def fail_after_the_first(*args: Any) -> None:
        original(*args)
        if runner.completed_checkpoints == 1:
            log.failures_left = 1  # a second failure, after progress

    runner._checkpoint = fail_after_the_first  # type: ignore[method-assign,assignment]
    runner.run()
    assert log.committed == [f"V{i}".encode() for i in range(30)]
    assert metrics.restarts._value.get() == 2


def test_too_many_failures_fail_the_job(tmp_path: Path) -> None:
    log = Log(5)
    log.failures_left = 10
    job, metrics = build(tmp_path, log, max_restarts=1)
    with pytest.raises(RuntimeError, match="broker went away"):
        Runner(job, metrics=metrics).run()


def test_a_rerun_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    log = Log(20)
    job, metrics = build(tmp_path, log)
    Runner(job, metrics=metrics).run()
    log.records += [b"late"]
    job, metrics = build(tmp_path, log, stop=None)
    job.stop()  # asked to stop before the first poll: restores, takes its final checkpoint, returns
    Runner(job, metrics=metrics).run()
    assert log.committed == [f"V{i}".encode() for i in range(20)]
    assert metrics.checkpoints._value.get() == 1


def test_a_checkpoint_the_group_shows_uncommitted_is_passed_over(tmp_path: Path) -> None:
    log = Log(10)
    job, metrics = build(tmp_path, log)
    runner = Runner(job, metrics=metrics)
    runner.run()
    for older in runner.checkpoints.names()[1:]:  # on a slow run, periodic ones: the one before the newest
        runner.checkpoints.store.delete(older)  # would be taken as committed, since the newest was written
    # the group shows an earlier transaction of this job: no checkpoint here committed
    log.group = {("t", 0): Committed(0, "connectors:mem:0:00000000")}
    log.committed.clear()
    job, metrics = build(tmp_path, log)
    Runner(job, metrics=metrics).run()
    assert log.committed == [f"V{i}".encode() for i in range(10)]


def test_without_any_witness_the_checkpoint_before_the_newest_is_taken(tmp_path: Path) -> None:
    log = Log(300)
    job, metrics = build(tmp_path, log)
    runner = Runner(job, metrics=metrics)
    runner.run()
    names = runner.checkpoints.names()
    assert len(names) >= 2
    log.group = {}  # the group's offsets expired: the newest cannot be proven, the one before it can
    job, metrics = build(tmp_path, log)
    runner = Runner(job, metrics=metrics)
    runner.run()
    kept = runner.checkpoints.names()
    assert names[0] not in kept and names[1] in kept


def test_the_instance_count_of_a_checkpoint_must_match(tmp_path: Path) -> None:
    log = Log(4)
    job, metrics = build(tmp_path / "a", log)
    Runner(job, metrics=metrics).run()
    job, metrics = build(tmp_path / "a", log)
    with pytest.raises(JobConfigError, match="taken with 1 instances, this run has 2"):
        Runner(job, instance=0, instances=2, metrics=metrics).run()


def test_a_bounded_reader_drops_records_past_its_stop_offset_within_a_batch() -> None:
    from connectors.sources.base import SourceReader

    log = Log(4)
    reader = SourceReader(MemorySource(log, stop="latest"), MemoryConsumer(log), [])
    log.records += [b"late"] * 3  # arrived after the stop offset was fixed
    seen = [record.value() for _ in range(5) for record in reader.poll(500, 0)]
    assert seen == [b"v0", b"v1", b"v2", b"v3"]
    assert reader.splits[("t", 0)].next_offset == 4 and reader.finished
