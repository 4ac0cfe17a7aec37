"""Pacer's API contract, run against every store: SQLite in unit tests, MariaDB in integration tests.

A test module imports these tests and provides a ``pacer`` fixture: an embedded :class:`pacer.Pacer` on a
fresh store, and a ``queue`` fixture naming a new empty queue with one partition.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from pacer import (
    Ack,
    Checkpoint,
    Descriptor,
    InvalidArgument,
    InvalidDescriptor,
    Job,
    JobState,
    Pacer,
    PriorityNotSupported,
    QueueNameInvalid,
    QueueNotFound,
)


def test_queues_are_created_listed_and_deleted(pacer: Pacer) -> None:
    pacer.create_queue("emails", partitions=3)
    pacer.create_queue("emails", partitions=3)  # idempotent
    assert "emails" in pacer.queue_names()
    assert [p.partition for p in pacer.partitions("emails")] == [0, 1, 2]
    pacer.delete_queue("emails")
    assert "emails" not in pacer.queue_names()
    with pytest.raises(QueueNotFound):
        pacer.enqueue("emails", [b"x"])


@pytest.mark.parametrize("name", ["Emails", "a;drop table x", "a" * 49, "", "9lives", "q-1", "x' OR '1'='1"])
def test_bad_queue_names_are_refused_on_every_call(pacer: Pacer, name: str) -> None:
    with pytest.raises(QueueNameInvalid):
        pacer.create_queue(name)
    with pytest.raises(QueueNameInvalid):
        pacer.enqueue(name, [b"x"])
    with pytest.raises(QueueNameInvalid):
        pacer.dequeue(name)
    with pytest.raises(QueueNameInvalid):
        pacer.count(name, JobState.PENDING)
    with pytest.raises(QueueNameInvalid):
        pacer.delete_queue(name)


def test_enqueue_returns_descriptors_that_parse_back(pacer: Pacer, queue: str) -> None:
    descriptors = pacer.enqueue(queue, [Job(b"a", priority=2), Job(b"b", priority=3)])
    assert [d.priority for d in descriptors] == [2, 3]
    assert all(Descriptor.parse(str(d)) == d for d in descriptors)
    assert str(descriptors[0]).startswith(f"{queue}:q0:p2:")


@pytest.mark.parametrize("text", ["", "q:q0:p1", "q:q0:p4:1", "Q:q0:p1:1", "q:s0:p1:1", "q:q0:p1:x", 42])
def test_malformed_descriptors_get_a_clear_error(text: object) -> None:
    with pytest.raises(InvalidDescriptor, match="descriptor"):
        Descriptor.parse(text)


def test_bad_jobs_are_refused_before_anything_is_stored(pacer: Pacer, queue: str) -> None:
    with pytest.raises(PriorityNotSupported):
        pacer.enqueue(queue, [Job(b"ok"), Job(b"bad", priority=4)])
    with pytest.raises(InvalidArgument, match="body"):
        Job(b"x" * (1 << 20 + 1))
    with pytest.raises(InvalidArgument, match="attempts"):
        Job(b"x", attempts=0)
    assert pacer.count(queue, JobState.PENDING) == 0


def test_dequeue_leases_jobs_priority_first_and_fifo(pacer: Pacer, queue: str) -> None:
    low = pacer.enqueue(queue, [Job(b"low", priority=3)])
    fifo = pacer.enqueue(queue, [Job(f"j{i}".encode()) for i in range(5)])
    leases = pacer.dequeue(queue, limit=10)
    assert [lease.descriptor for lease in leases] == fifo + low
    assert leases[0].body == b"j0"
    assert leases[0].attempts_allowed == leases[0].attempts_remaining == 2
    assert leases[0].lease_expires_at > datetime.now(UTC)
    assert pacer.dequeue(queue, limit=10) == []
    assert pacer.count(queue, JobState.IN_PROGRESS) == 6


def test_delayed_jobs_wait_for_their_time(pacer: Pacer, queue: str) -> None:
    pacer.enqueue(queue, [Job(b"later", delay=timedelta(seconds=0.5))])
    assert pacer.dequeue(queue) == []
    assert pacer.count(queue, JobState.PENDING, future=True) == 1
    time.sleep(0.6)
    assert [lease.body for lease in pacer.dequeue(queue)] == [b"later"]


def test_succeeded_ack_is_final_and_a_stale_claim_is_rejected(pacer: Pacer, queue: str) -> None:
    pacer.enqueue(queue, [b"a", b"b"])
    first, second = pacer.dequeue(queue, limit=2)
    result = pacer.ack(queue, succeeded=[Ack(first.descriptor, first.claim, append_status="done")])
    assert result.accepted == [first.descriptor]
    forged = pacer.ack(queue, succeeded=[Ack(second.descriptor, "999.1")])
    assert forged.rejected == {second.descriptor: "stale_claim"}
    replay = pacer.ack(queue, succeeded=[first])  # a retried ack is not an error
    assert replay.accepted == [first.descriptor]
    info = pacer.lookup([first.descriptor])[first.descriptor]
    assert info.state is JobState.SUCCEEDED and info.custom_status == "done"
    assert pacer.lookup([second.descriptor])[second.descriptor].state is JobState.IN_PROGRESS


def test_failed_ack_retries_after_the_delay_then_fails(pacer: Pacer, queue: str) -> None:
    (descriptor,) = pacer.enqueue(queue, [Job(b"flaky", attempts=2)])
    (lease,) = pacer.dequeue(queue)
    pacer.ack(queue, failed=[Ack(lease.descriptor, lease.claim, "boom;", timedelta(seconds=0.3))])
    assert pacer.dequeue(queue) == []
    time.sleep(0.4)
    (again,) = pacer.dequeue(queue)
    assert again.attempts_remaining == 1 and again.claim != lease.claim
    assert pacer.ack(queue, failed=[again]).accepted == [descriptor]
    info = pacer.lookup([descriptor])[descriptor]
    assert info.state is JobState.FAILED and info.attempts_remaining == 0
    assert info.custom_status == "boom;"


def test_acks_of_another_queue_are_refused(pacer: Pacer, queue: str) -> None:
    pacer.create_queue("other_q")
    (descriptor,) = pacer.enqueue("other_q", [b"x"])
    with pytest.raises(InvalidDescriptor, match="other_q"):
        pacer.ack(queue, succeeded=[Ack(descriptor, "1.1")])


def test_checkpoint_extends_changes_and_releases(pacer: Pacer, queue: str) -> None:
    (descriptor,) = pacer.enqueue(queue, [Job(b"v1", custom_status="s")])
    (lease,) = pacer.dequeue(queue)
    applied = pacer.checkpoint(
        queue,
        [Checkpoint(descriptor, lease.claim, extend_lease=timedelta(hours=1), new_body=b"v2", prepend_status="p;")],
    )
    assert applied == [True]
    assert pacer.checkpoint(queue, [Checkpoint(descriptor, "7.7", new_body=b"no")]) == [False]
    info = pacer.lookup([descriptor], include_body=True)[descriptor]
    assert info.body == b"v2" and info.custom_status == "p;s"
    later = datetime.now(UTC) + timedelta(hours=2)
    pacer.checkpoint(
        queue, [Checkpoint(descriptor, lease.claim, move_to_pending=True, run_after=later, attempts_allowed=5)]
    )
    info = pacer.lookup([descriptor])[descriptor]
    assert info.state is JobState.PENDING and info.attempts_remaining == 5
    assert abs((info.run_after - later).total_seconds()) < 0.01
    assert pacer.ack(queue, succeeded=[lease]).rejected == {descriptor: "stale_claim"}


def test_expired_leases_come_back_then_fail(pacer: Pacer) -> None:
    pacer.create_queue("short", lease=timedelta(milliseconds=200))
    (descriptor,) = pacer.enqueue("short", [Job(b"x", attempts=2)])
    (first,) = pacer.dequeue("short")
    time.sleep(0.3)
    assert pacer.run_maintenance("short").expired == 1
    (second,) = pacer.dequeue("short")
    assert second.attempts_remaining == 1
    assert pacer.ack("short", succeeded=[first]).rejected == {descriptor: "stale_claim"}
    time.sleep(0.3)
    pacer.run_maintenance("short")
    assert pacer.lookup([descriptor])[descriptor].state is JobState.FAILED


def test_expiry_reads_each_job_once_from_the_partitions_mark(pacer: Pacer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Expiry reads leased and finished jobs in the order their leases end, from where its last pass stopped:
    finished jobs are passed over, every lease that ended is expired however many entries come first, and an owner
    taking the partition over goes on from the mark kept with it."""
    from pacer.storage import base

    monkeypatch.setattr(base, "EXPIRE_SCAN", 2)
    pacer.create_queue("marks", lease=timedelta(milliseconds=100))
    pacer.enqueue("marks", [Job(b"%d" % i, attempts=2) for i in range(5)])
    leases = pacer.dequeue("marks", limit=5)
    assert pacer.ack("marks", succeeded=leases[:3]).rejected == {}
    time.sleep(0.15)
    assert pacer.run_maintenance("marks").expired == 2  # five entries, read two per statement
    assert pacer.run_maintenance("marks").expired == 0
    shard = pacer.store.shard_of("marks", 0)
    with pacer.store.transaction(shard) as tx:
        (mark,) = tx.rows("SELECT expiry_mark FROM pacer_owner WHERE queue_name = 'marks'")[0]
    assert int(mark) >= max(int(lease.lease_expires_at.timestamp() * 1e6) for lease in leases)
    successor = Pacer(pacer.store, owner_id="successor")
    again = successor.dequeue("marks", limit=5)
    assert [lease.attempts_remaining for lease in again] == [1, 1]
    time.sleep(0.15)
    assert successor.run_maintenance("marks").expired == 2
    assert pacer.count("marks", JobState.FAILED) == 2 and pacer.count("marks", JobState.SUCCEEDED) == 3


