"""The owner of one queue partition: its epoch, its bounded buffer of reserved jobs, leases and expiry.

Used by brokers (one per owned partition) and by the embedded service (one per partition). Every write
goes through the store's fence, so an owner that lost its partition gets :class:`Fenced` and stops.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TypeVar

from pacer._accel import leases as made_leases
from pacer._errors import Fenced
from pacer._models import Lease, QueueConfig, now_us
from pacer._ratelimit import TokenBucket
from pacer.storage.base import AckItem, CheckpointItem, Reserved, Store
from psc.common.log import get_logger

T = TypeVar("T")
R = TypeVar("R")
log = get_logger("pacer.owner")
IDLE_RECHECK_S = 0.02  # the longest a drained partition goes unread while dequeues ask for jobs
FIRST_RECHECK_S = 0.001  # after a read that found jobs; doubled by each read in a row that found none
SYNC_REFILL = 400  # a dequeue's own refill: 100 cost 3 to 4 µs of CPU per job more, in more statements


class Busy(Exception):
    """Another dequeue of this partition is under way (``dequeue(wait=False)``)."""


class _Round:
    """One caller's writes waiting for a round: jobs to lease, acks, or both (an ack with the next dequeue)."""

    __slots__ = ("acks", "done", "epoch", "error", "jobs", "leased", "reasons", "wake")

    def __init__(self, epoch: int, jobs: list[Reserved], acks: list[AckItem]) -> None:
        self.epoch, self.jobs, self.acks = epoch, jobs, acks
        self.leased: list[int | None] = []
        self.reasons: list[str | None] = []
        self.error: BaseException | None = None
        self.done = False
        self.wake: threading.Lock | None = None  # held while the caller waits; released once to wake it


class _GroupWriter:
    """Group commit of an owner's writes, lease grants and acks: the calls that arrive while one round is under way
    are written together by the next. One caller at a time leads a round (what is pending when it starts) and
    hands the lead to the first one waiting, so no caller writes for others for longer than one round.

    A round holding both kinds writes them in one statement (``both``), one round trip where two were; when that
    does not apply to every job (``both`` answers None), or the round holds one kind, each kind is written by a
    statement of its own (``grant``, ``ack``: acks first). A failed write fails the calls it carried.
    """

    def __init__(
        self,
        grant: Callable[[int, list[Reserved]], list[int | None]],
        ack: Callable[[int, list[AckItem]], list[str | None]],
        both: Callable[[int, list[Reserved], list[AckItem]], tuple[list[int | None], list[str | None]] | None],
    ) -> None:
        self._grant, self._ack, self._both = grant, ack, both
        self._lock = threading.Lock()
        self._pending: list[_Round] = []
        self._writing = False

    def submit(
        self, epoch: int, jobs: list[Reserved], acks: list[AckItem]
    ) -> tuple[list[int | None], list[str | None]]:
        """Lease ``jobs`` and apply ``acks`` under ``epoch``, alone or with others': when each lease expires (None if
        not leased), and why each ack was not applied (None if it was)."""
        call = _Round(epoch, jobs, acks)
        with self._lock:
            self._pending.append(call)
            if self._writing:
                call.wake = threading.Lock()
                call.wake.acquire()
            self._writing = True
        if call.wake is not None:
            call.wake.acquire()  # woken once: written by another's round, or leading the next one
        if not call.done:
            self._round(call)
        if call.error is not None:
            raise call.error
        return call.leased, call.reasons

    def _round(self, leader: _Round) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        for epoch in dict.fromkeys(c.epoch for c in batch):
            calls = [c for c in batch if c.epoch == epoch]
            self._write(epoch, calls)
            for c in calls:
                c.done = True
                if c is not leader and c.wake is not None:
                    c.wake.release()
        with self._lock:
            if self._pending:
                wake = self._pending[0].wake
                assert wake is not None  # it arrived while this round was being written
                wake.release()
            else:
                self._writing = False

    def _write(self, epoch: int, calls: list[_Round]) -> None:
        jobs = [job for c in calls for job in c.jobs]
        acks = [item for c in calls for item in c.acks]
        try:
            written = self._both(epoch, jobs, acks) if jobs and acks else None
        except BaseException as exc:  # each caller handles the failure of its own items
            _fail(calls, exc)
            return
        if written is not None:
            _leased(calls, written[0])
            _acked(calls, written[1])
            return
        acking = [c for c in calls if c.acks]
        if acking:
            try:
                _acked(acking, self._ack(epoch, acks))
            except BaseException as exc:
                _fail(acking, exc)  # and their leases are not written: the caller tries both again
        leasing = [c for c in calls if c.jobs and c.error is None]
        if leasing:
            try:
                _leased(leasing, self._grant(epoch, [job for c in leasing for job in c.jobs]))
            except BaseException as exc:
                _fail(leasing, exc)


