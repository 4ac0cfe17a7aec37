"""Partitioners: distribution rules, and key hashes that agree with the reference's Java arithmetic."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from singer._partitioners import (
    Crc32,
    Fixed,
    LocalityAware,
    Md5,
    Murmur3,
    Partitions,
    RoundRobin,
    Single,
    crc32_hash,
    create,
    java_abs,
    java_rem,
    md5_hash,
    murmur3_32,
)

P60 = Partitions(tuple(range(60)))
P3 = Partitions((3, 5, 9))


def signed(values: list[int]) -> bytes:
    """A Java byte[] literal (signed bytes) as Python bytes."""
    return bytes(v & 0xFF for v in values)


def test_java_arithmetic_pitfalls() -> None:
    assert java_abs(-(2**31)) == -(2**31)  # Math.abs(Integer.MIN_VALUE)
    assert java_abs(-5) == 5
    assert java_rem(-7, 3) == -1 and java_rem(7, -3) == 1 and java_rem(-(2**31), 60) == -8


def test_crc32_reference_vectors() -> None:
    assert Crc32().partition(signed([0, 80, 64, 36, 43, 101, 22, 13]), P60) == 40
    key = signed([0, 32, 69, -4, -59, 25, -32, 22])
    assert crc32_hash(key) == -(2**31)  # abs() leaves it negative; % keeps the sign; the outer abs fixes it
    assert Crc32().partition(key, P60) == 8


def test_md5_reference_vector() -> None:
    assert Md5().partition(b"399553798187727154", Partitions(tuple(range(50)))) == 24


def test_murmur3_matches_the_published_vectors() -> None:
    assert murmur3_32(b"") == 0
    assert murmur3_32(b"hello") == 0x248BFA47
    assert murmur3_32(b"abc") == 0xB3DD93FA - 2**32  # asInt() is signed
    assert murmur3_32(b"The quick brown fox jumps over the lazy dog") == 0x2E4FF723
    # -1277324294: abs is 1277324294 = 60 * 21288738 + 14.
    assert Murmur3().partition(b"abc", P60) == 14


def test_md5_takes_the_first_four_digest_bytes_little_endian() -> None:
    # md5("a") = 0cc175b9...: bytes 0c c1 75 b9 read little-endian = 0xb975c10c, negative as an int.
    assert md5_hash(b"a") == 0xB975C10C - 2**32
    # 1183465204 = 7 * 169066457 + 5, so -1183465204 % 7 is -5 in Java (truncating); the reference adds 7.
    assert Md5().partition(b"a", Partitions(tuple(range(7)))) == 2


@given(st.binary(max_size=64), st.integers(min_value=1, max_value=500))
def test_key_hashes_always_land_on_a_partition_and_are_stable(key: bytes, n: int) -> None:
    parts = Partitions(tuple(range(100, 100 + n)))
    for partitioner in (Crc32(), Murmur3(), Md5()):
        chosen = partitioner.partition(key, parts)
        assert chosen in parts.ids and chosen == partitioner.partition(key, parts)


def test_null_key_goes_to_some_partition() -> None:
    assert Crc32().partition(None, P60) in P60.ids


def test_round_robin_cycles_through_every_partition() -> None:
    rr = RoundRobin()
    picks = [rr.partition(None, Partitions((3, 5, 9))) for _ in range(9)]
    assert Counter(picks) == {3: 3, 5: 3, 9: 3}
    assert picks[0] != picks[1] != picks[2]


def test_single_keeps_one_partition_until_the_partitions_change() -> None:
    single = Single()
    assert len({single.partition(None, P60) for _ in range(200)}) == 1
    assert single.partition(None, Partitions((70, 71))) in (70, 71)


def test_fixed_n_uses_n_distinct_partitions() -> None:
    fixed = Fixed(count=4)
    assert len({fixed.partition(None, P60) for _ in range(2000)}) == 4
    rr = Fixed(count=3, mode="round_robin")
    picks = [rr.partition(None, P60) for _ in range(6)]
    assert picks[:3] == picks[3:] and len(set(picks)) == 3
    assert len({Fixed(count=10).partition(None, Partitions((1, 2))) for _ in range(100)}) <= 2


def test_locality_prefers_local_leaders_and_falls_back() -> None:
    parts = Partitions((0, 1, 2, 3), racks={0: "a", 1: "b", 2: "a", 3: "b"})
    local = LocalityAware(rack="a")
    assert {local.partition(None, parts) for _ in range(200)} == {0, 2}
    elsewhere = LocalityAware(rack="z", inner="round_robin")
    assert {elsewhere.partition(None, parts) for _ in range(8)} == {0, 1, 2, 3} and elsewhere.missing_local


def test_round_robin_splits_a_batch_into_one_run_per_partition_with_the_same_shares() -> None:
    one_by_one, bulk = RoundRobin(), RoundRobin()
    one_by_one._next = bulk._next = 5
    for count in (10, 3, 1, 2, 0, 7):
        expected = [one_by_one.partition(None, P3) for _ in range(count)]
        runs = bulk.partition_many([None] * count, P3)
        assert Counter(runs) == Counter(expected)  # each partition's share, as turns record by record give it
        assert runs[:1] == expected[:1]  # starting where those turns would
        assert [pid for i, pid in enumerate(runs) if i == 0 or runs[i - 1] != pid] == list(dict.fromkeys(runs))
    assert bulk._next == one_by_one._next  # and the next batch starts where they would


@pytest.mark.parametrize(
    "make",
    [lambda: Fixed(count=3, mode="round_robin"), Single, lambda: Crc32()],
    ids=["fixed-rr", "single", "crc32"],
)
def test_a_batch_is_partitioned_as_record_by_record_calls_would(make: Any) -> None:
    keys: list[bytes | None] = [str(i).encode() for i in range(7)] if make is not Single else [None] * 7
    one_by_one, bulk = make(), make()
    for p in (one_by_one, bulk):  # the same start, where it is drawn at random
        if isinstance(p, RoundRobin):
            p._next = 5
    expected = [one_by_one.partition(k, P60) for k in keys]
    if isinstance(one_by_one, Fixed):  # same draw
        bulk._drawn_from, bulk._chosen = one_by_one._drawn_from, one_by_one._chosen
    assert bulk.partition_many(keys, P60) == expected
    assert bulk.partition_many(keys, P60) == [one_by_one.partition(k, P60) for k in keys]  # and it goes on


def test_random_choices_in_bulk_stay_within_the_partitions() -> None:
    picks = create("random", {}).partition_many([None] * 3000, Partitions((4, 6, 8)))
    assert len(picks) == 3000 and set(picks) == {4, 6, 8}
    fixed = Fixed(count=2).partition_many([None] * 500, P60)
    assert len(set(fixed)) == 2


def test_entry_points_build_by_name_and_name_the_problem() -> None:
    assert isinstance(create("fixed", {"count": 2}), Fixed)
    with pytest.raises(ValueError, match="unknown partitioner 'nope'"):
        create("nope", {})
    with pytest.raises(ValueError, match="partitioner 'single'"):
        create("single", {"count": 2})
    with pytest.raises(ValueError, match="at least 1"):
        create("fixed", {"count": 0})
