"""Following a stream's files: ordering, rename rotation, copytruncate, deletion, identity, rewind."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from singer._files import StreamTail, copytruncate_gap, fingerprint, list_stream
from singer._records import Record
from singer._text import TextReader
from singer._watch import EVERYTHING, Watcher
from singer._watermark import Watermark

PATTERN = re.compile(r"app\.log(\.\d+)?")


def tail_of(directory: Path, grace: float = 0.0) -> StreamTail:
    return StreamTail(directory, PATTERN, lambda fd, off: TextReader(fd, off, chunk_bytes=64), None, grace)


def drain(tail: StreamTail, rounds: int = 50) -> list[bytes]:
    out: list[bytes] = []
    for _ in range(rounds):
        _, records = tail.read()
        out += [r.value for r in records]
    return out


def write(path: Path, data: bytes, mtime_ns: int | None = None) -> None:
    with path.open("ab") as f:
        f.write(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


@pytest.fixture
def logdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


def test_files_are_ordered_oldest_first_and_the_regex_is_a_real_regex(logdir: Path) -> None:
    for name, t in [("app.log", 3), ("app.log.1", 2), ("app.log.2", 2), ("appXlog", 1), (".app.log.w", 1)]:
        write(logdir / name, b"x\n", t * 10**9)
    names = [f.path.name for f in list_stream(logdir, PATTERN)]
    assert names == ["app.log.2", "app.log.1", "app.log"]


def test_rename_rotation_loses_nothing(logdir: Path) -> None:
    live = logdir / "app.log"
    write(live, b"1\n2\n")
    tail = tail_of(logdir)
    assert drain(tail, 3) == [b"1\n", b"2\n"]
    write(live, b"3\npartial")  # written just before rotation, not yet read
    live.rename(logdir / "app.log.1")
    write(live, b"4\n")
    os.utime(live, ns=(2**62, 2**62))
    assert drain(tail) == [b"3\n", b"partial", b"4\n"]
    assert tail.stats.copytruncate == 0


def test_copytruncate_is_detected_and_the_tail_read_from_the_copy(logdir: Path) -> None:
    live = logdir / "app.log"
    write(live, b"a" * 1500 + b"\nb\n")
    tail = tail_of(logdir)
    assert len(drain(tail, 40)) == 2
    write(live, b"unread\n")
    shutil.copyfile(live, logdir / "app.log.1")
    os.truncate(live, 0)
    write(live, b"after\n")
    os.utime(live, ns=(2**62, 2**62))
    assert drain(tail) == [b"unread\n", b"after\n"]
    assert tail.stats.copytruncate == 1 and tail.stats.bytes_unrecoverable == 0


def test_copytruncate_without_the_copy_restarts_and_counts_the_loss(logdir: Path) -> None:
    live = logdir / "app.log"
    write(live, b"one\n")
    tail = tail_of(logdir)
    assert drain(tail, 3) == [b"one\n"]
    write(live, b"lost!\n")
    tail.read()  # sees the size
    os.truncate(live, 0)
    write(live, b"new\n")
    assert drain(tail) == [b"new\n"]
    assert tail.stats.copytruncate == 1


def test_copytruncate_counts_the_bytes_seen_beyond_the_copy(logdir: Path) -> None:
    """Lines written between logrotate's copy and its truncation are in neither file: counted when seen."""
    live = logdir / "app.log"
    lines = [b"line %03d\n" % i for i in range(20)]  # 9 bytes each
    write(live, b"".join(lines))
    tail = tail_of(logdir)
    first = [r.value for r in tail.read()[1]]  # one 64-byte chunk: the reader is behind
    shutil.copyfile(live, logdir / "app.log.1")
    os.utime(logdir / "app.log.1", ns=(2**62, 2**62))  # no time since the copy: no rate-based estimate
    write(live, b"gap 1\ngap 2\n")  # after the copy
    second = [r.value for r in tail.read()[1]]  # sees the file's new size, reads the next chunk only
    os.truncate(live, 0)
    write(live, b"new\n")
    os.utime(live, ns=(2**62, 2**62))
    assert first + second + drain(tail) == [*lines, b"new\n"]
    assert tail.stats.copytruncate == 1 and tail.stats.copytruncate_lost_bytes == 12
    assert tail.stats.bytes_unrecoverable == 0