def test_idempotency_key_gives_one_job(pacer: Pacer) -> None:
    pacer.create_queue("keyed", partitions=4)
    first = pacer.enqueue("keyed", [Job(b"a", key="order-1"), Job(b"b")])
    again = pacer.enqueue("keyed", [Job(b"a2", key="order-1")])
    assert again[0] == first[0]
    assert pacer.count("keyed", JobState.PENDING) == 2
    # keyed and keyless jobs together in one partition: each stored once
    mixed = pacer.enqueue("keyed", [Job(f"m{i}".encode(), key=f"k{i}" if i % 2 else None) for i in range(40)])
    assert len(set(mixed)) == 40
    assert pacer.count("keyed", JobState.PENDING) == 42


def test_count_scan_with_cursor_and_regex(pacer: Pacer) -> None:
    pacer.create_queue("scanned", partitions=2)
    pacer.enqueue("scanned", [Job(f"user-{i}".encode(), priority=1 + i % 2) for i in range(7)])
    assert pacer.count("scanned", "pending") == 7
    assert pacer.count("scanned", JobState.PENDING, priority=2) == 3
    assert pacer.count("scanned", JobState.PENDING, body_regex="user-[0-2]$") == 3
    assert pacer.count("scanned", JobState.PENDING, body_regex="x' OR '1'='1") == 0
    seen, cursor, pages = [], None, 0
    while True:
        page = pacer.scan("scanned", JobState.PENDING, limit=3, cursor=cursor)
        seen += [job.descriptor for job in page.jobs]
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor
    assert len(seen) == len(set(seen)) == 7 and pages >= 3
    with pytest.raises(InvalidArgument, match="cursor"):
        pacer.scan("scanned", JobState.PENDING, cursor="garbage")


