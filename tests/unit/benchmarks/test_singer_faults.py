"""The SIGKILL harness's accounting: duplicates charged to the crash that caused them, in lines and batches."""

from __future__ import annotations

from benchmarks.singer_faults import CrashDuplicates, duplicates_per_crash


def test_duplicates_are_charged_to_the_last_kill_before_they_were_read_again() -> None:
    # Records a..d first read in two batches (read times 10 and 11); the process is killed at 15 and 30.
    records = [(b"a", b"A"), (b"b", b"B"), (b"c", b"C"), (b"d", b"D"), (b"e", b"E")]
    read_times = [10, 10, 11, 11, 20]
    records += [(b"a", b"A"), (b"b", b"B"), (b"c", b"C")]  # resent after the first kill
    read_times += [16, 16, 16]
    records += [(b"e", b"E"), (b"e", b"E")]  # resent after the second kill, twice (a rewind as well)
    read_times += [31, 32]
    assert duplicates_per_crash(records, read_times, [15, 30]) == [CrashDuplicates(3, 2), CrashDuplicates(2, 1)]


def test_no_duplicates_gives_a_row_of_zeros_per_kill() -> None:
    assert duplicates_per_crash([(b"a", b"A")], [5], [1, 9]) == [CrashDuplicates(0, 0), CrashDuplicates(0, 0)]
