"""The SIGKILL harness's accounting: duplicates charged to the crash that caused them, in lines and batches;
the writer; where lost lines are."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

from benchmarks.singer_faults import (
    STREAM_PATTERN,
    Burst,
    CrashDuplicates,
    append_burst,
    duplicates_per_crash,
    line,
    locate_lines,
    lost_runs,
    rotate,
)


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


def test_a_burst_waits_for_a_missing_file_instead_of_creating_it(tmp_path: Path) -> None:
    # A missing file is logrotate between its rename and its create: a file made there is moved aside by
    # logrotate (app.log-YYYYMMDDHH.backup), out of the stream, and the burst with it.
    path = tmp_path / "app.log"
    path.write_bytes(line(0))
    path.rename(tmp_path / "app.log.1")
    bursts: list[Burst] = []
    writer = threading.Thread(target=lambda: bursts.append(append_burst(path, 1, 3, create=False)))
    writer.start()
    time.sleep(0.2)
    assert not path.exists(), "the writer made the file logrotate is about to create"
    path.touch()  # logrotate's create
    writer.join(5)
    assert path.read_bytes() == line(1) + line(2) + line(3)
    assert bursts == [Burst(1, 3, path.stat().st_ino, 0, bursts[0].written_ns)]


def test_a_burst_appends_and_says_where_it_went(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    first = append_burst(path, 0, 2, create=True)
    second = append_burst(path, 2, 1, create=False)
    assert path.read_bytes() == line(0) + line(1) + line(2)
    assert (first.inode, first.offset) == (second.inode, 0) == (path.stat().st_ino, 0)
    assert second.offset == len(line(0) + line(1))
    assert append_burst(tmp_path / "gone.log", 3, 1, create=False, wait_s=0.01).count == 1  # created after all


def test_lost_lines_are_located_by_file_write_and_cycle(tmp_path: Path) -> None:
    (tmp_path / "app.log.1").write_bytes(b"".join(line(i) for i in range(10)))
    (tmp_path / "app.log-2026112920.backup").write_bytes(b"".join(line(i) for i in range(10, 15)))
    bursts = [Burst(0, 5, 11, 0, 5), Burst(5, 5, 11, 200, 12), Burst(10, 5, 12, 0, 25)]
    kills, marks = [10, 20], [{"s.json": {"offset": 1}}, {"s.json": {"offset": 2}}]
    lost = [3, 4, 5, 11, 12, 20]
    rows = lost_runs(lost, bursts, locate_lines(tmp_path, set(lost)), kills, marks)
    assert [(r["first"], r["last"], r["lines"], r["file"], r["in_stream"]) for r in rows] == [
        (3, 4, 2, "app.log.1", True),
        (5, 5, 1, "app.log.1", True),  # another write
        (11, 12, 2, "app.log-2026112920.backup", False),
        (20, 20, 1, None, False),  # in no file, and in no burst recorded
    ]
    assert rows[0]["offset"] == len(line(0) + line(1) + line(2))
    assert rows[0]["written_offset"] == rows[0]["offset"] and rows[0]["written_inode"] == 11
    assert rows[1]["written_offset"] == 200
    assert rows[2]["written_offset"] == len(line(10)) and rows[2]["offset"] == len(line(10))
    assert [r["cycle"] for r in rows] == [0, 1, 2, None]
    assert rows[0]["watermarks_before"] is None and rows[0]["watermarks_after"] == marks[0]
    assert rows[1]["watermarks_before"] == marks[0] and rows[1]["watermarks_after"] == marks[1]
    assert rows[2]["watermarks_before"] == marks[1] and rows[2]["watermarks_after"] is None


def test_logrotate_moves_a_file_in_the_way_of_its_create_out_of_the_stream(tmp_path: Path) -> None:
    # The file is in logrotate's way when it creates the new one, as a file a writer made between logrotate's
    # rename and its create is: every name a hard link of one file makes each of logrotate's renames a no-op.
    logs = tmp_path / "logs"
    logs.mkdir()
    path = logs / "app.log"
    path.write_bytes(line(0))
    for n in (1, 2, 3):
        os.link(path, logs / f"app.log.{n}")
    assert rotate(logs, "create", tmp_path / "state", keep=2, options=("allowhardlink",)) == 1
    moved = [p for p in logs.iterdir() if p.read_bytes() == line(0) and not re.fullmatch(STREAM_PATTERN, p.name)]
    assert len(moved) == 1 and re.fullmatch(r"app\.log-\d{10}\.backup", moved[0].name), moved  # -YYYYMMDDHH
    assert path.read_bytes() == b""  # the new file
    assert rotate(logs, "create", tmp_path / "state") == 0  # an ordinary rotation