def test_retry_failed_and_delete_by_state_and_pattern(pacer: Pacer, queue: str) -> None:
    pacer.enqueue(queue, [Job(b"keep", attempts=1), Job(b"drop-me", attempts=1)])
    leases = pacer.dequeue(queue, limit=2)
    pacer.ack(queue, failed=leases)
    assert pacer.count(queue, JobState.FAILED) == 2
    assert pacer.delete_jobs(queue, JobState.FAILED, body_regex="^drop") == 1
    assert pacer.retry_failed(queue, attempts=3) == 1
    (lease,) = pacer.dequeue(queue)
    assert lease.body == b"keep" and lease.attempts_remaining == 3
    assert pacer.delete_jobs(queue, JobState.IN_PROGRESS) == 1
    assert pacer.ack(queue, succeeded=[lease]).rejected == {lease.descriptor: "not_found"}


def test_rate_limit_zero_pauses_and_none_resumes(pacer: Pacer, queue: str) -> None:
    pacer.enqueue(queue, [b"a", b"b", b"c"])
    pacer.set_rate_limit(queue, 0)
    assert pacer.dequeue(queue, limit=3) == []
    pacer.set_rate_limit(queue, 1)
    assert len(pacer.dequeue(queue, limit=3)) == 1
    pacer.set_rate_limit(queue, None)
    assert len(pacer.dequeue(queue, limit=3)) == 2
    with pytest.raises(InvalidArgument, match="rate"):
        pacer.set_rate_limit(queue, -1)


def test_gc_deletes_finished_jobs_after_retention(pacer: Pacer) -> None:
    pacer.create_queue("gced", succeeded_ttl=timedelta(seconds=0))
    pacer.enqueue("gced", [b"a", b"b"])
    first, second = pacer.dequeue("gced", limit=2)
    pacer.ack("gced", succeeded=[first])
    time.sleep(0.01)
    assert pacer.run_maintenance("gced").gc_deleted == 1
    assert first.descriptor not in pacer.lookup([first.descriptor, second.descriptor])


def test_a_new_owner_fences_the_old_one(pacer: Pacer, queue: str) -> None:
    from pacer import Fenced
    from pacer._owner import PartitionOwner

    pacer.enqueue(queue, [b"a", b"b"])
    old = pacer.owner(queue, 0)
    (lease,) = old.dequeue(1)
    assert old.buffered() == 1
    new = PartitionOwner(pacer.store, pacer.queue_config(queue), 0, "other")
    assert new.acquire() == old.epoch + 1
    from pacer.storage.base import AckItem

    with pytest.raises(Fenced):
        old.ack([AckItem(lease.descriptor.local_id, lease.claim, True)])
    with pytest.raises(Fenced):
        old.dequeue(1)
    # the old owner's buffered job is served by the new owner; the lease it granted stays valid
    (moved,) = new.dequeue(5)
    assert moved.body == b"b"
    assert new.ack([AckItem(lease.descriptor.local_id, lease.claim, True)]) == [None]