def test_copytruncate_without_the_copy_counts_the_unread_bytes_as_lost(logdir: Path) -> None:
    live = logdir / "app.log"
    lines = [b"line %03d\n" % i for i in range(20)]
    write(live, b"".join(lines))
    tail = tail_of(logdir)
    first = [r.value for r in tail.read()[1]]
    os.truncate(live, 0)
    write(live, b"new\n")
    assert first + drain(tail) == [*lines[: len(first)], b"new\n"]
    unread = 180 - 9 * len(first)
    assert tail.stats.copytruncate_lost_bytes == unread and tail.stats.bytes_unrecoverable == unread


def test_same_size_rewrite_is_caught_by_the_fingerprint(logdir: Path) -> None:
    live = logdir / "app.log"
    write(live, b"first\n")
    tail = tail_of(logdir)
    assert drain(tail, 3) == [b"first\n"]
    with live.open("r+b") as f:
        f.write(b"other\nmore\n")
    assert drain(tail) == [b"other\n", b"more\n"]
    assert tail.stats.copytruncate == 1


def test_deleted_file_is_read_to_its_end_and_released(logdir: Path) -> None:
    live = logdir / "app.log"
    write(live, b"x\n")
    tail = tail_of(logdir)
    drain(tail, 2)
    write(live, b"y\n")
    live.unlink()
    assert drain(tail, 5) == [b"y\n"]
    assert tail.current is None
    tail.release(tail.previous[-1].watermark(4))
    tail.rewind(None)
    assert tail.open_files == 0
    fds = os.listdir("/proc/self/fd")
    write(live, b"z\n")
    assert drain(tail, 3) == [b"z\n"]
    tail.close()
    assert len(os.listdir("/proc/self/fd")) <= len(fds)


def test_resumes_from_a_watermark_and_skips_files_before_it(logdir: Path) -> None:
    write(logdir / "app.log.1", b"old\n", 10**9)
    write(logdir / "app.log", b"done\nnext\n", 2 * 10**9)
    fd = os.open(logdir / "app.log", os.O_RDONLY)
    tail = tail_of(logdir)
    tail.read()  # opens the oldest file
    assert tail.current is not None
    st = os.fstat(fd)
    digest, nbytes = fingerprint(fd)
    os.close(fd)
    from singer._watermark import Watermark

    resumed = StreamTail(
        logdir,
        PATTERN,
        lambda fd, off: TextReader(fd, off),
        Watermark(st.st_dev, st.st_ino, 5, digest, nbytes, "app.log"),
    )
    assert drain(resumed, 3) == [b"next\n"]
    tail.close()
    resumed.close()


def test_watermark_of_a_reused_inode_is_not_trusted(logdir: Path) -> None:
    from singer._watermark import Watermark

    write(logdir / "app.log", b"brand new content\n")
    st = (logdir / "app.log").stat()
    stale = Watermark(st.st_dev, st.st_ino, 10, "0" * 64, 1024, "app.log")
    tail = StreamTail(logdir, PATTERN, lambda fd, off: TextReader(fd, off), stale)
    assert drain(tail, 3) == [b"brand new content\n"]
    tail.close()


def test_rewind_reads_again_from_the_watermark(logdir: Path) -> None:
    write(logdir / "app.log", b"a\nb\nc\n")
    tail = tail_of(logdir)
    current, records = tail.read()
    assert current is not None and [r.next_offset for r in records] == [2, 4, 6]
    tail.rewind(current.watermark(2))
    assert tail.read()[1] == [Record(b"b\n", 4), Record(b"c\n", 6)]
    tail.close()


