"""Concurrent writes of one partition (lease grants, acks) are written together, one statement per kind and round."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from pacer._errors import Fenced
from pacer._owner import _GroupWriter


class SlowStore:
    """A write that blocks until released, so that calls pile up behind it. It answers each item with the item
    plus 1000 times its round, or None for the items it leaves out."""

    def __init__(self, leave_out: frozenset[int] = frozenset(), fail_epoch: int | None = None) -> None:
        self.calls: list[tuple[int, list[int]]] = []
        self.release = threading.Event()
        self.started = threading.Event()
        self.leave_out, self.fail_epoch = leave_out, fail_epoch

    def write(self, epoch: int, items: list[int]) -> list[int | None]:
        self.calls.append((epoch, list(items)))
        self.started.set()
        self.release.wait(5)
        if epoch == self.fail_epoch:
            raise Fenced("lost")
        return [None if i in self.leave_out else i + 1000 * len(self.calls) for i in items]


Results = list[int | None]


def run_all(calls: list[Callable[[], Results]]) -> list[Results]:
    out: list[Results] = [[] for _ in calls]

    def target(i: int) -> None:
        out[i] = calls[i]()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    return out


def test_calls_arriving_during_a_write_share_the_next_one_and_get_their_own_results() -> None:
    store = SlowStore(leave_out=frozenset({22}))
    writer = _GroupWriter()
    first = threading.Thread(target=writer.submit, args=(store.write, 7, [1]))
    first.start()
    assert store.started.wait(5)
    waiting: list[Callable[[], Results]] = [
        lambda i=i: writer.submit(store.write, 7, [10 * i + 1, 10 * i + 2])  # type: ignore[misc]
        for i in (1, 2, 3)
    ]
    results: list[Results] = []
    collector = threading.Thread(target=lambda: results.extend(run_all(waiting)))
    collector.start()
    while len(writer._pending) < 3:  # every one is queued behind the write under way
        threading.Event().wait(0.01)
    store.release.set()
    first.join(5)
    collector.join(10)
    assert store.calls == [(7, [1]), (7, [11, 12, 21, 22, 31, 32])]  # two statements for four calls
    assert results == [[2011, 2012], [2021, None], [2031, 2032]]


def test_a_failed_write_fails_only_its_epoch_and_the_lead_passes_on() -> None:
    store = SlowStore(fail_epoch=3)
    store.release.set()
    writer = _GroupWriter()
    assert writer.submit(store.write, 4, [1]) == [1001]
    with pytest.raises(Fenced):
        writer.submit(store.write, 3, [2])
    assert writer.submit(store.write, 4, [3]) == [3003]  # nobody is left holding the lead
    assert not writer._writing and not writer._pending


def test_writes_of_two_kinds_share_a_round_each_with_its_own_statement() -> None:
    grants, acks = SlowStore(), SlowStore()
    acks.release.set()
    writer = _GroupWriter()
    first = threading.Thread(target=writer.submit, args=(grants.write, 7, [1]))
    first.start()
    assert grants.started.wait(5)
    waiting: list[Callable[[], Results]] = [
        lambda: writer.submit(acks.write, 7, [5]),
        lambda: writer.submit(grants.write, 7, [2]),
        lambda: writer.submit(acks.write, 7, [6]),
    ]
    results: list[Results] = []
    collector = threading.Thread(target=lambda: results.extend(run_all(waiting)))
    collector.start()
    while len(writer._pending) < 3:
        threading.Event().wait(0.01)
    grants.release.set()
    first.join(5)
    collector.join(10)
    assert grants.calls == [(7, [1]), (7, [2])]
    assert sorted(acks.calls) == [(7, [5, 6])]  # both acks in the round after the first grant, in one statement
    assert sorted(results) == [[1005], [1006], [2002]]
