"""The storage contract, and its SQL shared by the SQLite and MySQL backends.

Every statement is a constant with bound parameters (``:name``); table names come only from validated
queue names and integer partitions (:func:`pacer._names.partition_table`), and the only values written into
the text are the hot path's integers (:func:`int_list`, :func:`listed_ids`, :func:`same_values`). Times are
integer microseconds since the epoch (UTC). Every owner write (lease, ack, checkpoint, expiry) checks the owner's
epoch: in the statement itself, or by reading the partition's fence row under a lock in the same transaction.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import zlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple, Protocol

from pacer._errors import Fenced, QueueExists, QueueNotFound
from pacer._models import (
    MAX_CUSTOM_STATUS,
    RESERVED,
    Job,
    JobState,
    PartitionInfo,
    QueueConfig,
)
from pacer._names import partition_table, queue_name

# 2: job tables index (state, priority, run_after, local_id) and (finished_at) only, so a lease grant
#    updates one secondary index and an ack two (version 1 also indexed (state, lease_expires_at) and
#    (state, finished_at): three each). Expiry scans the leased jobs through the first index.
# 3: no (finished_at) index, which cost every enqueue an index entry and every ack one moved; GC reads the
#    table in id order instead (a job finishes after it was created).
# 4: the ready index is over two generated columns that an ack leaves as they were: ``lane``, a waiting job's
#    priority, else 0, and ``due_at``, a waiting job's run_after, else the expiry of its last lease (a finished job
#    keeps it). A lease grant moves one index entry and an ack none (in version 3 each moved one). Expiry reads
#    lane 0 in due_at order from where its last pass stopped (the mark, kept with the epoch), each job once.
SCHEMA_VERSION = 4
BATCH = 500
# Bodies and statuses per INSERT, so that one stays under the server's max_allowed_packet (16 MiB on MariaDB
# 10.11, 64 MiB on MySQL 8) even escaped (up to twice as long); a longer job is an INSERT of its own.
BATCH_BYTES = 4 << 20
GC_SCAN = 5000  # rows GC reads per pass
EXPIRE_SCAN = 5000  # index entries an expiry statement reads
# The condition that a job is waiting to run, ready by ``:now``, on the ready index (lane 0 is everything else).
READY = "lane IN (1, 2, 3) AND due_at <= :now"
_ALL_IDS = 2**63 - 1  # an expiry mark's id past every job's


class Tx(Protocol):
    """One open transaction on one shard."""

    def run(self, sql: str, params: dict[str, Any] | None = None) -> int:
        """Execute; the number of rows matched."""

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Execute a query; its rows."""

    def insert(self, sql: str, params: dict[str, Any], count: int) -> list[int]:
        """Execute an INSERT of ``count`` rows; their generated ids in order."""


class Reserved(NamedTuple):
    """A job held in its owner's buffer (stored PENDING: the buffer is the owner's memory alone). A tuple, as
    :class:`AckItem`: one is made per job on the hot path."""

    local_id: int
    priority: int
    attempts_allowed: int
    attempts_remaining: int
    dispatches: int
    body: bytes


class AckItem(NamedTuple):
    local_id: int
    claim: str
    succeeded: bool
    append_status: str = ""
    retry_delay_us: int = 0


@dataclass(frozen=True)
class CheckpointItem:
    local_id: int
    claim: str
    lease_us: int
    new_body: bytes | None = None
    move_to_pending: bool = False
    run_after_us: int | None = None
    attempts_allowed: int | None = None
    prepend_status: str | None = None


@dataclass(frozen=True)
class JobRow:
    local_id: int
    state: int
    priority: int
    run_after: int
    created_at: int
    updated_at: int
    finished_at: int | None
    attempts_allowed: int
    attempts_remaining: int
    claim: str | None
    custom_status: str
    body: bytes | None


@dataclass(frozen=True)
class Filter:
    """Which jobs count, scan and delete look at. ``future``: None all, True later than now, False ready."""

    states: tuple[int, ...]
    priority: int | None = None
    future: bool | None = None
    body_regex: str | None = None


def stored_states(state: JobState) -> tuple[int, ...]:
    """Stored states behind an API state: a buffered job is still PENDING."""
    return (int(state), RESERVED) if state is JobState.PENDING else (int(state),)


def int_list(values: Iterable[int]) -> str:
    """``(1, 2, 3)``: integers written into a statement. Only the hot path's ids, dispatch counts and epochs (read
    from the store, or parsed from a claim) are, each through ``int()``, so nothing else reaches the SQL text; bound
    one by one, PyMySQL escaped each in Python, a few µs per job."""
    return "(" + ", ".join(map(str, map(int, values))) + ")"


def listed_ids(ids: Sequence[int]) -> str:
    """The condition that a row is one of the jobs ``ids`` (integers, written in as by :func:`int_list`), for a hot
    statement. Ids close together (a batch taken from the buffer in order, or leased together) are read by one
    range of the primary key, the list compared row by row (``local_id + 0`` keeps the optimizer from making a
    point lookup of each: about 1.7 µs per id on MariaDB, where the range read costs about 1); ids spread
    further than twice their number are looked up one by one."""
    listed = int_list(ids)
    low, high = min(ids), max(ids)
    if high - low < 2 * len(ids):
        return f"local_id BETWEEN {int(low)} AND {int(high)} AND local_id + 0 IN {listed}"
    return f"local_id IN {listed}"