def test_a_batch_of_acks_is_judged_job_by_job(pacer: Pacer, queue: str) -> None:
    pacer.enqueue(queue, [b"a", b"b", b"c"])
    first, second, third = pacer.dequeue(queue, limit=3)
    forged = Ack(second.descriptor, "99.9")
    result = pacer.ack(queue, succeeded=[first, forged, third])
    assert result.accepted == [first.descriptor, third.descriptor]
    assert result.rejected == {second.descriptor: "stale_claim"}
    assert pacer.count(queue, JobState.SUCCEEDED) == 2 and pacer.count(queue, JobState.IN_PROGRESS) == 1


def test_an_ack_needs_the_claim_exactly_as_the_grant_made_it(pacer: Pacer, queue: str) -> None:
    pacer.enqueue(queue, [b"a", b"b"])
    first, second = pacer.dequeue(queue, limit=2)
    epoch, dispatch = first.claim.split(".")
    malformed = [f"0{epoch}.{dispatch}", f"{epoch}.{dispatch}.0", f"{epoch}", "x.y", "", f" {first.claim}"]
    for claim in malformed:
        result = pacer.ack(queue, succeeded=[Ack(first.descriptor, claim), second])
        assert result.rejected == {first.descriptor: "stale_claim"}, claim
    assert pacer.ack(queue, succeeded=[first]).accepted == [first.descriptor]
    assert pacer.count(queue, JobState.SUCCEEDED) == 2


def test_a_refill_leaves_out_the_jobs_already_buffered(pacer: Pacer, queue: str) -> None:
    pacer.enqueue(queue, [b"a", b"b", b"c"])
    owner = pacer.owner(queue, 0)
    assert owner.refill(force=True) == 3
    pacer.enqueue(queue, [b"d", b"e"])
    assert owner.refill(force=True) == 2 and owner.buffered() == 5
    assert [lease.body for lease in owner.dequeue(10)] == [b"a", b"b", b"c", b"d", b"e"]
    assert owner.refill(force=True) == 0  # leased now


def _index_names(pacer: Pacer, table: str, shard: int) -> set[str]:
    from pacer.storage.mysql import MysqlStore

    mysql = isinstance(pacer.store, MysqlStore)
    with pacer.store.transaction(shard) as tx:
        if mysql:
            return {str(row[2]) for row in tx.rows(f"SHOW INDEX FROM {table}")}
        sql = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"
        return {str(row[0]).removeprefix(f"{table}_") for row in tx.rows(sql, {"t": table})}


def test_a_version_1_schema_is_upgraded_to_the_current_indexes(pacer: Pacer) -> None:
    from pacer._names import partition_table
    from pacer.storage.base import SCHEMA_VERSION
    from pacer.storage.mysql import MysqlStore

    pacer.create_queue("upgraded")
    pacer.enqueue("upgraded", [b"kept"])
    table, shard = partition_table("upgraded", 0), pacer.store.shard_of("upgraded", 0)
    with pacer.store.transaction(shard) as tx:  # as version 1 created it
        if isinstance(pacer.store, MysqlStore):
            tx.run(
                f"ALTER TABLE {table} ADD INDEX ix_lease (state, lease_expires_at), "
                "ADD INDEX ix_done (state, finished_at)"
            )
        else:
            tx.run(f"CREATE INDEX {table}_lease ON {table} (state, lease_expires_at)")
            tx.run(f"CREATE INDEX {table}_done ON {table} (state, finished_at)")
    with pacer.store.transaction(0) as tx:
        tx.run("UPDATE pacer_schema SET version = 1")
    assert {"lease", "done"} <= {name.removeprefix("ix_") for name in _index_names(pacer, table, shard)}
    assert pacer.store.create_schema() == SCHEMA_VERSION == pacer.store.schema_version()
    names = {name.removeprefix("ix_") for name in _index_names(pacer, table, shard)}
    assert "due" in names and not {"lease", "done", "finished", "ready"} & names
    assert pacer.count("upgraded", JobState.PENDING) == 1


def test_a_version_2_schema_is_upgraded_without_the_finish_time_index(pacer: Pacer) -> None:
    from pacer._names import partition_table
    from pacer.storage.base import SCHEMA_VERSION
    from pacer.storage.mysql import MysqlStore

    pacer.create_queue("upgraded2")
    pacer.enqueue("upgraded2", [b"kept", b"done"])
    (lease,) = pacer.dequeue("upgraded2", limit=1)
    pacer.ack("upgraded2", succeeded=[lease])
    table, shard = partition_table("upgraded2", 0), pacer.store.shard_of("upgraded2", 0)
    with pacer.store.transaction(shard) as tx:  # as version 2 created it
        if isinstance(pacer.store, MysqlStore):
            tx.run(f"ALTER TABLE {table} ADD INDEX ix_finished (finished_at)")
        else:
            tx.run(f"CREATE INDEX {table}_finished ON {table} (finished_at)")
    with pacer.store.transaction(0) as tx:
        tx.run("UPDATE pacer_schema SET version = 2")
    assert "finished" in {name.removeprefix("ix_") for name in _index_names(pacer, table, shard)}
    assert pacer.store.create_schema() == SCHEMA_VERSION == pacer.store.schema_version()
    assert "finished" not in {name.removeprefix("ix_") for name in _index_names(pacer, table, shard)}
    assert pacer.store.create_schema() == SCHEMA_VERSION  # again: nothing left to change
    assert pacer.count("upgraded2", JobState.PENDING) == 1
    assert pacer.count("upgraded2", JobState.SUCCEEDED) == 1