def test_inotify_reports_the_changed_directory(tmp_path: Path) -> None:
    watcher = Watcher()
    assert watcher.available
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    watcher.watch(a)
    watcher.watch(b)
    assert watcher.changes() == set()
    write(b / "app.log", b"x\n")
    watcher.wait(1.0)
    assert watcher.changes() == {b}
    watcher.close()
    polling = Watcher(enabled=False)
    assert polling.changes() is EVERYTHING
    started = time.monotonic()
    polling.wait(0.2)  # without inotify the loop sleeps instead of spinning
    assert time.monotonic() - started >= 0.19


def test_a_copy_newer_than_the_live_file_is_not_taken_for_its_successor(logdir: Path) -> None:
    live = logdir / "app.log"
    write(live, b"a" * 1500 + b"\nb\n", 10**18)
    tail = tail_of(logdir)
    assert len(drain(tail, 40)) == 2
    shutil.copyfile(live, logdir / "app.log.1")  # copytruncate's copy, newer than the live file
    os.utime(logdir / "app.log.1", ns=(2 * 10**18, 2 * 10**18))
    assert drain(tail, 5) == []  # not read again as if it were the next file
    os.truncate(live, 0)
    write(live, b"after\n", 3 * 10**18)
    assert drain(tail) == [b"after\n"]
    assert tail.stats.copytruncate == 1


def test_a_copy_still_being_made_is_not_taken_for_the_next_file(logdir: Path) -> None:
    live = logdir / "app.log"
    write(live, b"a" * 1500 + b"\nb\n", 10**18)
    tail = tail_of(logdir)
    assert len(drain(tail, 40)) == 2
    write(logdir / "app.log.1", b"a" * 100, 2 * 10**18)  # the first bytes of a copy in progress
    assert drain(tail, 5) == []
    assert tail.current is not None and tail.current.path == live


def test_copytruncate_gap_is_what_the_write_rate_put_between_the_copy_and_the_truncation() -> None:
    # 1000 B/s, 0.5 s since the copy's last write, 200 B written since the truncation: 300 B fell between.
    assert copytruncate_gap(1000.0, 0.5, 200) == 300
    assert copytruncate_gap(1000.0, 0.1, 200) == 0  # everything since the copy is in the file again
    assert copytruncate_gap(0.0, 9.0, 0) == 0  # a file not watched long enough has no rate


def test_copytruncates_while_the_agent_was_down_are_each_counted(logdir: Path) -> None:
    live = logdir / "app.log"
    write(live, b"gen 1 a\ngen 1 b\n")
    fd = os.open(live, os.O_RDONLY)
    st = os.fstat(fd)
    digest, nbytes = fingerprint(fd)
    os.close(fd)
    mark = Watermark(st.st_dev, st.st_ino, 8, digest, nbytes, str(live))  # after "gen 1 a"
    for number, copy in ((2, "app.log.2"), (3, "app.log.1")):  # two rotations while down
        shutil.copyfile(live, logdir / copy)
        os.utime(logdir / copy, ns=(number * 10**9, number * 10**9))
        os.truncate(live, 0)
        write(live, b"gen %d\n" % number, (number + 1) * 10**9)
    tail = StreamTail(logdir, PATTERN, lambda fd, off: TextReader(fd, off, chunk_bytes=64), mark, 0.0)
    assert drain(tail) == [b"gen 1 b\n", b"gen 2\n", b"gen 3\n"]
    assert tail.stats.copytruncate == 2
    tail.close()