def same_values(columns: Sequence[str], ids: Sequence[int], values: Sequence[tuple[int, ...]]) -> str:
    """A condition that a row's ``columns`` hold its ``values`` (one tuple per id in ``ids``, integers written in as
    by :func:`int_list`), for a statement that also lists the ids: ``col = v AND ...`` when every row has the same
    values, else ``(col = v AND local_id + 0 IN (...)) OR ...`` per distinct values (compared row by row, as in
    :func:`listed_ids`). A hot batch mostly shares them (a grant's dispatch count 0, an ack's epoch and dispatch
    1); a list of row values, ``(local_id, col) IN ((1, 0), ...)``, cost MariaDB about 1.5 µs per row more."""

    def equal(key: tuple[int, ...]) -> str:
        return " AND ".join([f"{column} = {int(value)}" for column, value in zip(columns, key, strict=True)])

    distinct = set(values)
    if len(distinct) <= 1:
        return equal(distinct.pop()) if distinct else "1 = 0"
    groups: dict[tuple[int, ...], list[int]] = {}
    for local_id, key in zip(ids, values, strict=True):
        groups.setdefault(key, []).append(local_id)
    return (
        "("
        + " OR ".join([f"({equal(key)} AND local_id + 0 IN {int_list(group)})" for key, group in groups.items()])
        + ")"
    )


def parse_claim(claim: str) -> tuple[int, int] | None:
    """A claim's ``(epoch, dispatch)``, or None if it is not one a grant made (it then matches no job)."""
    return _parse_claim(claim) if isinstance(claim, str) else None


@functools.lru_cache(maxsize=1024)
def _parse_claim(claim: str) -> tuple[int, int] | None:
    """Cached: the acks of a partition mostly carry a handful of claims (one epoch, dispatch 1)."""
    epoch, dot, dispatch = claim.partition(".")
    if not (dot and epoch.isdigit() and dispatch.isdigit() and epoch.isascii() and dispatch.isascii()):
        return None
    parsed = int(epoch), int(dispatch)
    return parsed if f"{parsed[0]}.{parsed[1]}" == claim else None


def in_list(name: str, values: Sequence[object]) -> tuple[str, dict[str, Any]]:
    """``(:name0, :name1, ...)`` and its parameters."""
    params = {f"{name}{i}": value for i, value in enumerate(values)}
    return "(" + ", ".join(f":{key}" for key in params) + ")", params


_JOB_COLUMNS = (
    "local_id, state, priority, run_after, created_at, updated_at, finished_at, attempts_allowed, "
    "attempts_remaining, owner_epoch, dispatches, custom_status"
)
# An owner statement's fence, in the statement itself (no lock: see ``grant``).
_FENCED = "(SELECT epoch FROM pacer_owner WHERE queue_name = :q AND partition_id = :p) = :e"
_META_QUEUE = "num_partitions, lease_ms, max_jobs_per_second, succeeded_ttl_s, failed_ttl_s"