def test_a_version_3_schema_is_upgraded_to_the_lane_index(pacer: Pacer) -> None:
    """Version 3 indexed (state, priority, run_after): its job tables gain the generated columns and the ready
    index over them, its owner table the expiry mark, and its jobs are served again, a lease of an earlier owner
    expired and a job version 1 marked as buffered included."""
    from pacer._names import partition_table
    from pacer.storage.base import SCHEMA_VERSION
    from pacer.storage.mysql import MysqlStore

    pacer.create_queue("upgraded3")
    pending, buffered, leased = pacer.enqueue("upgraded3", [Job(b"pending"), Job(b"buffered"), Job(b"x", attempts=3)])
    table, shard = partition_table("upgraded3", 0), pacer.store.shard_of("upgraded3", 0)
    with pacer.store.transaction(shard) as tx:  # as version 3 left it
        if isinstance(pacer.store, MysqlStore):
            tx.run(
                f"ALTER TABLE {table} DROP INDEX ix_due, DROP COLUMN lane, DROP COLUMN due_at, "
                "ADD INDEX ix_ready (state, priority, run_after, local_id), ALTER COLUMN state DROP DEFAULT, "
                "ALTER COLUMN finished_at DROP DEFAULT, ALTER COLUMN lease_expires_at DROP DEFAULT"
            )
            tx.run("ALTER TABLE pacer_owner DROP COLUMN expiry_mark, DROP COLUMN expiry_mark_id")
        else:
            tx.run(f"DROP INDEX {table}_due")
            tx.run(f"ALTER TABLE {table} DROP COLUMN lane")
            tx.run(f"ALTER TABLE {table} DROP COLUMN due_at")
            tx.run(f"CREATE INDEX {table}_ready ON {table} (state, priority, run_after, local_id)")
            tx.run("ALTER TABLE pacer_owner DROP COLUMN expiry_mark")
            tx.run("ALTER TABLE pacer_owner DROP COLUMN expiry_mark_id")
        tx.run(f"UPDATE {table} SET state = 4 WHERE local_id = :id", {"id": buffered.local_id})
        tx.run(
            f"UPDATE {table} SET state = 1, lease_expires_at = 1, dispatches = 1 WHERE local_id = :id",
            {"id": leased.local_id},
        )
    with pacer.store.transaction(0) as tx:
        tx.run("UPDATE pacer_schema SET version = 3")
    assert pacer.store.create_schema() == SCHEMA_VERSION == pacer.store.schema_version()
    names = {name.removeprefix("ix_") for name in _index_names(pacer, table, shard)}
    assert "due" in names and "ready" not in names
    assert pacer.store.create_schema() == SCHEMA_VERSION  # again: nothing left to change
    (later,) = pacer.enqueue("upgraded3", [b"later"])  # the columns an INSERT leaves out have their defaults
    assert pacer.run_maintenance("upgraded3").expired == 1
    leases = pacer.dequeue("upgraded3", limit=10)
    expected = [d.local_id for d in (pending, buffered, leased, later)]
    assert sorted(lease.descriptor.local_id for lease in leases) == expected
    assert pacer.ack("upgraded3", succeeded=leases).rejected == {}
    assert pacer.count("upgraded3", JobState.SUCCEEDED) == 4


def test_gc_reads_past_old_unfinished_jobs_in_passes(pacer: Pacer, monkeypatch: pytest.MonkeyPatch) -> None:
    """GC reads a few rows per pass in id order: old jobs still pending at the head of the table hold it up for
    one pass, not for ever, and jobs created after the cutoff end a pass."""
    from pacer.storage import base

    monkeypatch.setattr(base, "GC_SCAN", 2)
    pacer.create_queue("gcpass", succeeded_ttl=timedelta(seconds=0), failed_ttl=timedelta(seconds=0))
    pacer.enqueue("gcpass", [Job(b"later", delay=timedelta(hours=1)) for _ in range(3)])
    pacer.enqueue("gcpass", [Job(b"a"), Job(b"b"), Job(b"c", attempts=1)])
    leases = pacer.dequeue("gcpass", limit=3)
    assert [lease.body for lease in leases] == [b"a", b"b", b"c"]
    pacer.ack("gcpass", succeeded=leases[:2], failed=leases[2:])
    time.sleep(0.01)
    passes = []
    for _ in range(4):
        passes.append((pacer.run_maintenance("gcpass").gc_deleted, pacer.store.gc_behind("gcpass", 0)))
    # Two delayed jobs, then one more and a finished one, then two finished: each pass read a full window, so
    # more may follow; the fourth read nothing and starts over.
    assert passes == [(0, True), (1, True), (2, True), (0, False)]
    assert pacer.count("gcpass", JobState.PENDING) == 3
    assert pacer.count("gcpass", JobState.SUCCEEDED) == pacer.count("gcpass", JobState.FAILED) == 0


