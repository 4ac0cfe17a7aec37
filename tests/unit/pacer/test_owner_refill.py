"""A partition owner's refills read the store outside the buffer's lock: dequeues go on meanwhile, and a refill
whose buffer was dropped while it read keeps nothing."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest

from pacer import Job, Pacer
from pacer import _owner as owner_module
from pacer._models import now_us
from pacer._owner import FIRST_RECHECK_S, IDLE_RECHECK_S, Busy, PartitionOwner, Refiller
from pacer.storage.base import Reserved, Store


class HeldStore:
    """Wraps a store so that ``reserve`` waits for ``go`` once ``hold`` is set."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.hold = False
        self.reading = threading.Event()
        self.go = threading.Event()

    def reserve(
        self, name: str, partition: int, epoch: int, limit: int, now: int, held: Collection[int] = ()
    ) -> list[Reserved]:
        found = self._store.reserve(name, partition, epoch, limit, now, held)
        if self.hold:
            self.reading.set()
            assert self.go.wait(5)
        return found

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


@pytest.fixture
def pacer(tmp_path: Path) -> Iterator[Pacer]:
    service = Pacer.open(f"sqlite:///{tmp_path}/jobs.db")
    service.create_queue("jobs")
    yield service
    service.close()


def _owner(pacer: Pacer) -> tuple[PartitionOwner, HeldStore]:
    store = HeldStore(pacer.store)
    owner = PartitionOwner(store, pacer.queue_config("jobs"), 0, "test", capacity=100, low_watermark=10)  # type: ignore[arg-type]
    owner.acquire()
    return owner, store


def _refill_in_background(owner: PartitionOwner, store: HeldStore) -> tuple[threading.Thread, list[int]]:
    store.hold = True
    counts: list[int] = []
    thread = threading.Thread(target=lambda: counts.append(owner.refill(force=True)))
    thread.start()
    assert store.reading.wait(5)
    return thread, counts


def test_a_dequeue_is_served_from_the_buffer_while_a_refill_reads_the_store(pacer: Pacer) -> None:
    pacer.enqueue("jobs", [b"a", b"b"])
    owner, store = _owner(pacer)
    assert owner.refill(force=True) == 2
    pacer.enqueue("jobs", [b"c"])
    owner.notify()  # as the doorbell does
    thread, counts = _refill_in_background(owner, store)
    assert [lease.body for lease in owner.dequeue(1, wait=False)] == [b"a"]  # not Busy: the lock is free
    with pytest.raises(Busy):  # it needs more than the buffer holds, and a refill is under way
        owner.dequeue(5, wait=False)
    store.go.set()
    thread.join(5)
    assert counts == [1]
    assert [lease.body for lease in owner.dequeue(5)] == [b"b", b"c"]


def test_a_refill_keeps_nothing_when_the_buffer_was_dropped_while_it_read(pacer: Pacer) -> None:
    pacer.enqueue("jobs", [b"a", b"b"])
    owner, store = _owner(pacer)
    thread, counts = _refill_in_background(owner, store)
    owner.release()  # the partition is left: its jobs stay PENDING for the next owner
    store.go.set()
    thread.join(5)
    assert counts == [0] and owner.buffered() == 0


def test_the_low_watermark_bell_rings_only_while_the_store_may_hold_more(pacer: Pacer) -> None:
    pacer.enqueue("jobs", [b"x"] * 20)
    owner, _ = _owner(pacer)
    rung: list[int] = []
    owner.on_low = lambda: rung.append(owner.buffered())
    assert owner.refill(force=True) == 20  # room for 100: every ready job is buffered now
    owner.dequeue(15)
    assert rung == []  # a refill now would find nothing new
    owner.notify()  # jobs were enqueued
    owner.dequeue(1)
    assert rung == [4]


def test_embedded_owners_are_refilled_in_the_background_when_a_dequeue_leaves_them_low(tmp_path: Path) -> None:
    service = Pacer.open(f"sqlite:///{tmp_path}/jobs.db", buffer_capacity=40)
    try:
        service.create_queue("jobs")
        service.enqueue("jobs", [b"x"] * 100)
        service.dequeue("jobs", 1)  # the first dequeue's own refill: 1 taken of up to 400 read, 40 the room
        owner = service.owner("jobs", 0)
        assert owner.buffered() == 39
        service.dequeue("jobs", 30)  # leaves 9, below the low watermark of 10: the refill thread tops it up
        deadline = threading.Event()
        for _ in range(500):
            if owner.buffered() == 40:
                break
            deadline.wait(0.01)
        assert owner.buffered() == 40
        assert [lease.body for lease in service.dequeue("jobs", 40)] == [b"x"] * 40  # no refill of its own needed
    finally:
        service.close()
    assert not any(thread.name == "pacer-refill" for thread in threading.enumerate())  # stopped by close