class Store:
    """Jobs and queue metadata on one or more shards. Backends supply connections and dialect fragments."""

    # Dialect: appended to SELECTs that claim rows, that lock rows, and to the fence read; after the table of
    # an UPDATE of listed jobs, so it looks them up by id rather than scanning every leased job's index entry.
    skip_locked = ""
    by_id = ""
    for_update = ""
    share_lock = ""
    insert_ignore = "INSERT OR IGNORE"
    # Whether a job table's state, lease expiry and finish time default to 0, so an INSERT may leave them out.
    insert_defaults = False

    def __init__(self) -> None:
        # Per (queue, partition): the id GC's next pass reads after; 0 starts at the first row.
        self._gc_after: dict[tuple[str, int], int] = {}

    @property
    def shard_count(self) -> int:
        raise NotImplementedError

    def transaction(self, shard: int) -> contextlib.AbstractContextManager[Tx]:
        raise NotImplementedError

    def statement(self, shard: int) -> contextlib.AbstractContextManager[Tx]:
        """For one statement that commits by itself: backends may save the COMMIT round trip."""
        return self.transaction(shard)

    def concat(self, *parts: str) -> str:
        return "(" + " || ".join(parts) + ")"

    def regexp(self) -> str:
        return "body REGEXP :body_regex"

    def job_table_ddl(self, table: str) -> list[str]:
        raise NotImplementedError

    def meta_ddl(self) -> list[str]:
        raise NotImplementedError

    def owner_ddl(self) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""

    # -- schema -----------------------------------------------------------------------------------------

    def upgrade_job_table(self, tx: Tx, table: str) -> None:
        """Bring a job table of an earlier schema version to the current columns and indexes; does nothing to a
        current one."""
        raise NotImplementedError

    def upgrade_owner_table(self, tx: Tx) -> None:
        """Add the columns of later schema versions to an earlier ``pacer_owner``; does nothing to a current one."""
        raise NotImplementedError

    def create_schema(self) -> int:
        """Create or upgrade the metadata tables on every shard; the schema version now in place."""
        with self.transaction(0) as tx:
            for statement in self.meta_ddl():
                tx.run(statement)
            found = tx.rows("SELECT version FROM pacer_schema")
            if not found:
                tx.run("INSERT INTO pacer_schema (version) VALUES (:v)", {"v": SCHEMA_VERSION})
        for shard in range(self.shard_count):
            with self.transaction(shard) as tx:
                for statement in self.owner_ddl():
                    tx.run(statement)
                if found and int(found[0][0]) < SCHEMA_VERSION:
                    self.upgrade_owner_table(tx)
        if found and int(found[0][0]) < SCHEMA_VERSION:  # each version's changes to the job tables, idempotent
            for name in self.queue_names():
                for partition, shard in enumerate(self._placement(name, missing_ok=True)):
                    with self.transaction(shard) as tx:
                        table = partition_table(name, partition)
                        tx.run(f"UPDATE {table} SET state = 0 WHERE state = {RESERVED}")  # version 1's buffered jobs
                        self.upgrade_job_table(tx, table)
        if found and int(found[0][0]) < SCHEMA_VERSION:
            with self.transaction(0) as tx:
                tx.run("UPDATE pacer_schema SET version = :v", {"v": SCHEMA_VERSION})
        return SCHEMA_VERSION

    def schema_version(self) -> int | None:
        try:
            with self.transaction(0) as tx:
                found = tx.rows("SELECT version FROM pacer_schema")
        except QueueNotFound:
            return None
        return int(found[0][0]) if found else None

    # -- queues -----------------------------------------------------------------------------------------

    def create_queue(self, config: QueueConfig) -> None:
        """Create the queue, or repair a half-created one; idempotent for the same settings."""
        existing = self.queue_config(config.name, missing_ok=True)
        if existing is not None and existing.partitions != config.partitions:
            raise QueueExists(f"queue {config.name!r} exists with {existing.partitions} partitions")
        first = zlib.crc32(config.name.encode()) % self.shard_count
        shards = [(first + p) % self.shard_count for p in range(config.partitions)]
        with self.transaction(0) as tx:
            if existing is None:
                tx.run(
                    f"{self.insert_ignore} INTO pacer_queue (queue_name, {_META_QUEUE}) "
                    "VALUES (:q, :n, :lease, :rate, :sttl, :fttl)",
                    _config_params(config),
                )
            for partition, shard in enumerate(shards):
                tx.run(
                    f"{self.insert_ignore} INTO pacer_partition (queue_name, partition_id, shard_id) "
                    "VALUES (:q, :p, :s)",
                    {"q": config.name, "p": partition, "s": shard},
                )
        placed = self._placement(config.name)
        for partition in range(config.partitions):
            with self.transaction(placed[partition]) as tx:
                for statement in self.job_table_ddl(partition_table(config.name, partition)):
                    tx.run(statement)
                tx.run(
                    f"{self.insert_ignore} INTO pacer_owner (queue_name, partition_id, epoch) VALUES (:q, :p, 0)",
                    {"q": config.name, "p": partition},
                )

    def delete_queue(self, name: str) -> None:
        """Drop the queue and its jobs; idempotent."""
        self.__dict__.setdefault("_placements", {}).pop(name, None)
        placed = self._placement(queue_name(name), missing_ok=True)
        for partition, shard in enumerate(placed):
            with self.transaction(shard) as tx:
                tx.run(f"DROP TABLE IF EXISTS {partition_table(name, partition)}")
                tx.run("DELETE FROM pacer_owner WHERE queue_name = :q", {"q": name})
        with self.transaction(0) as tx:
            tx.run("DELETE FROM pacer_partition WHERE queue_name = :q", {"q": name})
            tx.run("DELETE FROM pacer_queue WHERE queue_name = :q", {"q": name})

    def queue_names(self) -> list[str]:
        with self.transaction(0) as tx:
            return [row[0] for row in tx.rows("SELECT queue_name FROM pacer_queue ORDER BY queue_name")]

    def queue_config(self, name: str, *, missing_ok: bool = False) -> QueueConfig | None:
        with self.transaction(0) as tx:
            found = tx.rows(f"SELECT {_META_QUEUE} FROM pacer_queue WHERE queue_name = :q", {"q": queue_name(name)})
        if not found:
            if missing_ok:
                return None
            raise QueueNotFound(f"queue {name!r} does not exist")
        partitions, lease_ms, rate, sttl, fttl = found[0]
        return QueueConfig(
            name,
            int(partitions),
            timedelta(milliseconds=int(lease_ms)),
            None if rate is None else float(rate),
            timedelta(seconds=int(sttl)),
            timedelta(seconds=int(fttl)),
        )

    def set_rate_limit(self, name: str, jobs_per_second: float | None) -> None:
        with self.transaction(0) as tx:
            matched = tx.run(
                "UPDATE pacer_queue SET max_jobs_per_second = :rate WHERE queue_name = :q",
                {"rate": jobs_per_second, "q": queue_name(name)},
            )
        if not matched:
            raise QueueNotFound(f"queue {name!r} does not exist")

    def partitions(self, name: str) -> list[PartitionInfo]:
        """Every partition of the queue with its shard, epoch and owner."""
        placed = self._placement(queue_name(name))
        out = []
        for partition, shard in enumerate(placed):
            with self.transaction(shard) as tx:
                found = tx.rows(
                    "SELECT epoch, owner_id FROM pacer_owner WHERE queue_name = :q AND partition_id = :p",
                    {"q": name, "p": partition},
                )
            epoch, owner = found[0] if found else (0, None)
            out.append(PartitionInfo(name, partition, shard, int(epoch), owner))
        return out

    def _placement(self, name: str, *, missing_ok: bool = False) -> list[int]:
        """The shard of each partition of the queue (the shard map)."""
        with self.transaction(0) as tx:
            found = tx.rows(
                "SELECT shard_id FROM pacer_partition WHERE queue_name = :q ORDER BY partition_id", {"q": name}
            )
        if not found and not missing_ok:
            raise QueueNotFound(f"queue {name!r} does not exist")
        return [int(row[0]) for row in found]

    def shard_of(self, name: str, partition: int) -> int:
        """The partition's shard; the shard map is cached (a queue's placement never changes)."""
        cache: dict[str, list[int]] = self.__dict__.setdefault("_placements", {})
        placed = cache.get(name)
        if placed is None:
            placed = cache[name] = self._placement(name)
        if not 0 <= partition < len(placed):
            raise QueueNotFound(f"queue {name!r} has no partition {partition}")
        return placed[partition]

    @contextlib.contextmanager
    def _partition_tx(self, name: str, partition: int) -> Iterator[Tx]:
        try:
            with self.transaction(self.shard_of(name, partition)) as tx:
                yield tx
        except QueueNotFound:
            self.__dict__.setdefault("_placements", {}).pop(name, None)  # deleted, maybe re-created elsewhere
            raise

    @contextlib.contextmanager
    def _partition_statement(self, name: str, partition: int) -> Iterator[Tx]:
        try:
            with self.statement(self.shard_of(name, partition)) as tx:
                yield tx
        except QueueNotFound:
            self.__dict__.setdefault("_placements", {}).pop(name, None)
            raise

    # -- enqueue (any node, no fence) -------------------------------------------------------------------

    def enqueue(self, name: str, partition: int, jobs: Sequence[Job], now: int) -> list[tuple[int, int]]:
        """Insert the jobs into one partition; ``(local_id, priority)`` of each, in order."""
        table = partition_table(name, partition)
        out: list[tuple[int, int]] = []
        batches = insert_batches(jobs)
        if len(batches) == 1 and all(job.key is None for job in jobs):  # one INSERT: it commits by itself
            with self._partition_statement(name, partition) as tx:
                return self._insert(tx, table, jobs, now)
        with self._partition_tx(name, partition) as tx:
            for batch in batches:
                out += self._insert(tx, table, batch, now)
        return out

    def _insert(self, tx: Tx, table: str, jobs: Sequence[Job], now: int) -> list[tuple[int, int]]:
        """Keyless jobs in one multi-row INSERT; keyed ones with INSERT IGNORE, their ids read back by key."""
        out: dict[int, tuple[int, int]] = {}
        keyless = [i for i, job in enumerate(jobs) if job.key is None]
        keyed = [i for i, job in enumerate(jobs) if job.key is not None]
        if keyless:
            sql, params = self._values(table, [jobs[i] for i in keyless], now)
            ids = tx.insert(f"INSERT INTO {sql}", params, len(keyless))
            out |= {index: (local_id, jobs[index].priority) for index, local_id in zip(keyless, ids, strict=True)}
        if keyed:
            sql, params = self._values(table, [jobs[i] for i in keyed], now)
            tx.run(f"{self.insert_ignore} INTO {sql}", params)
            for index in keyed:
                key = jobs[index].key
                assert key is not None
                sql = f"SELECT local_id, priority FROM {table} WHERE idempotency_key = :k"
                found = tx.rows(sql, {"k": key.encode()})
                out[index] = (int(found[0][0]), int(found[0][1]))
        return [out[index] for index in range(len(jobs))]

    def _values(self, table: str, jobs: Sequence[Job], now: int) -> tuple[str, dict[str, Any]]:
        """``table (columns) VALUES (...), ...`` and its parameters. The columns a batch leaves at their defaults are
        left out, as the server parses every value written: the key and the status when no job of the batch has
        one, and the state, lease expiry and finish time (0) where the table has those defaults. A job without a
        lease has lease expiry 0, never NULL: a lease grant then changes no column's stored size, so InnoDB updates
        the row in place. Jobs of a batch mostly share their settings: each distinct value is one parameter,
        escaped once, not one per job."""
        values: list[str] = []
        params: dict[str, Any] = {"now": now}
        names: dict[tuple[str, object], str] = {}

        def param(column: str, value: object) -> str:
            name = names.get((column, value))
            if name is None:
                name = names[(column, value)] = f"{column}{len(names)}"
                params[name] = value
            return name

        keyed = any(job.key is not None for job in jobs)
        with_status = any(job.custom_status for job in jobs)
        zeros = "" if self.insert_defaults else "0, 0, 0, "
        for i, job in enumerate(jobs):
            pr, ra, at = param("pr", job.priority), param("ra", job.run_after_us(now)), param("at", job.attempts)
            optional = f", :{param('cs', job.custom_status)}" if with_status else ""
            if keyed:
                optional += f", :{param('key', None if job.key is None else job.key.encode())}"
            params[f"body{i}"] = job.body
            values.append(f"({zeros}:{pr}, :{ra}, :now, :now, :{at}, :{at}, :body{i}{optional})")
        columns = (
            ("" if self.insert_defaults else "state, lease_expires_at, finished_at, ")
            + "priority, run_after, created_at, updated_at, attempts_allowed, attempts_remaining, body"
            + (", custom_status" if with_status else "")
            + (", idempotency_key" if keyed else "")
        )
        return f"{table} ({columns}) VALUES {', '.join(values)}", params

    # -- ownership (the fence) --------------------------------------------------------------------------

    def acquire(self, name: str, partition: int, owner: str, now: int) -> int:
        """Take the partition over: bump its epoch; the new epoch. The last owner's buffer was never written."""
        with self._partition_tx(name, partition) as tx:
            found = tx.rows(
                f"SELECT epoch FROM pacer_owner WHERE queue_name = :q AND partition_id = :p{self.for_update}",
                {"q": name, "p": partition},
            )
            if not found:
                raise QueueNotFound(f"queue {name!r} has no partition {partition}")
            epoch = int(found[0][0]) + 1
            tx.run(
                "UPDATE pacer_owner SET epoch = :e, owner_id = :me, acquired_at = :now "
                "WHERE queue_name = :q AND partition_id = :p AND epoch = :e0",
                {"e": epoch, "e0": epoch - 1, "me": owner, "now": now, "q": name, "p": partition},
            )
        return epoch

    def _fence(self, tx: Tx, name: str, partition: int, epoch: int, *, exclusive: bool = False) -> tuple[int, int]:
        """Check that ``epoch`` still owns the partition, holding it (``exclusive``: for a write of its row) until
        ``tx`` ends; the partition's expiry mark."""
        found = tx.rows(
            "SELECT epoch, expiry_mark, expiry_mark_id FROM pacer_owner WHERE queue_name = :q AND partition_id = :p"
            f"{self.for_update if exclusive else self.share_lock}",
            {"q": name, "p": partition},
        )
        current = int(found[0][0]) if found else None
        if current != epoch:
            raise Fenced(f"{name} partition {partition}: epoch {epoch} is stale, the partition is at {current}")
        return int(found[0][1]), int(found[0][2])

    # -- owner operations -------------------------------------------------------------------------------

    def reserve(
        self, name: str, partition: int, epoch: int, limit: int, now: int, held: Collection[int] = ()
    ) -> list[Reserved]:
        """Up to ``limit`` ready jobs for the owner's buffer, priority 1 first, oldest first, leaving out the
        jobs it ``held`` (buffered or being leased). Nothing is written: only the partition's owner leases
        its jobs, and a lease grant checks the epoch, the state and the dispatch count it read here."""
        table = partition_table(name, partition)
        params: dict[str, Any] = {"now": now, "n": limit}
        skip = f" AND local_id NOT IN {int_list(sorted(held))}" if held else ""
        with self._partition_statement(name, partition) as tx:
            found = self._ready(tx, table, READY + skip, params)
        if not found:
            with self._partition_tx(name, partition) as tx:
                self._fence(tx, name, partition, epoch)  # a stale owner learns it even on an empty queue
        return found

    def _ready(self, tx: Tx, table: str, ready: str, params: dict[str, Any]) -> list[Reserved]:
        """Up to ``:n`` jobs of ``table`` matching ``ready``, in dispatch order: one range scan of the ready index over
        the three priorities' lanes, in index order (no sort); the buffered ids are left out on the index entries,
        before the rows are read."""
        rows = tx.rows(
            "SELECT local_id, priority, attempts_allowed, attempts_remaining, dispatches, body "
            f"FROM {table} WHERE {ready} ORDER BY lane, due_at, local_id LIMIT :n",
            params,
        )
        return [Reserved(int(a), int(b), int(c), int(d), int(e), bytes(body)) for a, b, c, d, e, body in rows]

    def grant(
        self, name: str, partition: int, epoch: int, jobs: Sequence[Reserved], lease_us: int, now: int
    ) -> list[Reserved]:
        """Lease buffered jobs (IN_PROGRESS, claim ``<epoch>.<dispatch>``); the ones still there to lease."""
        if not jobs:
            return []
        table = partition_table(name, partition)
        params = {"e": epoch, "exp": now + lease_us, "now": now, "q": name, "p": partition}
        # One statement that commits by itself. The fence is part of it: its read takes no lock under READ COMMITTED;
        # a takeover committed before this statement makes it match no row, and one racing with it cannot hand these
        # rows out before it commits (the new owner leases only PENDING rows). The dispatch count read by the refill
        # makes the claim the one returned here: the claim is the epoch and dispatch count the grant writes, so no
        # claim column is written (a string that would change the row's size, and keep InnoDB from updating it in
        # place).
        with self._partition_statement(name, partition) as tx:
            matched = tx.run(
                f"UPDATE {table}{self.by_id} SET state = 1, owner_epoch = :e, "
                "dispatches = dispatches + 1, lease_expires_at = :exp, updated_at = :now "
                f"WHERE {_grantable(jobs)} AND {_FENCED}",
                params,
            )
        if matched == len(jobs):
            return list(jobs)
        with self._partition_tx(name, partition) as tx:
            self._fence(tx, name, partition, epoch)
            # Some changed under us (deleted by an admin), or were leased by grant_and_ack: keep those leased under
            # our claim.
            ids = listed_ids([job.local_id for job in jobs])
            dispatched = {job.local_id: job.dispatches + 1 for job in jobs}
            leased = {
                int(row[0])
                for row in tx.rows(f"SELECT local_id, owner_epoch, dispatches FROM {table} WHERE {ids} AND state = 1")
                if (int(row[1]), int(row[2])) == (epoch, dispatched[int(row[0])])
            }
        return [job for job in jobs if job.local_id in leased]

    def ack(self, name: str, partition: int, epoch: int, items: Sequence[AckItem], now: int) -> list[str | None]:
        """Apply acks of leased jobs; per item None (applied) or ``stale_claim`` / ``not_found``."""
        table = partition_table(name, partition)
        status = f"SUBSTR({self.concat('custom_status', ':append')}, 1, {MAX_CUSTOM_STATUS})"
        succeed = self._succeed(table, status)
        claim = self.claim_sql()
        succeeded = succeed + f"local_id = :id AND {claim} = :claim"
        # attempts_remaining last: MySQL assigns left to right, SQLite from the old row; both read the old value.
        failed = (
            f"UPDATE {table} SET state = CASE WHEN attempts_remaining > 1 THEN 0 ELSE 3 END, "
            "run_after = CASE WHEN attempts_remaining > 1 THEN :retry_at ELSE run_after END, "
            "finished_at = CASE WHEN attempts_remaining > 1 THEN 0 ELSE :now END, "
            "lease_expires_at = CASE WHEN attempts_remaining > 1 THEN 0 ELSE lease_expires_at END, "
            f"custom_status = {status}, updated_at = :now, attempts_remaining = attempts_remaining - 1 "
            f"WHERE local_id = :id AND state = 1 AND {claim} = :claim"
        )
        if self._ack_at_once(name, partition, epoch, items, now, status):
            return [None] * len(items)
        out: dict[int, str | None] = {}
        with self._partition_tx(name, partition) as tx:
            self._fence(tx, name, partition, epoch)
            # Successes with the same status appended are one statement: the common case, a plain batch.
            batches: dict[str, list[int]] = {}
            unique = len({item.local_id for item in items}) == len(items)  # else matched rows are ambiguous
            for index, item in enumerate(items):
                if item.succeeded and unique:
                    batches.setdefault(item.append_status, []).append(index)
            for append, indexes in batches.items():
                pairs = ", ".join(f"(:id{i}, :claim{i})" for i in range(len(indexes)))
                params = {"append": append, "now": now}
                for i, index in enumerate(indexes):
                    params |= {f"id{i}": items[index].local_id, f"claim{i}": items[index].claim}
                matched = tx.run(f"{succeed}(local_id, {claim}) IN ({pairs})", params)
                for index in indexes:
                    out[index] = None if matched == len(indexes) else self._why_not(tx, table, items[index])
            for index, item in enumerate(items):
                if index in out:
                    continue
                params = {"id": item.local_id, "claim": item.claim, "append": item.append_status, "now": now}
                if item.succeeded:
                    matched = tx.run(succeeded, params)
                else:
                    matched = tx.run(failed, params | {"retry_at": now + item.retry_delay_us})
                out[index] = None if matched else self._why_not(tx, table, item)
        return [out[index] for index in range(len(items))]

    def claim_sql(self) -> str:
        """A leased job's claim, ``<epoch>.<dispatch>``, from the columns its grant wrote."""
        return self.concat("owner_epoch", "'.'", "dispatches")

    def _succeed(self, table: str, status: str | None) -> str:
        """The start of a success ack's UPDATE, to be followed by its condition on the jobs; without a status to
        append (``None``), the status is left alone rather than rewritten with itself. The lease's expiry stays (a
        finished job keeps it), so the ready index is left as it was."""
        appended = "" if status is None else f"custom_status = {status}, "
        return (
            f"UPDATE {table}{self.by_id} SET state = 2, {appended}finished_at = :now, "
            "updated_at = :now WHERE state = 1 AND "
        )

    def _ack_at_once(
        self, name: str, partition: int, epoch: int, items: Sequence[AckItem], now: int, status: str
    ) -> bool:
        """The common batch (distinct jobs, all succeeded, one status) as one self-committing statement, fenced
        in the statement like a lease grant; False when it did not apply to every job (the caller then sorts
        out which and why, replayed acks included, in a transaction behind the locked fence)."""
        claimed = _plainly_acked(items)
        if claimed is None:
            return False
        append = items[0].append_status
        succeed = self._succeed(partition_table(name, partition), status if append else None)
        with self._partition_statement(name, partition) as tx:
            matched = tx.run(
                f"{succeed}{claimed} AND {_FENCED}",
                {"append": append, "now": now, "q": name, "p": partition, "e": epoch},
            )
        return matched == len(items)

    def grant_and_ack(
        self,
        name: str,
        partition: int,
        epoch: int,
        jobs: Sequence[Reserved],
        lease_us: int,
        acks: Sequence[AckItem],
        now: int,
    ) -> bool:
        """Lease ``jobs`` and apply ``acks`` in one self-committing statement, fenced like each alone: an owner's
        round of writes in one round trip, where it would take two. Only for plain success acks (distinct jobs
        with claims a grant made, no status appended): False, with nothing written, for others. True when every
        job matched; False when some did not, and :meth:`grant` and :meth:`ack` then sort out which (a job this
        leased or acked is one they find already leased, or acked with the claim they were given)."""
        acked = _plainly_acked(acks)
        if acked is None or acks[0].append_status:
            return False
        # Every value is computed from the row before this update: a listed job waiting (state 0) is leased, a
        # listed leased one (state 1) acked. ``state`` goes last, as MySQL assigns left to right with the new
        # values where SQLite uses the old row throughout.
        sql = (
            f"UPDATE {partition_table(name, partition)}{self.by_id} SET "
            "owner_epoch = CASE WHEN state = 0 THEN :e ELSE owner_epoch END, "
            "dispatches = CASE WHEN state = 0 THEN dispatches + 1 ELSE dispatches END, "
            "lease_expires_at = CASE WHEN state = 0 THEN :exp ELSE lease_expires_at END, "
            "finished_at = CASE WHEN state = 0 THEN finished_at ELSE :now END, "
            "updated_at = :now, state = CASE WHEN state = 0 THEN 1 ELSE 2 END "
            f"WHERE (({_grantable(jobs)}) OR (state = 1 AND {acked})) AND {_FENCED}"
        )
        params = {"e": epoch, "exp": now + lease_us, "now": now, "q": name, "p": partition}
        with self._partition_statement(name, partition) as tx:
            matched = tx.run(sql, params)
        return matched == len(jobs) + len(acks)

    def _why_not(self, tx: Tx, table: str, item: AckItem) -> str | None:
        found = tx.rows(f"SELECT state, {self.claim_sql()} FROM {table} WHERE local_id = :id", {"id": item.local_id})
        if not found:
            return "not_found"
        state, claim = found[0]
        if item.succeeded and state == JobState.SUCCEEDED and claim == item.claim:
            return None  # a replayed success ack: already applied
        return "stale_claim"

    def checkpoint(
        self, name: str, partition: int, epoch: int, items: Sequence[CheckpointItem], now: int
    ) -> list[bool]:
        table = partition_table(name, partition)
        out = []
        with self._partition_tx(name, partition) as tx:
            self._fence(tx, name, partition, epoch)
            for item in items:
                sets = ["updated_at = :now"]
                params: dict[str, Any] = {"id": item.local_id, "claim": item.claim, "now": now}
                if item.new_body is not None:
                    sets.append("body = :body")
                    params["body"] = item.new_body
                if item.attempts_allowed is not None:
                    sets.append("attempts_allowed = :attempts, attempts_remaining = :attempts")
                    params["attempts"] = item.attempts_allowed
                if item.prepend_status is not None:
                    sets.append(
                        f"custom_status = SUBSTR({self.concat(':pre', 'custom_status')}, 1, {MAX_CUSTOM_STATUS})"
                    )
                    params["pre"] = item.prepend_status
                if item.move_to_pending:
                    sets.append("state = 0, lease_expires_at = 0, run_after = :ra")
                    params["ra"] = now if item.run_after_us is None else item.run_after_us
                else:
                    sets.append("lease_expires_at = :exp")
                    params["exp"] = now + item.lease_us
                    if item.run_after_us is not None:
                        sets.append("run_after = :ra")
                        params["ra"] = item.run_after_us
                matched = tx.run(
                    f"UPDATE {table} SET {', '.join(sets)} WHERE local_id = :id AND state = 1 "
                    f"AND {self.claim_sql()} = :claim",
                    params,
                )
                out.append(bool(matched))
        return out

    def expire(self, name: str, partition: int, epoch: int, now: int) -> int:
        """Leases past their expiry: back to PENDING with one attempt used, or FAILED on the last one.

        Leased and finished jobs are lane 0 of the ready index, in the order their (last) leases end. A pass reads
        it from the partition's mark, where the last pass stopped, up to ``now``, expires the jobs still leased and
        moves the mark: each job is read once, as its lease ends. The mark is kept with the epoch, so an owner
        taking over goes on from where its predecessor stopped.
        """
        table = partition_table(name, partition)
        expired = 0
        while True:
            with self._partition_tx(name, partition) as tx:
                mark_at, mark_id = self._fence(tx, name, partition, epoch, exclusive=True)
                found = tx.rows(
                    f"SELECT local_id, due_at, state FROM {table} WHERE lane = 0 AND due_at <= :now "
                    "AND (due_at > :at OR (due_at = :at AND local_id > :id)) ORDER BY due_at, local_id LIMIT :n",
                    {"now": now, "at": mark_at, "id": mark_id, "n": EXPIRE_SCAN},
                )
                leased = [int(row[0]) for row in found if int(row[2]) == 1]
                if leased:
                    expired += tx.run(
                        f"UPDATE {table} SET state = CASE WHEN attempts_remaining > 1 THEN 0 ELSE 3 END, "
                        "finished_at = CASE WHEN attempts_remaining > 1 THEN 0 ELSE :now END, "
                        "lease_expires_at = 0, updated_at = :now, attempts_remaining = attempts_remaining - 1 "
                        f"WHERE local_id IN {int_list(leased)} AND state = 1 AND lease_expires_at <= :now",
                        {"now": now},
                    )
                full = len(found) == EXPIRE_SCAN
                # Short of the limit, every entry up to ``now`` was read; later grants and checkpoints end after it.
                mark_at, mark_id = (int(found[-1][1]), int(found[-1][0])) if full else (now, _ALL_IDS)
                tx.run(
                    "UPDATE pacer_owner SET expiry_mark = :at, expiry_mark_id = :id "
                    "WHERE queue_name = :q AND partition_id = :p",
                    {"at": mark_at, "id": mark_id, "q": name, "p": partition},
                )
            if not full:
                return expired

    def gc(self, name: str, partition: int, config: QueueConfig, now: int) -> int:
        """Delete finished jobs older than the queue's retention.

        No index on the finish time (one would cost every enqueue and ack a write): a pass reads up to
        :data:`GC_SCAN` rows in id order, from where the last pass stopped, up to the first row created after the
        later cutoff (a job finishes after it was created, so none beyond it is due); the next pass starts over
        from the first row once one reached it or the end of the table. :meth:`gc_behind` says whether this
        pass stopped at its row limit instead, so a caller can come back soon.
        """
        table = partition_table(name, partition)
        cutoffs = {
            "cs": now - int(config.succeeded_ttl.total_seconds() * 1_000_000),
            "cf": now - int(config.failed_ttl.total_seconds() * 1_000_000),
        }
        horizon = max(cutoffs.values())
        cursors = self._gc_after
        with self._partition_tx(name, partition) as tx:
            found = tx.rows(
                f"SELECT local_id, state, finished_at, created_at FROM {table} WHERE local_id > :after "
                "ORDER BY local_id LIMIT :n",
                {"after": cursors.get((name, partition), 0), "n": GC_SCAN},
            )
            old = list(itertools.takewhile(lambda row: int(row[3]) < horizon, found))
            cursors[(name, partition)] = int(old[-1][0]) if len(old) == GC_SCAN else 0
            cutoff = {int(JobState.SUCCEEDED): cutoffs["cs"], int(JobState.FAILED): cutoffs["cf"]}
            due = [int(row[0]) for row in old if row[2] and int(row[2]) < cutoff.get(int(row[1]), 0)]
            if not due:
                return 0
            ids, params = in_list("id", due)
            return tx.run(  # the conditions again: a job may have been retried since it was read
                f"DELETE FROM {table} WHERE local_id IN {ids} AND finished_at > 0 "
                "AND ((state = 2 AND finished_at < :cs) OR (state = 3 AND finished_at < :cf))",
                params | cutoffs,
            )

    def gc_behind(self, name: str, partition: int) -> bool:
        """Whether the last :meth:`gc` pass of the partition stopped at its row limit, with rows left to read."""
        return self._gc_after.get((name, partition), 0) != 0

    # -- reads and admin (no fence: the owner re-checks state on its next write) -----------------------

    def lookup(self, name: str, partition: int, local_ids: Sequence[int], include_body: bool) -> list[JobRow]:
        if not local_ids:
            return []
        ids, params = in_list("id", local_ids)
        body = "body" if include_body else "NULL"
        with self._partition_tx(name, partition) as tx:
            found = tx.rows(
                f"SELECT {_JOB_COLUMNS}, {body} FROM {partition_table(name, partition)} WHERE local_id IN {ids}", params
            )
        return [_job_row(row) for row in found]

    def _where(self, where: Filter, now: int) -> tuple[str, dict[str, Any]]:
        states, params = in_list("st", where.states)
        clauses = [f"state IN {states}"]
        if where.priority is not None:
            clauses.append("priority = :prio")
            params["prio"] = where.priority
        if where.future is not None:
            clauses.append("run_after > :now" if where.future else "run_after <= :now")
            params["now"] = now
        if where.body_regex is not None:
            clauses.append(self.regexp())
            params["body_regex"] = where.body_regex
        return " AND ".join(clauses), params

    def count(self, name: str, partition: int, where: Filter, now: int) -> int:
        clause, params = self._where(where, now)
        with self._partition_tx(name, partition) as tx:
            return int(tx.rows(f"SELECT COUNT(*) FROM {partition_table(name, partition)} WHERE {clause}", params)[0][0])

    def scan(
        self, name: str, partition: int, where: Filter, limit: int, before_id: int | None, now: int
    ) -> list[JobRow]:
        """Jobs matching ``where``, newest first, with ``local_id < before_id`` when given."""
        clause, params = self._where(where, now)
        if before_id is not None:
            clause += " AND local_id < :before"
            params["before"] = before_id
        with self._partition_tx(name, partition) as tx:
            found = tx.rows(
                f"SELECT {_JOB_COLUMNS}, NULL FROM {partition_table(name, partition)} WHERE {clause} "
                "ORDER BY local_id DESC LIMIT :n",
                params | {"n": limit},
            )
        return [_job_row(row) for row in found]

    def retry_failed(
        self, name: str, partition: int, priority: int | None, attempts: int, run_after: int, limit: int, now: int
    ) -> int:
        table = partition_table(name, partition)
        clause, params = self._where(Filter((int(JobState.FAILED),), priority), now)
        with self._partition_tx(name, partition) as tx:
            found = tx.rows(
                f"SELECT local_id FROM {table} WHERE {clause} ORDER BY local_id LIMIT :n{self.for_update}",
                params | {"n": limit},
            )
            if not found:
                return 0
            ids, id_params = in_list("id", [row[0] for row in found])
            return tx.run(
                f"UPDATE {table} SET state = 0, attempts_remaining = :a, "
                "attempts_allowed = CASE WHEN attempts_allowed < :a THEN :a ELSE attempts_allowed END, "
                "run_after = :ra, finished_at = 0, updated_at = :now "
                f"WHERE local_id IN {ids} AND state = 3",
                id_params | {"a": attempts, "ra": run_after, "now": now},
            )

    def delete_jobs(self, name: str, partition: int, where: Filter, limit: int, now: int) -> int:
        table = partition_table(name, partition)
        clause, params = self._where(where, now)
        with self._partition_tx(name, partition) as tx:
            found = tx.rows(
                f"SELECT local_id FROM {table} WHERE {clause} ORDER BY local_id LIMIT :n{self.for_update}",
                params | {"n": limit},
            )
            if not found:
                return 0
            ids, id_params = in_list("id", [row[0] for row in found])
            return tx.run(f"DELETE FROM {table} WHERE local_id IN {ids} AND {clause}", params | id_params)

    def stats(self, name: str, partition: int, now: int, window_us: int) -> dict[str, int | None]:
        """For the dashboard: counts by API state, jobs finished in the window, oldest ready pending job."""
        table = partition_table(name, partition)
        with self._partition_tx(name, partition) as tx:
            by_state = tx.rows(f"SELECT state, COUNT(*) FROM {table} GROUP BY state")
            done = tx.rows(
                f"SELECT COUNT(*) FROM {table} WHERE state IN (2, 3) AND finished_at >= :since",
                {"since": now - window_us},
            )
            oldest = tx.rows(f"SELECT MIN(due_at) FROM {table} WHERE {READY}", {"now": now})
        out: dict[str, int | None] = {state.name.lower(): 0 for state in JobState}
        for state, count in by_state:
            key = JobState(0 if state == RESERVED else int(state)).name.lower()
            out[key] = int(out[key] or 0) + int(count)
        out["finished_in_window"] = int(done[0][0])
        out["oldest_ready_run_after"] = None if oldest[0][0] is None else int(oldest[0][0])
        return out