def test_jobs_not_leased_or_finished_store_zero_times_read_like_older_nulls(pacer: Pacer) -> None:
    """Lease expiry and finish time are 0, not NULL, until set (an in-place lease write); rows written with NULLs
    before read the same, and GC leaves both kinds alone."""
    from pacer._names import partition_table

    pacer.create_queue("zeroed", succeeded_ttl=timedelta(seconds=0))
    done, leased, older = pacer.enqueue("zeroed", [b"a", b"b", b"c"])
    table, shard = partition_table("zeroed", 0), pacer.store.shard_of("zeroed", 0)

    def times() -> dict[int, tuple[object, object]]:
        with pacer.store.transaction(shard) as tx:
            return {
                row[0]: (row[1], row[2])
                for row in tx.rows(f"SELECT local_id, lease_expires_at, finished_at FROM {table}")
            }

    assert set(times().values()) == {(0, 0)}
    with pacer.store.transaction(shard) as tx:
        tx.run(
            f"UPDATE {table} SET lease_expires_at = NULL, finished_at = NULL WHERE local_id = :id",
            {"id": older.local_id},
        )
    first, second = pacer.dequeue("zeroed", limit=2)
    assert (first.descriptor, second.descriptor) == (done, leased)
    pacer.ack("zeroed", succeeded=[first])
    stored = times()
    # a finished job keeps its last lease's expiry: an ack moves no index entry
    assert int(stored[done.local_id][0]) > 0 and int(stored[done.local_id][1]) > 0  # type: ignore[call-overload]
    assert int(stored[leased.local_id][0]) > 0 and stored[leased.local_id][1] == 0  # type: ignore[call-overload]
    infos = pacer.lookup([done, leased, older])
    assert infos[done].finished_at is not None
    assert infos[leased].finished_at is None and infos[older].finished_at is None
    assert pacer.run_maintenance("zeroed").gc_deleted == 1
    assert set(pacer.lookup([done, leased, older])) == {leased, older}
    assert pacer.count("zeroed", JobState.PENDING) == 1 and pacer.count("zeroed", JobState.IN_PROGRESS) == 1


def test_a_success_ack_keeps_the_custom_status_or_appends_to_it(pacer: Pacer, queue: str) -> None:
    kept, appended = pacer.enqueue(queue, [Job(b"a", custom_status="set"), Job(b"b", custom_status="set")])
    first, second = pacer.dequeue(queue, limit=2)
    assert not pacer.ack(queue, succeeded=[first]).rejected  # nothing to append: the status is left alone
    assert not pacer.ack(queue, succeeded=[Ack(second.descriptor, second.claim, append_status="+ok")]).rejected
    infos = pacer.lookup([kept, appended])
    assert (infos[kept].custom_status, infos[appended].custom_status) == ("set", "set+ok")
    assert {info.state for info in infos.values()} == {JobState.SUCCEEDED}


def test_a_claim_is_the_grants_epoch_and_dispatch_and_malformed_ones_match_nothing(pacer: Pacer, queue: str) -> None:
    """A grant writes the owner epoch and dispatch count, not a claim string (the row keeps its size)."""
    from pacer._names import partition_table

    (descriptor,) = pacer.enqueue(queue, [Job(b"a", attempts=3)])
    (lease,) = pacer.dequeue(queue)
    table, shard = partition_table(queue, 0), pacer.store.shard_of(queue, 0)
    with pacer.store.transaction(shard) as tx:
        ((epoch, dispatches, stored),) = tx.rows(
            f"SELECT owner_epoch, dispatches, claim_token FROM {table} WHERE local_id = :id",
            {"id": descriptor.local_id},
        )
    assert lease.claim == f"{epoch}.{dispatches}" and stored is None
    assert pacer.lookup([descriptor])[descriptor].claim == lease.claim
    for forged in ("", "x", f"{epoch}.{dispatches}.0", f"{epoch}.{dispatches + 1}", f" {lease.claim}"):
        assert pacer.ack(queue, succeeded=[Ack(descriptor, forged)]).rejected == {descriptor: "stale_claim"}
        assert pacer.ack(queue, failed=[Ack(descriptor, forged)]).rejected == {descriptor: "stale_claim"}
        assert pacer.checkpoint(queue, [Checkpoint(descriptor, forged, move_to_pending=True)]) == [False]
    assert not pacer.ack(queue, failed=[lease]).rejected  # attempts left: PENDING again, no claim
    assert pacer.lookup([descriptor])[descriptor].claim is None
    (again,) = pacer.dequeue(queue)
    assert again.claim == f"{epoch}.{dispatches + 1}"
    assert pacer.ack(queue, succeeded=[lease]).rejected == {descriptor: "stale_claim"}  # the first grant's
    assert not pacer.ack(queue, succeeded=[again]).rejected and not pacer.ack(queue, succeeded=[again]).rejected
    assert pacer.lookup([descriptor])[descriptor].claim == again.claim  # a finished job keeps its last claim


