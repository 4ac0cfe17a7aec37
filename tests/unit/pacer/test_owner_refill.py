"""A partition owner's refills read the store outside the buffer's lock: dequeues go on meanwhile, and a refill
whose buffer was dropped while it read keeps nothing."""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest

from pacer import Pacer
from pacer._owner import Busy, PartitionOwner
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