def claim_token(epoch: int, job: Reserved) -> str:
    """The claim of a lease grant, ``<epoch>.<dispatch>``: unique per job and grant. It is not stored as such: a
    grant writes the job's owner epoch and dispatch count, and a claim is checked against them."""
    return f"{epoch}.{job.dispatches + 1}"


def _lease_claim(state: int, epoch: int, dispatches: int) -> str | None:
    """The claim a job was last leased under, while it is leased or finished (PinLater keeps a finished job's)."""
    return f"{epoch}.{dispatches}" if state in (1, 2, 3) and dispatches else None


def _job_row(row: Sequence[Any]) -> JobRow:
    local_id, state, priority, run_after, created_at, updated_at = (int(v) for v in row[:6])
    return JobRow(
        local_id,
        state,
        priority,
        run_after,
        created_at,
        updated_at,
        finished_at=int(row[6]) if row[6] else None,  # 0: not finished (NULL in rows written before)
        attempts_allowed=int(row[7]),
        attempts_remaining=int(row[8]),
        claim=_lease_claim(state, int(row[9]), int(row[10])),
        custom_status=str(row[11]),
        body=None if row[12] is None else bytes(row[12]),
    )


def insert_batches(jobs: Sequence[Job]) -> list[Sequence[Job]]:
    """``jobs`` in runs of at most :data:`BATCH` jobs and :data:`BATCH_BYTES` of bodies and statuses, in order;
    a job longer than that alone in its run."""
    if len(jobs) <= BATCH and sum(len(job.body) + len(job.custom_status) for job in jobs) <= BATCH_BYTES:
        return [jobs]  # the common case, counted in C
    batches: list[Sequence[Job]] = []
    start = size = 0
    for index, job in enumerate(jobs):
        length = len(job.body) + len(job.custom_status)
        if index > start and (index - start == BATCH or size + length > BATCH_BYTES):
            batches.append(jobs[start:index])
            start, size = index, 0
        size += length
    batches.append(jobs[start:])
    return batches