def test_a_batch_with_shared_and_different_settings_stores_each_jobs_own(pacer: Pacer, queue: str) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    jobs = [
        Job(b"a", priority=2, attempts=3, custom_status="x"),
        Job(b"b"),
        Job(b"c", priority=2, run_after=later, custom_status="x"),
        Job(b"d", priority=3, attempts=3),
    ]
    descriptors = pacer.enqueue(queue, jobs)
    infos = pacer.lookup(descriptors, include_body=True)
    stored = [(infos[d].body, d.priority, infos[d].attempts_allowed, infos[d].custom_status) for d in descriptors]
    assert stored == [(b"a", 2, 3, "x"), (b"b", 1, 2, ""), (b"c", 2, 2, "x"), (b"d", 3, 3, "")]
    assert infos[descriptors[2]].run_after > datetime.now(UTC) + timedelta(minutes=59)
    assert infos[descriptors[0]].run_after == infos[descriptors[1]].run_after <= datetime.now(UTC)


def test_a_batch_mixing_first_and_repeated_dispatches_is_leased_and_acked_job_by_job(pacer: Pacer, queue: str) -> None:
    """Grants and acks compare each job's own dispatch count and epoch, also when a batch mixes them."""
    retried, fresh, other = pacer.enqueue(queue, [b"a", b"b", b"c"])
    (first,) = pacer.dequeue(queue)
    assert first.descriptor == retried
    assert not pacer.ack(queue, failed=[first]).rejected  # attempts left: PENDING again, dispatched once
    leases = pacer.dequeue(queue, limit=3)
    claims = {lease.descriptor: lease.claim.split(".")[1] for lease in leases}
    assert claims == {retried: "2", fresh: "1", other: "1"}
    stale = Ack(other, first.claim.split(".")[0] + ".2")  # the dispatch count of the retried job, not its own
    by_job = {lease.descriptor: lease for lease in leases}
    result = pacer.ack(queue, succeeded=[by_job[retried], by_job[fresh], stale])
    assert sorted(result.accepted) == sorted([retried, fresh]) and result.rejected == {other: "stale_claim"}
    assert not pacer.ack(queue, succeeded=[by_job[other]]).rejected
    infos = pacer.lookup([retried, fresh, other])
    assert {info.state for info in infos.values()} == {JobState.SUCCEEDED}


def test_grants_and_acks_touch_only_the_jobs_they_list_close_together_or_spread(pacer: Pacer, queue: str) -> None:
    """Listed ids close together are read as a range of the table: the jobs between them stay as they were."""
    from pacer._models import now_us
    from pacer.storage.base import AckItem

    store = pacer.store
    descriptors = pacer.enqueue(queue, [b"x"] * 10)
    epoch = pacer.partitions(queue)[0].epoch
    ready = store.reserve(queue, 0, epoch, 10, now_us())
    assert [job.local_id for job in ready] == [d.local_id for d in descriptors]
    close = [ready[0], ready[1], ready[3], ready[4]]  # the third one lies between them, not listed
    spread = [ready[5], ready[9]]
    for batch in (close, spread):
        assert store.grant(queue, 0, epoch, batch, 60_000_000, now_us()) == batch
    leased = {job.local_id for job in close + spread}
    infos = pacer.lookup(descriptors)
    assert [info.state for info in infos.values()] == [
        JobState.IN_PROGRESS if d.local_id in leased else JobState.PENDING for d in descriptors
    ]
    for batch in (close, spread):
        acks = [AckItem(job.local_id, f"{epoch}.1", True) for job in reversed(batch)]
        assert store.ack(queue, 0, epoch, acks, now_us()) == [None] * len(batch)
    infos = pacer.lookup(descriptors)
    assert [info.state for info in infos.values()] == [
        JobState.SUCCEEDED if d.local_id in leased else JobState.PENDING for d in descriptors
    ]


def test_ack_and_dequeue_acks_the_jobs_run_and_leases_the_next(pacer: Pacer, queue: str) -> None:
    descriptors = pacer.enqueue(queue, [b"a", b"b", b"c", b"d", b"e"])
    first = pacer.dequeue(queue, limit=2)
    result, leases = pacer.ack_and_dequeue(queue, 2, succeeded=first)
    assert result.accepted == [lease.descriptor for lease in first] and not result.rejected
    assert [lease.body for lease in leases] == [b"c", b"d"]
    forged = Ack(leases[1].descriptor, leases[0].claim + "0")
    result, more = pacer.ack_and_dequeue(queue, 5, succeeded=[leases[0], forged], failed=[])
    assert result.accepted == [leases[0].descriptor] and result.rejected == {leases[1].descriptor: "stale_claim"}
    assert [lease.body for lease in more] == [b"e"]
    result, none = pacer.ack_and_dequeue(
        queue, 5, succeeded=[leases[1]], failed=[Ack(more[0].descriptor, more[0].claim)]
    )
    assert len(result.accepted) == 2 and none == []
    states = {d: info.state for d, info in pacer.lookup(descriptors).items()}
    assert list(states.values()) == [JobState.SUCCEEDED] * 4 + [JobState.PENDING]  # the failed one runs again


