"""Concurrent writes of one partition (lease grants, acks) are written together: a round holding both kinds in
one statement, else one statement per kind, each caller getting its own results."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from pacer._errors import Fenced
from pacer._owner import _GroupWriter
from pacer.storage.base import AckItem, Reserved

Written = tuple[list[int | None], list[str | None]]


def job(local_id: int) -> Reserved:
    return Reserved(local_id, 1, 3, 3, 0, b"")


def ack(local_id: int) -> AckItem:
    return AckItem(local_id, "1.1", True)


class SlowStore:
    """Writes that block until released, so that calls pile up behind the first. A grant answers each job's id
    plus 1000 times the number of writes so far, or None for the ids in ``leave_out``; an ack answers None, or
    "stale_claim" for those ids. ``both`` answers None (not applied to all) when ``both_applies`` is False."""

    def __init__(
        self,
        leave_out: frozenset[int] = frozenset(),
        fail: tuple[str, int] | None = None,
        both_applies: bool = True,
    ) -> None:
        self.calls: list[tuple[str, int, list[int], list[int]]] = []
        self.release = threading.Event()
        self.started = threading.Event()
        self.leave_out, self.fail, self.both_applies = leave_out, fail, both_applies

    def _called(self, kind: str, epoch: int, jobs: list[Reserved], acks: list[AckItem]) -> None:
        self.calls.append((kind, epoch, [j.local_id for j in jobs], [a.local_id for a in acks]))
        self.started.set()
        self.release.wait(5)
        if self.fail == (kind, epoch):
            raise Fenced("lost")

    def grant(self, epoch: int, jobs: list[Reserved]) -> list[int | None]:
        self._called("grant", epoch, jobs, [])
        return [None if j.local_id in self.leave_out else j.local_id + 1000 * len(self.calls) for j in jobs]

    def ack(self, epoch: int, acks: list[AckItem]) -> list[str | None]:
        self._called("ack", epoch, [], acks)
        return ["stale_claim" if a.local_id in self.leave_out else None for a in acks]

    def both(self, epoch: int, jobs: list[Reserved], acks: list[AckItem]) -> Written | None:
        self._called("both", epoch, jobs, acks)
        if not self.both_applies:
            return None
        return [j.local_id + 1000 * len(self.calls) for j in jobs], [None] * len(acks)

    def writer(self) -> _GroupWriter:
        return _GroupWriter(self.grant, self.ack, self.both)


def run_all(calls: list[Callable[[], Written]]) -> list[Written]:
    out: list[Written] = [([], []) for _ in calls]

    def target(i: int) -> None:
        out[i] = calls[i]()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    return out


def behind_a_first_grant(store: SlowStore, writer: _GroupWriter, calls: list[Callable[[], Written]]) -> list[Written]:
    """Start a grant of job 1 that blocks, queue ``calls`` behind it, release; their results in order."""
    first = threading.Thread(target=writer.submit, args=(7, [job(1)], []))
    first.start()
    assert store.started.wait(5)
    results: list[Written] = []
    collector = threading.Thread(target=lambda: results.extend(run_all(calls)))
    collector.start()
    while len(writer._pending) < len(calls):  # every one is queued behind the write under way
        threading.Event().wait(0.01)
    store.release.set()
    first.join(5)
    collector.join(10)
    assert not writer._writing and not writer._pending
    return results


def test_calls_arriving_during_a_write_share_the_next_one_and_get_their_own_results() -> None:
    store = SlowStore(leave_out=frozenset({22}))
    writer = store.writer()
    results = behind_a_first_grant(
        store, writer, [lambda i=i: writer.submit(7, [job(10 * i + 1), job(10 * i + 2)], []) for i in (1, 2, 3)]
    )
    assert store.calls == [("grant", 7, [1], []), ("grant", 7, [11, 12, 21, 22, 31, 32], [])]
    assert results == [([2011, 2012], []), ([2021, None], []), ([2031, 2032], [])]


def test_a_round_with_grants_and_acks_writes_them_in_one_statement() -> None:
    store = SlowStore()
    writer = store.writer()
    results = behind_a_first_grant(
        store,
        writer,
        [
            lambda: writer.submit(7, [], [ack(5)]),
            lambda: writer.submit(7, [job(2)], [ack(6), ack(8)]),  # a worker's ack with its next dequeue
            lambda: writer.submit(7, [job(3)], []),
        ],
    )
    kinds = [call[0] for call in store.calls]
    assert kinds == ["grant", "both"]
    _, _, jobs, acks = store.calls[1]
    assert sorted(jobs) == [2, 3] and sorted(acks) == [5, 6, 8]
    assert results == [([], [None]), ([2002], [None, None]), ([2003], [])]


def test_when_the_joint_statement_does_not_apply_to_all_each_kind_is_written_apart_acks_first() -> None:
    store = SlowStore(leave_out=frozenset({6}), both_applies=False)
    writer = store.writer()
    results = behind_a_first_grant(
        store,
        writer,
        [lambda: writer.submit(7, [job(2)], [ack(6)]), lambda: writer.submit(7, [], [ack(5)])],
    )
    assert [call[0] for call in store.calls] == ["grant", "both", "ack", "grant"]
    assert sorted(store.calls[2][3]) == [5, 6] and store.calls[3][2] == [2]
    by_first_job = sorted(results, key=lambda r: len(r[0]))
    assert by_first_job == [([], [None]), ([4002], ["stale_claim"])]


def test_a_failed_ack_write_fails_its_callers_and_leaves_their_jobs_unleased() -> None:
    store = SlowStore(fail=("ack", 7), both_applies=False)
    writer = store.writer()
    outcomes: list[str] = []

    def attempt(jobs: list[Reserved], acks: list[AckItem]) -> Written:
        try:
            written = writer.submit(7, jobs, acks)
        except Fenced:
            outcomes.append(f"failed {[j.local_id for j in jobs]}")
            return [], []
        outcomes.append(f"leased {written[0]}")
        return written

    behind_a_first_grant(store, writer, [lambda: attempt([job(2)], [ack(6)]), lambda: attempt([job(3)], [])])
    assert [call[0] for call in store.calls] == ["grant", "both", "ack", "grant"]
    assert store.calls[3][2] == [3]  # job 2's caller failed with its ack: its lease is not written
    assert sorted(outcomes) == ["failed [2]", "leased [4003]"]


def test_a_failed_write_fails_only_its_epoch_and_the_lead_passes_on() -> None:
    store = SlowStore(fail=("grant", 3))
    store.release.set()
    writer = store.writer()
    assert writer.submit(4, [job(1)], []) == ([1001], [])
    with pytest.raises(Fenced):
        writer.submit(3, [job(2)], [])
    assert writer.submit(4, [job(3)], []) == ([3003], [])  # nobody is left holding the lead
    assert not writer._writing and not writer._pending