def _grantable(jobs: Sequence[Reserved]) -> str:
    """The condition that a row is one of ``jobs`` as its refill read it: waiting, with the same dispatch count."""
    ids = [job.local_id for job in jobs]
    read = same_values(("dispatches",), ids, [(job.dispatches,) for job in jobs])
    return f"{listed_ids(ids)} AND state = 0 AND {read}"


def _plainly_acked(items: Sequence[AckItem]) -> str | None:
    """For the common ack batch (distinct jobs, all succeeded, one status appended, every claim one a grant made):
    the condition that a row is one of them under its claim, as the two columns a claim is made of, so no string
    is built per row to compare. None for any other batch."""
    ids = [item.local_id for item in items]
    if not ids or len(set(ids)) != len(ids):
        return None
    append = items[0].append_status
    for item in items:
        if not item.succeeded or item.append_status != append:
            return None
    parsed = {claim: parse_claim(claim) for claim in {item.claim for item in items}}  # mostly one claim
    if None in parsed.values():
        return None
    claims = [parsed[item.claim] for item in items]
    claimed = same_values(("owner_epoch", "dispatches"), ids, claims)  # type: ignore[arg-type]  # no None left
    return f"{listed_ids(ids)} AND {claimed}"


def _config_params(config: QueueConfig) -> dict[str, Any]:
    return {
        "q": config.name,
        "n": config.partitions,
        "lease": int(config.lease.total_seconds() * 1000),
        "rate": config.max_jobs_per_second,
        "sttl": int(config.succeeded_ttl.total_seconds()),
        "fttl": int(config.failed_ttl.total_seconds()),
    }