def test_a_watermark_past_the_end_of_its_copy_resumes_after_the_copy(logdir: Path) -> None:
    """Copied, then read further before the truncation: the copy holds nothing unread, the older files neither."""
    write(logdir / "app.log.2", b"older\n", 10**9)
    live = logdir / "app.log"
    write(live, b"a" * 1100 + b"\n")
    shutil.copyfile(live, logdir / "app.log.1")
    os.utime(logdir / "app.log.1", ns=(2 * 10**9, 2 * 10**9))
    write(live, b"b\n")  # read and acknowledged after the copy was made
    fd = os.open(live, os.O_RDONLY)
    st = os.fstat(fd)
    digest, nbytes = fingerprint(fd)
    os.close(fd)
    mark = Watermark(st.st_dev, st.st_ino, 1103, digest, nbytes, str(live))
    os.truncate(live, 0)
    write(live, b"gen 2\n", 3 * 10**9)
    tail = StreamTail(logdir, PATTERN, lambda fd, off: TextReader(fd, off, chunk_bytes=64), mark, 0.0)
    assert drain(tail) == [b"gen 2\n"]
    tail.close()


def test_a_file_opened_empty_still_reveals_a_later_copytruncate(logdir: Path) -> None:
    """Opened while empty, the fingerprint covers nothing: it must grow with what is read, or a truncation
    followed by longer new content would be taken for more of the same file."""
    live = logdir / "app.log"
    write(live, b"")
    tail = tail_of(logdir)
    assert drain(tail, 2) == []
    write(live, b"old 1\nold 2\n")
    assert drain(tail, 3) == [b"old 1\n", b"old 2\n"]
    os.truncate(live, 0)
    new = [b"new line %02d\n" % i for i in range(5)]  # longer than what was read
    write(live, b"".join(new))
    assert drain(tail) == new
    assert tail.stats.copytruncate == 1


def test_a_rewrite_that_starts_alike_is_caught_by_the_bytes_before_the_position(logdir: Path) -> None:
    """Logs that open with the same banner (longer than the fingerprint): truncated and written past the read
    position again before the next look, only the bytes just before that position tell the contents apart."""
    live = logdir / "app.log"
    banner = b"# service started, build 1.2.3 " + b"=" * 1100 + b"\n"
    write(live, banner + b"old 1\nold 2\n")
    tail = tail_of(logdir)
    assert drain(tail, 40)[-2:] == [b"old 1\n", b"old 2\n"]
    os.truncate(live, 0)
    write(live, banner + b"new 1 is longer\nnew 2\n")
    assert drain(tail, 40)[-2:] == [b"new 1 is longer\n", b"new 2\n"]
    assert tail.stats.copytruncate == 1


def test_the_file_id_is_that_of_the_content_read_even_if_the_file_changed_since(logdir: Path) -> None:
    live = logdir / "app.log"
    old = b"".join(b"old line %03d\n" % i for i in range(10))
    write(live, old)
    tail = tail_of(logdir)
    current, records = tail.read()
    assert current is not None and records
    os.truncate(live, 0)  # copytruncate between the read and the send
    write(live, b"".join(b"new line %03d\n" % i for i in range(10)))
    assert current.content_id(64) == hashlib.sha256(old[:64]).digest()[:8]
    assert current.content_id(records[0].next_offset) == hashlib.sha256(old[: records[0].next_offset]).digest()[:8]


def copytruncate(logdir: Path, new_content: bytes, at_s: int) -> None:
    """logrotate's copytruncate: older copies shift up, the live file is copied to app.log.1 and emptied."""
    copies = sorted(logdir.glob("app.log.[0-8]"), key=lambda p: -int(p.suffix[1:]))
    for p in copies:
        p.rename(logdir / f"app.log.{int(p.suffix[1:]) + 1}")
    shutil.copyfile(logdir / "app.log", logdir / "app.log.1")
    os.utime(logdir / "app.log.1", ns=(at_s * 10**9, at_s * 10**9))
    os.truncate(logdir / "app.log", 0)
    write(logdir / "app.log", new_content, (at_s + 1) * 10**9)


