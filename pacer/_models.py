"""Pacer's value types: jobs, descriptors, leases, acks, checkpoints, job states and queue settings."""

from __future__ import annotations

import enum
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pacer._errors import InvalidArgument, InvalidDescriptor, PriorityNotSupported
from pacer._names import queue_name

PRIORITIES = (1, 2, 3)
MAX_BODY_BYTES = 1 << 20
MAX_CUSTOM_STATUS = 5000
MAX_KEY_BYTES = 128


class JobState(enum.IntEnum):
    """A job's state as the API reports it (PinLater's numbering)."""

    PENDING = 0
    IN_PROGRESS = 1
    SUCCEEDED = 2
    FAILED = 3

    @classmethod
    def parse(cls, value: object) -> JobState:
        if isinstance(value, JobState):
            return value
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        if isinstance(value, int) and not isinstance(value, bool) and value in cls._value2member_map_:
            return cls(value)
        raise InvalidArgument(f"unknown job state {value!r}; expected one of {', '.join(s.name.lower() for s in cls)}")


# Stored only: a PENDING job held in its owner's buffer. The API reports it as PENDING.
RESERVED = 4


def now_us() -> int:
    """Microseconds since the epoch, the unit of every stored time."""
    return time.time_ns() // 1000


def to_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise InvalidArgument(f"run_after {moment.isoformat()} has no time zone; give an aware datetime")
    return int(moment.timestamp() * 1_000_000)


def from_us(micros: int | None) -> datetime | None:
    return None if micros is None else datetime.fromtimestamp(micros / 1_000_000, UTC)


def check_priority(priority: object) -> int:
    if not isinstance(priority, int) or isinstance(priority, bool) or priority not in PRIORITIES:
        raise PriorityNotSupported(f"priority {priority!r} is not supported; use 1 (first), 2 or 3")
    return priority


@dataclass(frozen=True)
class Job:
    """A job to enqueue. ``run_after`` (an aware datetime) or ``delay`` say when it may run; default now.

    ``attempts`` counts the first try and the retries. Jobs with the same ``key`` (idempotency key) in one
    queue are one job while its row exists: enqueueing again returns the same descriptor.
    """

    body: bytes
    priority: int = 1
    run_after: datetime | None = None
    delay: timedelta | None = None
    attempts: int = 2
    custom_status: str = ""
    key: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.body, bytes):
            raise InvalidArgument(f"job body must be bytes, got {type(self.body).__name__}")
        if len(self.body) > MAX_BODY_BYTES:
            raise InvalidArgument(f"job body is {len(self.body)} bytes; at most {MAX_BODY_BYTES}")
        check_priority(self.priority)
        if self.run_after is not None and self.delay is not None:
            raise InvalidArgument("give run_after or delay, not both")
        if self.run_after is not None:
            to_us(self.run_after)
        if not isinstance(self.attempts, int) or isinstance(self.attempts, bool) or not 1 <= self.attempts <= 1000:
            raise InvalidArgument(f"attempts {self.attempts!r} must be an integer in 1..1000")
        if len(self.custom_status) > MAX_CUSTOM_STATUS:
            raise InvalidArgument(f"custom status is {len(self.custom_status)} characters; at most {MAX_CUSTOM_STATUS}")
        if self.key is not None and not 0 < len(self.key.encode()) <= MAX_KEY_BYTES:
            raise InvalidArgument(f"idempotency key must be 1..{MAX_KEY_BYTES} bytes")

    def run_after_us(self, now: int) -> int:
        if self.run_after is not None:
            return to_us(self.run_after)
        if self.delay is not None:
            return now + int(self.delay.total_seconds() * 1_000_000)
        return now


_DESCRIPTOR = re.compile(r"([^:]+):q(\d{1,5}):p(\d):(\d{1,20})")


@dataclass(frozen=True, order=True)
class Descriptor:
    """Names one job: ``<queue>:q<partition>:p<priority>:<id>``, e.g. ``emails:q3:p1:42``."""

    queue: str
    partition: int
    priority: int
    local_id: int

    def __str__(self) -> str:
        return f"{self.queue}:q{self.partition}:p{self.priority}:{self.local_id}"

    @classmethod
    def parse(cls, text: object, queue: str | None = None) -> Descriptor:
        """The descriptor ``text`` names; :class:`InvalidDescriptor` if malformed or not of ``queue``."""
        if isinstance(text, Descriptor):
            found = text
        else:
            match = _DESCRIPTOR.fullmatch(text) if isinstance(text, str) else None
            if match is None:
                raise InvalidDescriptor(f"malformed job descriptor {text!r}; expected <queue>:q<partition>:p<1-3>:<id>")
            try:
                name = queue_name(match[1])
                priority = check_priority(int(match[3]))
            except InvalidArgument as exc:
                raise InvalidDescriptor(f"malformed job descriptor {text!r}: {exc}") from exc
            found = cls(name, int(match[2]), priority, int(match[4]))
        if queue is not None and found.queue != queue:
            raise InvalidDescriptor(f"job descriptor {found} belongs to queue {found.queue!r}, not {queue!r}")
        return found


