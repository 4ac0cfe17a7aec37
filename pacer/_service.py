"""The job service with PinLater's semantics: queues, enqueue, dequeue, ack, checkpoint, lookup, admin.

:class:`Pacer` runs embedded (``Pacer.open("sqlite:///jobs.db")``): it owns every partition itself. A
broker uses the same class and overrides which partitions it owns and what happens after an enqueue.
"""

from __future__ import annotations

import functools
import random
import threading
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pacer._accel import AckGroup, ack_groups
from pacer._errors import InvalidArgument, InvalidDescriptor
from pacer._models import (
    Ack,
    AckResult,
    Checkpoint,
    Descriptor,
    Job,
    JobInfo,
    JobState,
    Lease,
    PartitionInfo,
    QueueConfig,
    ScanPage,
    check_priority,
    check_rate,
    from_us,
    made_descriptor,
    now_us,
    to_us,
)
from pacer._names import queue_name
from pacer._owner import Busy, PartitionOwner, Refiller
from pacer.storage import Store, open_store
from pacer.storage.base import CheckpointItem, Filter, JobRow, stored_states

MAX_BATCH = 1000
# Dequeues start at one partition in runs of this many rather than each at the next: concurrent dequeues of a
# partition write their leases in one statement, and their acks then share one too.
DEQUEUE_RUN = 64


@dataclass(frozen=True)
class MaintenanceReport:
    expired: int
    gc_deleted: int


