"""An enqueue's INSERTs are bounded in jobs and in bytes, so each fits the server's packet limit."""

from __future__ import annotations

from collections.abc import Sequence

from pacer import Job
from pacer.storage.base import BATCH, BATCH_BYTES, insert_batches


def _sizes(batches: list[Sequence[Job]]) -> list[int]:
    return [len(batch) for batch in batches]


def test_a_usual_call_is_one_insert() -> None:
    jobs = [Job(b"x" * 64) for _ in range(100)]
    assert insert_batches(jobs) == [jobs]


def test_runs_end_at_the_job_count_or_the_byte_budget_whichever_comes_first() -> None:
    assert _sizes(insert_batches([Job(b"x")] * (2 * BATCH + 1))) == [BATCH, BATCH, 1]
    big = Job(b"\x00" * (1 << 20))  # zeros: escaped, twice as long
    batches = insert_batches([big] * 10)
    assert _sizes(batches) == [4, 4, 2] and all(sum(len(j.body) for j in b) <= BATCH_BYTES for b in batches)
    status = Job(b"y", custom_status="s" * 5000)  # statuses count too
    assert sum(_sizes(insert_batches([status] * 900))) == 900 and len(insert_batches([status] * 900)) == 2


def test_jobs_keep_their_order_across_runs() -> None:
    big = [Job(bytes([i]) * (1 << 20)) for i in range(4)]
    jobs = [Job(b"a"), *big, Job(b"b")]
    batches = insert_batches(jobs)
    assert _sizes(batches) == [4, 2]  # one byte more than the budget would take all four large bodies
    assert [job for batch in batches for job in batch] == jobs
