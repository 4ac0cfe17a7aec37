"""Lease writes of concurrent dequeues are written together, one statement per round."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from pacer._errors import Fenced
from pacer._owner import _GrantWriter
from pacer.storage.base import Reserved


def job(local_id: int) -> Reserved:
    return Reserved(local_id, 2, 0, 3, 3, 0, b"")


class SlowStore:
    """A write that blocks until released, so that dequeues pile up behind it."""

    def __init__(self, leave_out: frozenset[int] = frozenset(), fail_epoch: int | None = None) -> None:
        self.calls: list[tuple[int, list[int]]] = []
        self.release = threading.Event()
        self.started = threading.Event()
        self.leave_out, self.fail_epoch = leave_out, fail_epoch

    def write(self, epoch: int, jobs: list[Reserved]) -> tuple[list[Reserved], int]:
        self.calls.append((epoch, [j.local_id for j in jobs]))
        self.started.set()
        self.release.wait(5)
        if epoch == self.fail_epoch:
            raise Fenced("lost")
        return [j for j in jobs if j.local_id not in self.leave_out], 1000 + len(self.calls)


Leased = tuple[list[Reserved], int]


def run_all(calls: list[Callable[[], Leased]]) -> list[Leased]:
    out: list[Leased] = [([], 0)] * len(calls)

    def target(i: int) -> None:
        out[i] = calls[i]()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    return out


def test_dequeues_arriving_during_a_write_share_the_next_one() -> None:
    store = SlowStore(leave_out=frozenset({22}))
    writer = _GrantWriter(store.write)
    first = threading.Thread(target=writer.lease, args=(7, [job(1)]))
    first.start()
    assert store.started.wait(5)
    waiting: list[Callable[[], Leased]] = [
        lambda i=i: writer.lease(7, [job(10 * i + 1), job(10 * i + 2)])  # type: ignore[misc]
        for i in (1, 2, 3)
    ]
    results: list[Leased] = []
    collector = threading.Thread(target=lambda: results.extend(run_all(waiting)))
    collector.start()
    while len(writer._pending) < 3:  # every one is queued behind the write under way
        threading.Event().wait(0.01)
    store.release.set()
    first.join(5)
    collector.join(10)
    assert store.calls == [(7, [1]), (7, [11, 12, 21, 22, 31, 32])]  # two statements for four dequeues
    assert [[j.local_id for j in leased] for leased, _ in results] == [[11, 12], [21], [31, 32]]
    assert {expires for _, expires in results} == {1002}


def test_a_failed_write_fails_only_its_epoch_and_the_lead_passes_on() -> None:
    store = SlowStore(fail_epoch=3)
    store.release.set()
    writer = _GrantWriter(store.write)
    assert writer.lease(4, [job(1)])[0] == [job(1)]
    with pytest.raises(Fenced):
        writer.lease(3, [job(2)])
    assert writer.lease(4, [job(3)])[0] == [job(3)]  # nobody is left holding the lead
    assert not writer._writing and not writer._pending