class Pacer:
    """Pacer's API over a store. Thread-safe."""

    def __init__(self, store: Store, *, owner_id: str = "embedded", buffer_capacity: int = 1000) -> None:
        self.store = store
        self.owner_id = owner_id
        self.buffer_capacity = buffer_capacity
        self._owners: dict[tuple[str, int], PartitionOwner] = {}
        self._configs: dict[str, QueueConfig] = {}
        self._lock = threading.RLock()
        self._next = 0
        self._run = threading.local()  # the run of this thread's last dequeue (see _dequeue_start)
        self._next_enqueue = random.randrange(1 << 16)  # processes enqueueing side by side start apart
        self._refiller = Refiller()

    @classmethod
    def open(cls, storage: str | Sequence[str], **kwargs: object) -> Pacer:
        """Open the store at ``storage`` (create or upgrade its schema) and serve it embedded."""
        store = open_store(storage)
        store.create_schema()
        return cls(store, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        """Hand buffered jobs back and release the store."""
        with self._lock:
            owners = list(self._owners.values())
            self._owners.clear()
        self._refiller.close()
        for owner in owners:
            owner.release()
        self.store.close()

    # -- queues ---------------------------------------------------------------------------------------

    def create_queue(
        self,
        name: str,
        *,
        partitions: int = 1,
        lease: timedelta = timedelta(minutes=5),
        max_jobs_per_second: float | None = None,
        succeeded_ttl: timedelta = timedelta(hours=24),
        failed_ttl: timedelta = timedelta(days=7),
    ) -> None:
        """Create a queue; re-running it repairs a half-created one. One partition keeps FIFO order."""
        config = QueueConfig(queue_name(name), partitions, lease, max_jobs_per_second, succeeded_ttl, failed_ttl)
        self.store.create_queue(config)

    def delete_queue(self, name: str) -> None:
        queue_name(name)
        with self._lock:
            for key in [key for key in self._owners if key[0] == name]:
                del self._owners[key]
            self._configs.pop(name, None)
        self.store.delete_queue(name)

    def queue_names(self) -> list[str]:
        return self.store.queue_names()

    def queue_config(self, name: str) -> QueueConfig:
        config = self.store.queue_config(queue_name(name))
        assert config is not None
        return config

    def set_rate_limit(self, name: str, jobs_per_second: float | None) -> None:
        """Jobs handed out per second across the queue: ``None`` unlimited, ``0`` paused."""
        self.store.set_rate_limit(queue_name(name), check_rate(jobs_per_second))
        self.refresh_config(name)

    def partitions(self, name: str) -> list[PartitionInfo]:
        return self.store.partitions(queue_name(name))

    def refresh_config(self, name: str) -> QueueConfig:
        config = self.queue_config(name)
        with self._lock:
            self._configs[name] = config
            for (queue, _), owner in self._owners.items():
                if queue == name:
                    owner.config = config
        return config

    def _config(self, name: str) -> QueueConfig:
        config = self._configs.get(queue_name(name))
        return config if config is not None else self.refresh_config(name)

    # -- enqueue --------------------------------------------------------------------------------------

    def enqueue(self, queue: str, jobs: Iterable[Job | bytes]) -> list[Descriptor]:
        """Store the jobs; their descriptors in order. Jobs with a key go to the key's partition, the others of
        one call all to one partition, the next partition at the next call: one INSERT per call, not one per
        partition, while calls still spread evenly (Kafka's sticky partitioning)."""
        config = self._config(queue)
        batch = [job if isinstance(job, Job) else Job(job) for job in jobs]
        if not 0 < len(batch) <= MAX_BATCH:
            raise InvalidArgument(f"enqueue takes 1..{MAX_BATCH} jobs, got {len(batch)}")
        with self._lock:
            self._next_enqueue += 1
            sticky = self._next_enqueue % config.partitions
        groups: dict[int, list[int]] = defaultdict(list)
        for index, job in enumerate(batch):
            partition = sticky if job.key is None else zlib.crc32(job.key.encode()) % config.partitions
            groups[partition].append(index)
        out: list[Descriptor | None] = [None] * len(batch)
        now = now_us()
        for partition, indexes in groups.items():
            stored = self.store.enqueue(queue, partition, [batch[i] for i in indexes], now)
            for index, (local_id, priority) in zip(indexes, stored, strict=True):
                out[index] = made_descriptor(queue, partition, priority, local_id)
        self._enqueued(queue, sorted(groups))
        return [d for d in out if d is not None]

    def _enqueued(self, queue: str, partitions: list[int]) -> None:
        """After jobs are stored: the owners here look for them at their next dequeue (a broker also rings
        the owners' doorbells)."""
        for partition in partitions:
            owner = self._owners.get((queue, partition))
            if owner is not None:
                owner.notify()

    # -- owner operations -----------------------------------------------------------------------------

    def owner(self, queue: str, partition: int) -> PartitionOwner:
        """The owner of a partition in this process; embedded, it is acquired on first use."""
        key = (queue, partition)
        with self._lock:
            owner = self._owners.get(key)
            if owner is None or owner.lost:
                config = self._config(queue)
                if not 0 <= partition < config.partitions:
                    raise InvalidDescriptor(f"queue {queue!r} has no partition {partition}")
                owner = PartitionOwner(self.store, config, partition, self.owner_id, capacity=self.buffer_capacity)
                owner.acquire()
                owner.on_low = functools.partial(self._refiller.request, owner)
                self._owners[key] = owner
            return owner

    def dequeue_partitions(self, queue: str) -> list[int]:
        """The partitions this process dequeues from, in the order to visit them."""
        count = self._config(queue).partitions
        start = self._dequeue_start() % count
        return [(start + i) % count for i in range(count)]

    def _dequeue_start(self) -> int:
        """Where the next dequeue starts visiting partitions, modulo their number: the same for a run of
        ``DEQUEUE_RUN`` dequeues, then the next one. A dequeue visits the others when that one has no job."""
        with self._lock:
            self._next += 1
            self._run.started = run = self._next // DEQUEUE_RUN
        return run

    def _end_dry_run(self) -> None:
        """The partition this thread's dequeue started at had no job to give: end its run, so that the next
        dequeues start at the next partition rather than each finding that one dry first (and writing their
        acks apart from their leases)."""
        with self._lock:
            run = self._run.started
            if self._next // DEQUEUE_RUN == run:
                self._next = (run + 1) * DEQUEUE_RUN

    def dequeue(self, queue: str, limit: int = 1) -> list[Lease]:
        """Up to ``limit`` leased jobs, priority 1 first, oldest first within a partition."""
        queue_name(queue)
        _check_limit(limit)
        return self._dequeue(queue, limit, self.dequeue_partitions(queue), at_start=True)

    def _dequeue(self, queue: str, limit: int, partitions: list[int], *, at_start: bool = False) -> list[Lease]:
        """``at_start``: ``partitions`` begin at the run's start (a dequeue that finds it dry ends the run)."""
        out: list[Lease] = []
        busy: list[int] = []
        # Partitions are served one request at a time: first those no other request is serving, then the
        # busy ones, waiting for them.
        for partition in partitions:
            try:
                out += self.owner(queue, partition).dequeue(limit - len(out), wait=False)
            except Busy:
                busy.append(partition)
            else:
                if at_start and not out:
                    self._end_dry_run()
            at_start = False
            if len(out) >= limit:
                return out
        for partition in busy:
            out += self.owner(queue, partition).dequeue(limit - len(out))
            if len(out) >= limit:
                break
        return out

    def ack(
        self, queue: str, *, succeeded: Iterable[Ack | Lease] = (), failed: Iterable[Ack | Lease] = ()
    ) -> AckResult:
        """Finish leased jobs. A failed job with attempts left runs again after its ``retry_delay``."""
        result = AckResult()
        for partition, group in sorted(self._ack_groups(queue, succeeded, failed).items()):
            _record(result, group.descriptors, self.owner(queue, partition).ack(group.items))
        return result

    def ack_and_dequeue(
        self,
        queue: str,
        limit: int = 1,
        *,
        succeeded: Iterable[Ack | Lease] = (),
        failed: Iterable[Ack | Lease] = (),
    ) -> tuple[AckResult, list[Lease]]:
        """:meth:`ack` the jobs a worker finished, then :meth:`dequeue` its next ones: a worker's loop in one call.
        When the acks are of the partition the dequeue starts at (a worker's jobs mostly are), both are written
        in one round trip. On an error, send the acks again: a replayed success ack is accepted."""
        _check_limit(limit)
        groups = self._ack_groups(queue, succeeded, failed)
        partitions = self.dequeue_partitions(queue)
        result = AckResult()
        leases: list[Lease] = []
        first = partitions[0]
        at_start = True
        if list(groups) == [first]:
            try:
                reasons, leases = self.owner(queue, first).ack_and_dequeue(groups[first].items, limit, wait=False)
            except Busy:  # another request is taking from that buffer: ack alone, below
                pass
            else:
                _record(result, groups.pop(first).descriptors, reasons)
                partitions, at_start = partitions[1:], False
                if not leases:
                    self._end_dry_run()
        for partition, group in sorted(groups.items()):
            _record(result, group.descriptors, self.owner(queue, partition).ack(group.items))
        if len(leases) < limit:
            leases += self._dequeue(queue, limit - len(leases), partitions, at_start=at_start)
        return result, leases

    def _ack_groups(
        self, queue: str, succeeded: Iterable[Ack | Lease], failed: Iterable[Ack | Lease]
    ) -> dict[int, AckGroup]:
        """The acks by partition, as the store's items; every descriptor checked first."""
        return ack_groups(succeeded, failed, queue_name(queue))

    def checkpoint(self, queue: str, items: Iterable[Checkpoint]) -> list[bool]:
        """Apply checkpoints to leased jobs; True where applied (the claim still held the job)."""
        batch = list(items)
        for item in batch:
            Descriptor.parse(item.descriptor, queue_name(queue))
            if item.attempts_allowed is not None and not 1 <= item.attempts_allowed <= 1000:
                raise InvalidArgument(f"attempts_allowed {item.attempts_allowed!r} must be in 1..1000")
        out: dict[int, bool] = {}
        by_partition: dict[int, list[int]] = defaultdict(list)
        for index, item in enumerate(batch):
            by_partition[item.descriptor.partition].append(index)
        for partition, indexes in sorted(by_partition.items()):
            owner = self.owner(queue, partition)
            applied = owner.checkpoint([_checkpoint_item(batch[i], owner) for i in indexes])
            out |= dict(zip(indexes, applied, strict=True))
        return [out[i] for i in range(len(batch))]

    def run_maintenance(self, queue: str) -> MaintenanceReport:
        """Expire leases and delete finished jobs past retention, on the partitions this process owns."""
        expired = deleted = 0
        for partition in self.dequeue_partitions(queue):
            owner = self.owner(queue, partition)
            expired += owner.expire()
            deleted += owner.gc()
        return MaintenanceReport(expired, deleted)

    # -- reads and admin ------------------------------------------------------------------------------

    def lookup(
        self, descriptors: Iterable[Descriptor | str], *, include_body: bool = False
    ) -> dict[Descriptor, JobInfo]:
        """What is known of each job; unknown jobs are left out."""
        groups: dict[tuple[str, int], list[Descriptor]] = defaultdict(list)
        for text in descriptors:
            descriptor = Descriptor.parse(text)
            groups[(descriptor.queue, descriptor.partition)].append(descriptor)
        out: dict[Descriptor, JobInfo] = {}
        for (queue, partition), wanted in groups.items():
            rows = self.store.lookup(queue, partition, [d.local_id for d in wanted], include_body)
            for row in rows:
                info = _job_info(queue, partition, row)
                out[info.descriptor] = info
        return out

    def count(
        self,
        queue: str,
        state: JobState | str,
        *,
        priority: int | None = None,
        future: bool | None = None,
        body_regex: str | None = None,
    ) -> int:
        """Jobs in ``state``; ``future`` True: runnable later, False: runnable now, None: either."""
        where = self._filter(state, priority, future, body_regex)
        now = now_us()
        return sum(self.store.count(queue, p, where, now) for p in range(self._config(queue).partitions))

    def scan(
        self,
        queue: str,
        state: JobState | str,
        *,
        priority: int | None = None,
        future: bool | None = None,
        body_regex: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ScanPage:
        """A page of jobs in ``state``, partition by partition, newest first; pass ``cursor`` for the next."""
        where = self._filter(state, priority, future, body_regex)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_BATCH:
            raise InvalidArgument(f"scan limit {limit!r} must be an integer in 1..{MAX_BATCH}")
        partitions = self._config(queue).partitions
        partition, before = _parse_cursor(cursor, partitions)
        jobs: list[JobInfo] = []
        now = now_us()
        while partition < partitions and len(jobs) < limit:
            rows = self.store.scan(queue, partition, where, limit - len(jobs), before, now)
            jobs += [_job_info(queue, partition, row) for row in rows]
            if len(jobs) >= limit and rows:
                return ScanPage(jobs, f"{partition}.{rows[-1].local_id}")
            partition, before = partition + 1, None
        return ScanPage(jobs, None)

    def retry_failed(
        self,
        queue: str,
        *,
        priority: int | None = None,
        attempts: int = 1,
        run_after: datetime | None = None,
        limit: int = 1000,
    ) -> int:
        """Give FAILED jobs ``attempts`` more tries; how many."""
        if priority is not None:
            check_priority(priority)
        if not isinstance(attempts, int) or not 1 <= attempts <= 1000:
            raise InvalidArgument(f"attempts {attempts!r} must be an integer in 1..1000")
        now = now_us()
        at = now if run_after is None else to_us(run_after)
        done = 0
        retried = []
        for partition in range(self._config(queue).partitions):
            if done >= limit:
                break
            count = self.store.retry_failed(queue, partition, priority, attempts, at, limit - done, now)
            done += count
            if count:
                retried.append(partition)
        self._enqueued(queue, retried)  # PENDING again: their owners look for them
        return done

    def delete_jobs(
        self,
        queue: str,
        state: JobState | str,
        *,
        priority: int | None = None,
        body_regex: str | None = None,
        limit: int = 1000,
    ) -> int:
        """Delete jobs in ``state`` (matching ``body_regex``, a bound parameter); how many."""
        where = self._filter(state, priority, None, body_regex)
        now = now_us()
        done = 0
        for partition in range(self._config(queue).partitions):
            if done >= limit:
                break
            done += self.store.delete_jobs(queue, partition, where, limit - done, now)
        return done

    def _filter(self, state: JobState | str, priority: int | None, future: bool | None, regex: str | None) -> Filter:
        if priority is not None:
            check_priority(priority)
        if regex is not None and (not isinstance(regex, str) or len(regex) > 1000):
            raise InvalidArgument("body_regex must be a string of at most 1000 characters")
        return Filter(stored_states(JobState.parse(state)), priority, future, regex)


def _check_limit(limit: int) -> None:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_BATCH:
        raise InvalidArgument(f"dequeue limit {limit!r} must be an integer in 1..{MAX_BATCH}")


def _record(result: AckResult, descriptors: list[Descriptor], reasons: list[str | None]) -> None:
    if reasons.count(None) == len(reasons):  # the common case: every ack applied
        result.accepted.extend(descriptors)
        return
    for descriptor, reason in zip(descriptors, reasons, strict=True):
        if reason is None:
            result.accepted.append(descriptor)
        else:
            result.rejected[descriptor] = reason


def _checkpoint_item(item: Checkpoint, owner: PartitionOwner) -> CheckpointItem:
    return CheckpointItem(
        item.descriptor.local_id,
        item.claim,
        owner.lease_length(item.extend_lease),
        item.new_body,
        item.move_to_pending,
        None if item.run_after is None else to_us(item.run_after),
        item.attempts_allowed,
        item.prepend_status,
    )


def _job_info(queue: str, partition: int, row: JobRow) -> JobInfo:
    state = JobState(0 if row.state == 4 else row.state)
    created, run_after, updated = from_us(row.created_at), from_us(row.run_after), from_us(row.updated_at)
    assert created is not None and run_after is not None and updated is not None
    return JobInfo(
        Descriptor(queue, partition, row.priority, row.local_id),
        state,
        row.attempts_allowed,
        row.attempts_remaining,
        row.custom_status,
        created,
        run_after,
        updated,
        from_us(row.finished_at),
        row.claim,
        row.body,
    )


def _parse_cursor(cursor: str | None, partitions: int) -> tuple[int, int | None]:
    if cursor is None:
        return 0, None
    try:
        partition_text, before_text = cursor.split(".")
        partition, before = int(partition_text), int(before_text)
    except (ValueError, AttributeError):
        raise InvalidArgument(f"malformed scan cursor {cursor!r}; pass the cursor a scan returned") from None
    if not 0 <= partition < partitions or before < 0:
        raise InvalidArgument(f"scan cursor {cursor!r} is out of range for this queue")
    return partition, before