def test_truncations_seen_only_through_their_copies_are_counted(logdir: Path) -> None:
    """Behind (reading an old file) while the live file is copied and truncated twice: each copy is read as
    the next file, and each is one truncation."""
    old = [b"old %02d\n" % i for i in range(30)]
    write(logdir / "app.log.9", b"".join(old), 10**9)
    write(logdir / "app.log", b"a\n", 2 * 10**9)
    tail = tail_of(logdir)
    first = tail.read()[1]
    assert first and tail.current is not None and tail.current.path.name == "app.log.9"
    copytruncate(logdir, b"b\n", 3)
    copytruncate(logdir, b"c\n", 5)
    assert [r.value for r in first] + drain(tail) == [*old, b"a\n", b"b\n", b"c\n"]
    assert tail.stats.copytruncate == 2


def test_truncations_while_stopped_are_counted_from_the_watermark(logdir: Path) -> None:
    old = [b"old %02d\n" % i for i in range(30)]
    write(logdir / "app.log.9", b"".join(old), 10**9)
    write(logdir / "app.log", b"a\n", 2 * 10**9)
    tail = tail_of(logdir)
    first = tail.read()[1]
    assert tail.current is not None
    copytruncate(logdir, b"b\n", 3)
    drain(tail)  # a scan at the end of app.log.9 counts the copy
    assert tail.stats.copytruncate == 1
    assert tail.previous[0].path.name == "app.log.9"
    mark = tail.stamp(tail.previous[0].watermark(first[-1].next_offset))  # stopped while app.log.9 was read
    tail.close()
    copytruncate(logdir, b"c\n", 5)  # while stopped
    copytruncate(logdir, b"d\n", 7)
    resumed = StreamTail(logdir, PATTERN, lambda fd, off: TextReader(fd, off), mark)
    drain(resumed, 10)
    assert resumed.stats.copytruncate == 2
    resumed.close()


def test_a_copy_read_on_from_its_original_names_the_original_in_mid(logdir: Path) -> None:
    """Records read from a copy at offsets first read (or in flight) from the live file keep the live file's
    inode in ``_mid``, so a record sent again after the truncation still has its first id; also after a
    restart that finds the copy by content."""
    live = logdir / "app.log"
    write(live, b"".join(b"line %02d\n" % i for i in range(20)), 10**9)
    live_inode = live.stat().st_ino
    tail = tail_of(logdir)
    current, first = tail.read()
    assert current is not None and first
    mark = current.watermark(first[-1].next_offset)
    copytruncate(logdir, b"new\n", 3)
    drain(tail)
    copy = next(f for f in tail.previous if f.path.name == "app.log.1")
    assert copy.inode != live_inode and copy.mid_inode == live_inode
    assert copy.watermark(10).mid_inode == live_inode and tail.current is not None
    assert tail.current.mid_inode == live_inode == tail.current.inode  # the live file names itself
    resumed = StreamTail(logdir, PATTERN, lambda fd, off: TextReader(fd, off), mark)
    resumed.read()
    assert resumed.current is not None and resumed.current.path.name == "app.log.1"
    assert resumed.current.mid_inode == live_inode
    again = StreamTail(logdir, PATTERN, lambda fd, off: TextReader(fd, off), resumed.current.watermark(10))
    again.read()
    assert again.current is not None and again.current.mid_inode == live_inode
    for t in (tail, resumed, again):
        t.close()


def test_a_renamed_file_still_written_is_read_before_the_next(logdir: Path) -> None:
    """A writer that opened the path just before logrotate renamed it appends to the renamed file after the new
    one exists: the stream stays on the renamed file until it has not been written for the grace period."""
    live = logdir / "app.log"
    write(live, b"1\n")
    tail = tail_of(logdir, grace=0.3)
    assert drain(tail, 3) == [b"1\n"]
    live.rename(logdir / "app.log.1")
    write(live, b"new\n")
    assert drain(tail, 3) == []  # the renamed file was written a moment ago: not left yet
    write(logdir / "app.log.1", b"late\n")
    got: list[bytes] = []
    deadline = time.monotonic() + 5
    while b"new\n" not in got and time.monotonic() < deadline:
        got += drain(tail, 3)
        time.sleep(0.05)
    assert got == [b"late\n", b"new\n"]