def test_ack_and_dequeue_checks_its_arguments_before_anything_is_written(pacer: Pacer, queue: str) -> None:
    pacer.enqueue(queue, [b"a", b"b"])
    (lease,) = pacer.dequeue(queue)
    for limit in (0, 1001, "1"):
        with pytest.raises(InvalidArgument):
            pacer.ack_and_dequeue(queue, limit, succeeded=[lease])  # type: ignore[arg-type]
    with pytest.raises(InvalidDescriptor):
        pacer.ack_and_dequeue(queue, 1, succeeded=[lease, Ack("other:q0:p1:1", lease.claim)])
    assert pacer.count(queue, JobState.IN_PROGRESS) == 1 and pacer.count(queue, JobState.PENDING) == 1


def test_a_joint_grant_and_ack_writes_both_or_leaves_the_rest_to_each_alone(pacer: Pacer, queue: str) -> None:
    """One statement leases waiting jobs and acks leased ones; when it does not match every job, grant and ack
    find what it did (jobs leased, or acked, under the claims given) and say why the others were not."""
    from pacer import Fenced
    from pacer._models import now_us
    from pacer._owner import PartitionOwner
    from pacer.storage.base import AckItem

    store = pacer.store
    descriptors = pacer.enqueue(queue, [b"x"] * 8)
    epoch = pacer.partitions(queue)[0].epoch
    ready = store.reserve(queue, 0, epoch, 8, now_us())
    assert store.grant(queue, 0, epoch, ready[:3], 60_000_000, now_us()) == ready[:3]
    claim = f"{epoch}.1"
    acks = [AckItem(job.local_id, claim, True) for job in ready[:2]]
    jobs = [ready[3], ready[5]]  # the fifth lies between them, not listed
    assert store.grant_and_ack(queue, 0, epoch, jobs, 60_000_000, acks, now_us())
    states = [info.state for info in pacer.lookup(descriptors).values()]
    assert (
        states
        == [JobState.SUCCEEDED] * 2
        + [JobState.IN_PROGRESS] * 2
        + [JobState.PENDING]
        + [JobState.IN_PROGRESS]
        + [JobState.PENDING] * 2
    )
    assert store.ack(queue, 0, epoch, [AckItem(ready[3].local_id, claim, True)], now_us()) == [None]

    stale = AckItem(ready[2].local_id, f"{epoch}.2", True)
    good = AckItem(ready[5].local_id, claim, True)
    assert not store.grant_and_ack(queue, 0, epoch, [ready[6]], 60_000_000, [good, stale], now_us())
    assert store.grant(queue, 0, epoch, [ready[6]], 60_000_000, now_us()) == [ready[6]]  # it was leased
    assert store.ack(queue, 0, epoch, [good, stale], now_us()) == [None, "stale_claim"]
    states = [info.state for info in pacer.lookup(descriptors).values()]
    assert states[2] == JobState.IN_PROGRESS and states[5] == JobState.SUCCEEDED and states[6] == JobState.IN_PROGRESS

    not_plain = [AckItem(ready[6].local_id, claim, False)], [AckItem(ready[6].local_id, claim, True, "done")]
    for items in not_plain:  # a failed ack, or a status to append: nothing written
        assert not store.grant_and_ack(queue, 0, epoch, [ready[7]], 60_000_000, items, now_us())
    assert pacer.lookup([descriptors[7]])[descriptors[7]].state == JobState.PENDING

    PartitionOwner(store, pacer.queue_config(queue), 0, "other").acquire()
    ack_six = [AckItem(ready[6].local_id, claim, True)]
    assert not store.grant_and_ack(queue, 0, epoch, [ready[7]], 60_000_000, ack_six, now_us())
    with pytest.raises(Fenced):
        store.grant(queue, 0, epoch, [ready[7]], 60_000_000, now_us())
    states = [info.state for info in pacer.lookup(descriptors).values()]
    assert states[6] == JobState.IN_PROGRESS and states[7] == JobState.PENDING


def test_bodies_come_back_byte_for_byte(pacer: Pacer, queue: str) -> None:
    bodies = [b"", b" ", b"a b  c ", b"\x00\xff\xfe 1 2 3 4 5", bytes(range(256)), "ünï cödé".encode()]
    pacer.enqueue(queue, bodies)
    assert [lease.body for lease in pacer.dequeue(queue, limit=10)] == bodies
