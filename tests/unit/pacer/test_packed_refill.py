"""A MySQL refill's jobs come packed in one value: each job's numbers as 16 hex digits, then its body. Both
implementations (``pacer._speedups`` in C, ``pacer._fallback`` in Python) unpack it alike."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

import pacer._fallback as fallback
from pacer.storage.base import Reserved
from tests.unit.implementations import implementations
from tests.unit.pacer.test_speedups import configured

_, IMPLEMENTATIONS = implementations(fallback, "pacer._speedups")
Unpack = Callable[[bytes], list[Reserved]]


@pytest.fixture(params=IMPLEMENTATIONS)
def unpack_jobs(request: pytest.FixtureRequest) -> Unpack:
    unpack: Unpack = configured(request.param).unpack_jobs
    return unpack


def _packed(
    priority: int, run_after: int, local_id: int, allowed: int, remaining: int, dispatches: int, body: bytes
) -> bytes:
    """One job as the refill's GROUP_CONCAT writes it (HEX of a negative number is its 64-bit two's complement)."""
    numbers = (len(body), priority, run_after, local_id, allowed, remaining, dispatches)
    return b"".join(struct.pack(">q", n).hex().upper().encode() for n in numbers) + body


def test_jobs_are_unpacked_whole_in_dispatch_order_whatever_their_packed_order(unpack_jobs: Unpack) -> None:
    body = bytes(range(256)) + b"'\\\x00,"  # every byte value, quotes, backslash, NUL
    packed = (
        _packed(2, 50, 7, 3, 3, 0, b"late")
        + _packed(1, 90, 9, 5, 4, 1, body)
        + _packed(2, 10, 8, 1, 1, 2, b"")
        + _packed(1, 90, 6, 1000, 1000, 4_000_000_000, b"x" * 70_000)
    )
    assert unpack_jobs(packed) == [
        Reserved(6, 1, 1000, 1000, 4_000_000_000, b"x" * 70_000),
        Reserved(9, 1, 5, 4, 1, body),
        Reserved(8, 2, 1, 1, 2, b""),
        Reserved(7, 2, 3, 3, 0, b"late"),
    ]


def test_a_value_cut_at_the_length_limit_loses_only_its_last_job(unpack_jobs: Unpack) -> None:
    whole = _packed(1, 10, 1, 3, 3, 0, b"first") + _packed(1, 11, 2, 3, 3, 0, b"second")
    cut_in_body = whole[:-3]
    cut_in_header = whole[: len(whole) - len(b"second") - 20]
    for packed in (cut_in_body, cut_in_header):
        assert unpack_jobs(packed) == [Reserved(1, 1, 3, 3, 0, b"first")]
    assert unpack_jobs(whole[:50]) == []  # not even one whole job: the caller reads the rows one by one
    assert unpack_jobs(b"") == []


def test_negative_numbers_survive_the_round_trip(unpack_jobs: Unpack) -> None:
    assert unpack_jobs(_packed(3, -5, 11, 2, -1, 0, b"b")) == [Reserved(11, 3, 2, -1, 0, b"b")]


def test_a_lower_case_hex_header_reads_the_same_and_a_malformed_one_is_refused(unpack_jobs: Unpack) -> None:
    job = _packed(2, 40, 3, 2, 2, 1, b"body")
    assert unpack_jobs(job[:112].lower() + job[112:]) == unpack_jobs(job) == [Reserved(3, 2, 2, 2, 1, b"body")]
    with pytest.raises(ValueError):
        unpack_jobs(b"zz" + job[2:])
