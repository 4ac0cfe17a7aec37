"""Dequeues start at one partition in runs, so that concurrent ones share their lease and ack statements."""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacer import Job, Pacer
from pacer._service import DEQUEUE_RUN


@pytest.fixture
def pacer(tmp_path: Path) -> Iterator[Pacer]:
    service = Pacer.open(f"sqlite:///{tmp_path}/jobs.db")
    service.create_queue("runs", partitions=2)
    yield service
    service.close()


def test_a_run_of_dequeues_starts_at_one_partition_then_the_next(pacer: Pacer) -> None:
    for _ in range(2):  # each call's jobs go to one partition, the next call's to the other
        pacer.enqueue("runs", [b"x"] * (2 * DEQUEUE_RUN))
    assert pacer.count("runs", "pending") == 4 * DEQUEUE_RUN
    served = [pacer.dequeue("runs")[0].descriptor.partition for _ in range(3 * DEQUEUE_RUN)]
    assert served == [(call // DEQUEUE_RUN) % 2 for call in range(1, 3 * DEQUEUE_RUN + 1)]


def test_a_dequeue_goes_on_to_the_next_partition_when_its_start_has_no_job(pacer: Pacer) -> None:
    start = (pacer._next + 1) // DEQUEUE_RUN % 2
    (descriptor,) = pacer.enqueue("runs", [Job(b"x", key="only")])
    if descriptor.partition == start:  # the job must wait in the other one
        pacer._next += DEQUEUE_RUN
    (lease,) = pacer.dequeue("runs")
    assert lease.descriptor == descriptor


def test_ack_and_dequeue_writes_together_when_the_acks_are_of_its_start_partition(pacer: Pacer) -> None:
    for _ in range(2):
        pacer.enqueue("runs", [b"x"] * (2 * DEQUEUE_RUN))
    leases = pacer.dequeue("runs", 4)
    partition = leases[0].descriptor.partition
    calls: list[tuple[int, int]] = []  # (acks, limit) of each owner call
    owner = pacer.owner("runs", partition)
    original = owner.ack_and_dequeue
    owner.ack_and_dequeue = lambda items, limit, **kw: calls.append((len(items), limit)) or original(items, limit, **kw)  # type: ignore[method-assign]
    pacer._next = DEQUEUE_RUN * partition  # the next call starts at the acks' partition
    result, more = pacer.ack_and_dequeue("runs", 4, succeeded=leases)
    assert calls == [(4, 4)] and len(result.accepted) == 4 and [m.descriptor.partition for m in more] == [partition] * 4
    pacer._next = DEQUEUE_RUN * (1 - partition)  # starts at the other one: acked apart, then dequeued there
    result, other = pacer.ack_and_dequeue("runs", 4, succeeded=more)
    assert calls == [(4, 4), (4, 0)] and len(result.accepted) == 4
    assert [o.descriptor.partition for o in other] == [1 - partition] * 4


def _start(pacer: Pacer) -> int:
    """The partition the next dequeue starts at."""
    return (pacer._next + 1) // DEQUEUE_RUN % 2


def test_a_dequeue_that_finds_its_start_dry_ends_the_run(pacer: Pacer) -> None:
    key = next(f"k{i}" for i in itertools.count() if zlib.crc32(f"k{i}".encode()) % 2 == 1)
    (descriptor,) = pacer.enqueue("runs", [Job(b"x", key=key)])  # a job in partition 1 only
    assert descriptor.partition == 1
    pacer._next = 5  # early in a run that starts at partition 0
    assert _start(pacer) == 0
    (lease,) = pacer.dequeue("runs")
    assert lease.descriptor == descriptor  # found in the next partition
    assert _start(pacer) == 1  # the run ended: the next dequeues start where the jobs are
    pacer.enqueue("runs", [b"y"] * 4)
    pacer.enqueue("runs", [b"z"] * 4)  # both partitions have jobs: runs go on as long as ever
    pacer._next = DEQUEUE_RUN + 5
    pacer.dequeue("runs")
    assert pacer._next == DEQUEUE_RUN + 6 and _start(pacer) == 1


def test_ack_and_dequeue_at_a_dry_start_writes_its_acks_and_ends_the_run(pacer: Pacer) -> None:
    pacer.enqueue("runs", [b"a"] * 3)
    pacer.enqueue("runs", [b"b"] * 3)  # each call's jobs go to one partition
    pacer._next = 5
    leases = pacer.dequeue("runs", 3)  # every job of partition 0
    assert {lease.descriptor.partition for lease in leases} == {0}
    pacer._next = 5
    result, more = pacer.ack_and_dequeue("runs", 3, succeeded=leases)
    assert len(result.accepted) == 3 and [m.descriptor.partition for m in more] == [1] * 3
    assert _start(pacer) == 1
    assert pacer.count("runs", "succeeded") == 3