def _leased(calls: list[_Round], results: Sequence[int | None]) -> None:
    for c, share in zip(calls, _shares(results, [len(c.jobs) for c in calls]), strict=True):
        c.leased = share


def _acked(calls: list[_Round], results: Sequence[str | None]) -> None:
    for c, share in zip(calls, _shares(results, [len(c.acks) for c in calls]), strict=True):
        c.reasons = share


def _shares(results: Sequence[R], counts: list[int]) -> list[list[R]]:
    """``results`` cut into consecutive runs of ``counts`` items: each call's share of a round's results."""
    ends = list(itertools.accumulate(counts))
    return [list(results[end - count : end]) for count, end in zip(counts, ends, strict=True)]


def _fail(calls: list[_Round], exc: BaseException) -> None:
    for c in calls:
        c.error = exc


class PartitionOwner:
    def __init__(
        self,
        store: Store,
        config: QueueConfig,
        partition: int,
        owner_id: str,
        *,
        capacity: int = 1000,
        low_watermark: int | None = None,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.store = store
        self.queue = config.name
        self.partition = partition
        self.owner_id = owner_id
        self.capacity = capacity
        self.low_watermark = capacity // 4 if low_watermark is None else low_watermark
        self.epoch = 0
        self.lost = False
        self._clock = clock
        self._buffer: collections.deque[Reserved] = collections.deque()
        self._leasing: set[int] = set()  # taken from the buffer, lease not yet written: a refill skips them
        self._lock = threading.Lock()  # the buffer; never held across a round trip to the store
        self._refilling = threading.Lock()  # one refill at a time, so two never buffer the same job
        self._generation = 0  # bumped when the buffer is dropped: a refill begun before keeps nothing it read
        self._notified = 0  # notify() calls so far
        self._bucket = TokenBucket(None)
        self.config = config
        self.on_low: Callable[[], None] | None = None  # called when a dequeue leaves the buffer low
        # A dequeue finding the buffer short asks MySQL, and one leaving it low rings ``on_low``, only if a
        # refill may find something: not soon after a refill that found fewer jobs than it had room for (every
        # ready job is buffered), unless jobs were enqueued since (notify). Soon is FIRST_RECHECK_S after a
        # refill that found some (jobs are arriving, from producers whose enqueues this owner does not hear of),
        # doubling with each refill in a row that found none, up to IDLE_RECHECK_S: an idle partition is read
        # as seldom as before, a busy one without a 20 ms gap each time it runs dry.
        self._drained_at: float | None = None
        self._recheck_s = FIRST_RECHECK_S
        self._writer = _GroupWriter(self._write_leases, self._write_acks, self._write_both)

    @property
    def config(self) -> QueueConfig:
        return self._config

    @config.setter
    def config(self, config: QueueConfig) -> None:
        self._config = config
        rate = config.max_jobs_per_second
        self._bucket.set_rate(None if rate is None else rate / config.partitions)

    def acquire(self) -> int:
        """Take the partition over (a higher epoch); the last owner's buffered jobs are PENDING for this one."""
        with self._refilling, self._lock:
            self.epoch = self.store.acquire(self.queue, self.partition, self.owner_id, self._clock())
            self._drop_buffer()
            self.lost = False
            return self.epoch

    def buffered(self) -> int:
        return len(self._buffer)

    def refill(self, *, force: bool = False) -> int:
        """Reserve jobs into the buffer when it is below its low watermark (or ``force``); how many."""
        return self._refill(force)

    def notify(self) -> None:
        """Jobs were enqueued to this partition, or made PENDING again: the next dequeue that needs more asks
        MySQL."""
        self._notified += 1
        self._drained_at = None

    def _refill(self, force: bool, at_most: int | None = None, need: int = 0, wait: bool = True) -> int:
        """The store is read outside the buffer's lock, so dequeues go on serving the buffer meanwhile. ``need``:
        a dequeue's refill, given up if the buffer holds that many by the time this one's turn comes (or the refill
        before found every ready job); ``wait=False`` raises :class:`Busy` if another refill is under way."""
        if not self._refilling.acquire(blocking=wait):
            raise Busy
        try:
            with self._lock:
                self._check_owned()
                room = min(self.capacity - len(self._buffer), at_most or self.capacity)
                if room <= 0 or (not force and len(self._buffer) > self.low_watermark):
                    return 0
                if need and (len(self._buffer) >= need or not self._may_find_more()):
                    return 0
                epoch, generation, notified = self.epoch, self._generation, self._notified
                held = {job.local_id for job in self._buffer} | self._leasing
            found = self._fenced(
                lambda: self.store.reserve(self.queue, self.partition, epoch, room, self._clock(), held)
            )
            with self._lock:
                if generation != self._generation:  # dropped meanwhile (released, fenced, taken over again)
                    return 0
                self._buffer.extend(found)
                drained = len(found) < room and notified == self._notified
                self._drained_at = time.monotonic() if drained else None
                self._recheck_s = min(2 * self._recheck_s, IDLE_RECHECK_S) if not found else FIRST_RECHECK_S
            return len(found)
        finally:
            self._refilling.release()

    def dequeue(self, limit: int, *, wait: bool = True) -> list[Lease]:
        """Up to ``limit`` jobs from the buffer, leased; refills first when it holds fewer than ``limit``.

        The lock covers taking jobs from the buffer, not a refill's read nor writing the leases: concurrent
        dequeues of one partition write their leases side by side. ``wait=False`` raises :class:`Busy` at
        once if another dequeue is taking jobs from this partition's buffer, or one needs a refill while
        another refill is under way.
        """
        return self.ack_and_dequeue((), limit, wait=wait)[1]

    def ack_and_dequeue(
        self, items: Sequence[AckItem], limit: int, *, wait: bool = True
    ) -> tuple[list[str | None], list[Lease]]:
        """Apply acks and dequeue as :meth:`ack` and :meth:`dequeue`, written in one round: per ack None (applied)
        or why not, and the leases. On an error nothing of it is known to be written; the acks can be sent again
        (a replayed success ack is accepted). ``limit`` 0 only acks."""
        taken: list[Reserved] = []
        epoch = self.epoch
        if limit > 0:
            taken, epoch = self._take_or_refill(limit, wait)
        acks = list(items)
        reasons, leases = self._lease(taken, epoch, acks) if taken or acks else ([], [])
        if not all(item.succeeded for item in acks):
            self.notify()  # a failed job with attempts left is PENDING again
        return reasons, leases

    def _take_or_refill(self, limit: int, wait: bool) -> tuple[list[Reserved], int]:
        if not self._lock.acquire(blocking=wait):
            raise Busy
        try:
            self._check_owned()
            short = len(self._buffer) < limit and self._may_find_more()
            if not short:
                return self._take(limit), self.epoch
        finally:
            self._lock.release()
        # A dequeue waits for this refill: a small one, so that it answers soon. The background refills
        # (doorbell, low watermark, timer) fill the rest of the buffer.
        self._refill(force=True, at_most=max(limit, SYNC_REFILL), need=limit, wait=wait)
        with self._lock:
            self._check_owned()
            return self._take(limit), self.epoch

    def _check_owned(self) -> None:
        if self.lost:
            raise Fenced(f"{self.queue} partition {self.partition}: epoch {self.epoch} lost the partition")

    def _take(self, limit: int) -> list[Reserved]:
        granted = self._bucket.take(min(limit, len(self._buffer)))
        taken = [self._buffer.popleft() for _ in range(granted)]
        self._leasing.update(job.local_id for job in taken)
        return taken

    def _drop_buffer(self) -> None:
        """Forget the buffered jobs (still PENDING in the store); a refill under way keeps none of its own."""
        self._buffer.clear()
        self._generation += 1

    def _may_find_more(self) -> bool:
        drained_at = self._drained_at
        return drained_at is None or time.monotonic() - drained_at >= self._recheck_s

    def _write_leases(self, epoch: int, jobs: list[Reserved]) -> list[int | None]:
        """Lease ``jobs``: for each, when its lease expires (µs), or None if it was not leased."""
        now, lease_us = self._clock(), self.lease_length(None)
        leased = self._fenced(lambda: self.store.grant(self.queue, self.partition, epoch, jobs, lease_us, now))
        ids = {job.local_id for job in leased}
        return [now + lease_us if job.local_id in ids else None for job in jobs]

    def _write_both(
        self, epoch: int, jobs: list[Reserved], items: list[AckItem]
    ) -> tuple[list[int | None], list[str | None]] | None:
        """Lease ``jobs`` and apply ``items`` in one statement: their results, or None if it did not apply to all."""
        now, lease_us = self._clock(), self.lease_length(None)
        if not self.store.grant_and_ack(self.queue, self.partition, epoch, jobs, lease_us, items, now):
            return None
        expires: list[int | None] = [now + lease_us] * len(jobs)
        return expires, [None] * len(items)

    def _lease(self, taken: list[Reserved], epoch: int, acks: list[AckItem]) -> tuple[list[str | None], list[Lease]]:
        try:
            expiries, reasons = self._writer.submit(epoch, taken, acks)
        except Exception:
            with self._lock:
                if not self.lost and self.epoch == epoch:  # not fenced: keep the jobs for the next dequeue
                    self._buffer.extendleft(reversed(taken))
            self._bucket.give_back(len(taken))
            raise
        finally:
            self._leasing.difference_update(job.local_id for job in taken)  # leased now, or back in the buffer
        if not taken:
            return reasons, []
        leases = made_leases(taken, expiries, epoch, self.queue, self.partition)
        self._bucket.give_back(len(taken) - len(leases))
        # Rung only while MySQL may hold more ready jobs than the buffer (its last refill filled it, or jobs came
        # since): after a refill that found them all, doorbells and the periodic refill bring the next ones.
        if len(self._buffer) <= self.low_watermark and self.on_low is not None and self._drained_at is None:
            self.on_low()
        return reasons, leases

    def ack(self, items: Sequence[AckItem]) -> list[str | None]:
        """Apply acks; per item None (applied) or why not. Concurrent acks of the partition share a statement."""
        return self.ack_and_dequeue(items, 0)[0]

    def _write_acks(self, epoch: int, items: list[AckItem]) -> list[str | None]:
        return self._fenced(lambda: self.store.ack(self.queue, self.partition, epoch, items, self._clock()))

    def checkpoint(self, items: Sequence[CheckpointItem]) -> list[bool]:
        applied = self._fenced(
            lambda: self.store.checkpoint(self.queue, self.partition, self.epoch, items, self._clock())
        )
        if any(item.move_to_pending for item in items):
            self.notify()
        return applied

    def expire(self) -> int:
        expired = self._fenced(lambda: self.store.expire(self.queue, self.partition, self.epoch, self._clock()))
        if expired:
            self.notify()
        return expired

    def gc(self) -> int:
        return self.store.gc(self.queue, self.partition, self.config, self._clock())

    def gc_behind(self) -> bool:
        """The last GC pass stopped at its row limit: the next should come soon, not an interval later."""
        return self.store.gc_behind(self.queue, self.partition)

    def release(self) -> None:
        """Drop the buffer before leaving the partition (a clean shutdown or a revoke): its jobs are PENDING."""
        with self._lock:
            self._drop_buffer()

    def lease_length(self, extend: timedelta | None) -> int:
        return int((extend or self.config.lease).total_seconds() * 1_000_000)

    def _fenced(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except Fenced:
            self.lost = True
            with self._lock:
                self._drop_buffer()
            raise


class Refiller:
    """A thread that refills owners' buffers when a dequeue leaves them low (their ``on_low``), so that dequeues
    are served from a buffer refilled ahead of them rather than waiting on a refill of their own. Started on the
    first request."""

    def __init__(self) -> None:
        self._wanted: dict[PartitionOwner, None] = {}  # served in the order asked, each once
        self._changed = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def request(self, owner: PartitionOwner) -> None:
        with self._changed:
            if self._closed:
                return
            self._wanted[owner] = None
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pacer-refill", daemon=True)
                self._thread.start()
            self._changed.notify()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the thread: at once if it waits, else after the refill under way, waiting at most ``timeout_s`` (a
        refill blocked on an unresponsive store is left to its read timeout; the thread is a daemon)."""
        with self._changed:
            self._closed = True
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._wanted and not self._closed:
                    self._changed.wait()
                if self._closed:
                    return
                owner = next(iter(self._wanted))  # the longest waiting (popitem would take the newest)
                del self._wanted[owner]
            try:
                owner.refill()
            except Exception as exc:  # fenced, or the store is down: the next dequeue finds out and says so
                log.debug("refill_failed", queue=owner.queue, partition=owner.partition, error=repr(exc))