class Clock:
    """Stands in for the owner's ``time`` module: ``monotonic()`` moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class CountingStore:
    """Wraps a store, counting ``reserve`` calls (the owner's reads of the partition)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.reads = 0

    def reserve(
        self, name: str, partition: int, epoch: int, limit: int, now: int, held: Collection[int] = ()
    ) -> list[Reserved]:
        self.reads += 1
        return self._store.reserve(name, partition, epoch, limit, now, held)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(owner_module, "time", fake)
    return fake


def _counted_owner(pacer: Pacer) -> tuple[PartitionOwner, CountingStore]:
    store = CountingStore(pacer.store)
    owner = PartitionOwner(store, pacer.queue_config("jobs"), 0, "test", capacity=100)  # type: ignore[arg-type]
    owner.acquire()
    return owner, store


def test_a_partition_that_just_yielded_jobs_is_read_again_soon(pacer: Pacer, clock: Clock) -> None:
    pacer.enqueue("jobs", [b"a"])
    owner, store = _counted_owner(pacer)
    assert [lease.body for lease in owner.dequeue(5)] == [b"a"]  # it found fewer than it had room for
    pacer.store.enqueue("jobs", 0, [Job(b"b")], now_us())  # by another process: no notify
    clock.now += FIRST_RECHECK_S / 2
    assert owner.dequeue(5) == [] and store.reads == 1  # too soon to ask the store again
    clock.now += FIRST_RECHECK_S
    assert [lease.body for lease in owner.dequeue(5)] == [b"b"]
    assert store.reads == 2


def test_reads_of_an_idle_partition_back_off_to_the_idle_recheck(pacer: Pacer, clock: Clock) -> None:
    owner, store = _counted_owner(pacer)
    pacer.enqueue("jobs", [b"a"])
    owner.dequeue(1)
    read_at = [clock.now]
    step = FIRST_RECHECK_S / 4
    while clock.now - read_at[0] < 0.3:  # dequeues keep asking, every quarter of the shortest gap
        clock.now += step
        reads = store.reads
        assert owner.dequeue(1) == []
        if store.reads > reads:
            read_at.append(clock.now)
    gaps = [round(later - earlier, 6) for earlier, later in itertools.pairwise(read_at)]
    assert gaps[0] == pytest.approx(FIRST_RECHECK_S)  # after the read that found a job
    assert gaps == sorted(gaps)  # each read that finds nothing doubles the next gap, up to the idle recheck
    assert gaps[-1] == pytest.approx(IDLE_RECHECK_S)
    assert gaps.count(gaps[-1]) > 5  # an idle partition is read every IDLE_RECHECK_S, not less often
    owner.notify()  # jobs were enqueued here: the next dequeue reads at once
    pacer.enqueue("jobs", [b"b"])
    assert [lease.body for lease in owner.dequeue(1)] == [b"b"]


class RecordingOwner:
    """Stands in for an owner: records its refills; the one named ``hold`` blocks until ``go`` is set."""

    def __init__(self, name: str, served: list[str], hold: threading.Event | None = None) -> None:
        self.queue, self.partition, self.name = "jobs", 0, name
        self.served, self.hold, self.go = served, hold, threading.Event()

    def refill(self) -> int:
        if self.hold is not None:
            self.hold.set()
            assert self.go.wait(5)
        self.served.append(self.name)
        return 0


def test_the_refill_thread_serves_owners_in_the_order_they_asked() -> None:
    served: list[str] = []
    busy = threading.Event()
    first = RecordingOwner("first", served, busy)
    later = [RecordingOwner(name, served) for name in ("b", "c", "d")]
    refiller = Refiller()
    try:
        refiller.request(first)  # type: ignore[arg-type]
        assert busy.wait(5)  # the thread is in first's refill: the others queue up meanwhile
        for owner in [*later, later[0]]:  # asked twice while waiting: refilled once
            refiller.request(owner)  # type: ignore[arg-type]
        first.go.set()
        for _ in range(500):
            if len(served) == 4:
                break
            threading.Event().wait(0.01)
        assert served == ["first", "b", "c", "d"]
    finally:
        refiller.close()