@dataclass(frozen=True)
class Lease:
    """A dequeued job: run it, then ack it with ``claim`` before ``lease_expires_at``.

    ``attempts_remaining`` includes this attempt.
    """

    descriptor: Descriptor
    body: bytes
    claim: str
    attempts_allowed: int
    attempts_remaining: int
    lease_expires_at: datetime


_new = object.__new__


def made_descriptor(queue: str, partition: int, priority: int, local_id: int) -> Descriptor:
    """A :class:`Descriptor` of values read from the store: equal to one made by its constructor, which sets each
    field through ``object.__setattr__`` (frozen) and takes 2.5 times as long; dequeues and enqueues make one per
    job."""
    made = _new(Descriptor)
    fields = made.__dict__
    fields["queue"], fields["partition"], fields["priority"], fields["local_id"] = queue, partition, priority, local_id
    return made


def made_lease(
    descriptor: Descriptor, body: bytes, claim: str, attempts_allowed: int, attempts_remaining: int, expires: datetime
) -> Lease:
    """A :class:`Lease` of values read from the store, made as :func:`made_descriptor` makes a descriptor."""
    made = _new(Lease)
    fields = made.__dict__
    fields["descriptor"], fields["body"], fields["claim"] = descriptor, body, claim
    fields["attempts_allowed"], fields["attempts_remaining"], fields["lease_expires_at"] = (
        attempts_allowed,
        attempts_remaining,
        expires,
    )
    return made


@dataclass(frozen=True)
class Ack:
    """The outcome of one leased job. ``retry_delay`` applies to a failed job with attempts left."""

    descriptor: Descriptor
    claim: str
    append_status: str = ""
    retry_delay: timedelta = timedelta(0)

    @classmethod
    def of(cls, item: Ack | Lease) -> Ack:
        return item if isinstance(item, Ack) else cls(item.descriptor, item.claim)


@dataclass(frozen=True)
class Checkpoint:
    """Changes to a leased job: extend its lease, replace its body, reset its attempts, or hand it back.

    ``move_to_pending`` releases the job, runnable at ``run_after`` (default now).
    """

    descriptor: Descriptor
    claim: str
    extend_lease: timedelta | None = None
    new_body: bytes | None = None
    move_to_pending: bool = False
    run_after: datetime | None = None
    attempts_allowed: int | None = None
    prepend_status: str | None = None


@dataclass(frozen=True)
class AckResult:
    """Which acks were applied; ``rejected`` maps a descriptor to ``stale_claim`` or ``not_found``."""

    accepted: list[Descriptor] = field(default_factory=list)
    rejected: dict[Descriptor, str] = field(default_factory=dict)


@dataclass(frozen=True)
class JobInfo:
    descriptor: Descriptor
    state: JobState
    attempts_allowed: int
    attempts_remaining: int
    custom_status: str
    created_at: datetime
    run_after: datetime
    updated_at: datetime
    finished_at: datetime | None
    claim: str | None
    body: bytes | None = None


@dataclass(frozen=True)
class ScanPage:
    """One page of a scan; ``cursor`` continues it, ``None`` when the scan is complete."""

    jobs: list[JobInfo]
    cursor: str | None


@dataclass(frozen=True)
class QueueConfig:
    """A queue's settings. ``max_jobs_per_second``: ``None`` unlimited, ``0`` paused."""

    name: str
    partitions: int = 1
    lease: timedelta = timedelta(minutes=5)
    max_jobs_per_second: float | None = None
    succeeded_ttl: timedelta = timedelta(hours=24)
    failed_ttl: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        queue_name(self.name)
        if not isinstance(self.partitions, int) or not 1 <= self.partitions <= 1024:
            raise InvalidArgument(f"partitions {self.partitions!r} must be an integer in 1..1024")
        if self.lease <= timedelta(0):
            raise InvalidArgument("lease must be positive")
        check_rate(self.max_jobs_per_second)


def check_rate(rate: float | None) -> float | None:
    if rate is not None and (not isinstance(rate, int | float) or isinstance(rate, bool) or rate < 0):
        raise InvalidArgument(f"rate limit {rate!r} must be a number >= 0 (0 pauses) or None (unlimited)")
    return None if rate is None else float(rate)


@dataclass(frozen=True)
class PartitionInfo:
    """Where a queue partition lives and who owns it."""

    queue: str
    partition: int
    shard: int
    epoch: int
    owner: str | None