def test_a_truncation_whose_copy_a_scan_counted_already_is_counted_once(logdir: Path) -> None:
    live = logdir / "app.log"
    write(live, b"".join(b"line %02d\n" % i for i in range(20)), 10**9)
    tail = tail_of(logdir)
    drain(tail)
    shutil.copyfile(live, logdir / "app.log.1")  # logrotate has copied and not yet truncated
    os.utime(logdir / "app.log.1", ns=(2 * 10**9, 2 * 10**9))
    os.utime(live, ns=(3 * 10**9, 3 * 10**9))
    drain(tail, 3)
    assert tail.stats.copytruncate == 1  # the scan saw the copy
    os.truncate(live, 0)
    write(live, b"new\n", 4 * 10**9)
    assert drain(tail) == [b"new\n"]
    assert tail.stats.copytruncate == 1


def test_a_restart_does_not_count_again_a_truncation_seen_while_reading(logdir: Path) -> None:
    live = logdir / "app.log"
    write(logdir / "app.log.1", b"an older copy\n", 10**8)
    write(live, b"".join(b"line %02d\n" % i for i in range(20)), 10**9)
    tail = tail_of(logdir)
    drain(tail)
    copytruncate(logdir, b"new\n", 3)
    tail.read(look_around=False)  # sees the truncation, moves to the copy; no scan yet
    assert tail.stats.copytruncate == 1 and tail.current is not None
    mark = tail.stamp(tail.current.watermark(tail.current.reader.position))  # the crash comes here
    tail.close()
    resumed = StreamTail(logdir, PATTERN, lambda fd, off: TextReader(fd, off), mark)
    drain(resumed, 3)
    assert resumed.stats.copytruncate == 0
    resumed.close()


def test_a_copy_made_after_a_short_one_is_read_before_the_live_file(logdir: Path) -> None:
    """Caught up (read past the end of logrotate's copy, into lines written before the truncation) and slow to
    look again, the agent misses two rotations: the first copy is short of the position, the second holds what
    the live file got in between. That second copy is read before the live file starts again."""
    live = logdir / "app.log"
    before = [b"a %02d\n" % i for i in range(10)]
    gap = [b"gap %02d\n" % i for i in range(5)]  # after the first copy, before its truncation: read anyway
    between = [b"b %02d\n" % i for i in range(10)]  # after the first truncation, in the second copy only
    write(live, b"".join(before), 2 * 10**9)
    tail = tail_of(logdir)
    read = drain(tail)
    shutil.copyfile(live, logdir / "app.log.1")
    os.utime(logdir / "app.log.1", ns=(3 * 10**9, 3 * 10**9))
    write(live, b"".join(gap), 3 * 10**9 + 1)
    read += drain(tail)
    assert read == [*before, *gap]
    os.truncate(live, 0)
    write(live, b"".join(between), 4 * 10**9)
    copytruncate(logdir, b"c\n", 5)
    assert read + drain(tail) == [*before, *gap, *between, b"c\n"]
    assert tail.stats.copytruncate == 2


def test_a_listing_taken_while_logrotate_renames_files_still_finds_them_all(
    logdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """logrotate renames every copy at each rotation: a name listed can be gone when it is looked at. The
    file behind it must not drop out of the listing (it would be taken for gone, then read again as new)."""
    write(logdir / "app.log.1", b"old\n", 10**9)
    write(logdir / "app.log", b"live\n", 2 * 10**9)
    real = os.scandir
    renames = iter([("app.log.1", "app.log.2")])

    def scandir_during_rotation(path: Path) -> list[os.DirEntry[str]]:
        entries = list(real(path))
        for old, new in itertools.islice(renames, 1):  # the first listing only: renamed after it was read
            (logdir / old).rename(logdir / new)
        return entries

    monkeypatch.setattr(os, "scandir", scandir_during_rotation)
    assert [f.path.name for f in list_stream(logdir, PATTERN)] == ["app.log.2", "app.log"]
