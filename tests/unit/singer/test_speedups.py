"""The text reader's line splitting: the C version (``singer._speedups``) and the Python one (``singer._fallback``)
give the same lines, offsets, cuts and held tails, and the reader built on them keeps every rule of the text
format whichever is in use."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import singer._fallback as fallback
import singer._text
from singer._accel import SPEEDUPS
from singer._records import Lines, Record
from singer._text import TextReader
from tests.unit.implementations import implementations

speedups, IMPLEMENTATIONS = implementations(fallback, "singer._speedups")
MODULES: list[ModuleType] = [param.values[0] for param in IMPLEMENTATIONS]


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module: ModuleType = request.param
    monkeypatch.setattr(singer._text, "split", module.split)
    return module


def test_the_c_extension_is_built_where_a_compiler_is() -> None:
    assert SPEEDUPS == (speedups is not None and not os.environ.get("SINGER_NO_SPEEDUPS"))  # noqa: SIM300


def columns(result: tuple[int, bytes, bytes, int, int]) -> tuple[int, list[int], list[int], int, int]:
    stop, ends, sizes, truncated, cut = result
    return stop, memoryview(ends).cast("q").tolist(), memoryview(sizes).cast("q").tolist(), truncated, cut


def test_split_cuts_long_lines_in_place_and_counts_them(impl: ModuleType) -> None:
    buffer = bytearray(b"abc\nlonglonglong\n\nx\ntail")
    assert columns(impl.split(buffer, 0, True, 5, 0)) == (20, [4, 17, 18, 20], [4, 10, 11, 13], 1, 7)
    assert buffer[4:10] == b"longl\n"  # the kept newline written over the first byte cut off
    buffer = bytearray(b"abc\nlonglonglong\n\nx\ntail")
    # Without the newline nothing is written; 3 bytes were already cut from the first line (held over).
    assert columns(impl.split(buffer, 0, False, 5, 3)) == (20, [4, 17, 18, 20], [3, 8, 8, 9], 2, 10)
    assert buffer == bytearray(b"abc\nlonglonglong\n\nx\ntail")


def test_split_without_a_newline_holds_everything(impl: ModuleType) -> None:
    assert columns(impl.split(bytearray(b"no newline yet"), 0, True, 5, 9)) == (0, [], [], 0, 0)


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\x00", b"long line here"]), max_size=40).map(b"".join),
    start=st.integers(0, 5),
    keep=st.booleans(),
    limit=st.integers(0, 20),
    first_cut=st.integers(0, 3),
)
def test_both_implementations_split_alike(data: bytes, start: int, keep: bool, limit: int, first_cut: int) -> None:
    start = min(start, len(data))
    python, python_buffer = fallback.split(bytearray(data), start, keep, limit, first_cut), bytearray(data)
    fallback.split(python_buffer, start, keep, limit, first_cut)
    for module in MODULES:
        buffer = bytearray(data)
        assert module.split(buffer, start, keep, limit, first_cut) == python
        assert buffer == python_buffer


def expected_records(content: bytes, keep: bool, limit: int) -> list[Record]:
    """The text format's rules, spelled out: each terminated line, cut to the limit, with its end offset."""
    records, start = [], 0
    while (newline := content.find(b"\n", start)) >= 0:
        value = content[start:newline][:limit] + (b"\n" if keep else b"")
        records.append(Record(value, newline + 1))
        start = newline + 1
    return records


def read_growing(
    fd: int, path: Path, writes: list[bytes], module: ModuleType, chunk: int, keep: bool, limit: int
) -> tuple[list[Record], TextReader, bytes]:
    """Append each of ``writes`` and read to the end after each: partial lines are held across reads."""
    with patch.object(singer._text, "split", module.split):
        reader = TextReader(fd, 0, chunk_bytes=chunk, max_message_bytes=limit + (1 if keep else 0), keep_newline=keep)
        records: list[Record] = []
        for data in writes:
            with path.open("ab") as f:
                f.write(data)
            while True:
                records += reader.read()
                if reader.eof:
                    break
    return records, reader, b"".join(writes)


@settings(max_examples=60, deadline=None)
@given(
    writes=st.lists(
        st.lists(st.sampled_from([b"ab", b"\n", b"xyz" * 7, b"\r"]), max_size=12).map(b"".join), max_size=6
    ),
    chunk=st.integers(1, 40),
    keep=st.booleans(),
    limit=st.integers(2, 30),
)
def test_reader_gives_every_line_once_whatever_the_chunks(
    tmp_path_factory: pytest.TempPathFactory, writes: list[bytes], chunk: int, keep: bool, limit: int
) -> None:
    path = tmp_path_factory.mktemp("lines") / "app.log"
    path.write_bytes(b"")
    for module in MODULES:
        fd = os.open(path, os.O_RDONLY)
        path.write_bytes(b"")
        try:
            records, reader, content = read_growing(fd, path, writes, module, chunk, keep, limit)
        finally:
            os.close(fd)
        expected = expected_records(content, keep, limit)
        assert records == expected
        assert reader.position == (expected[-1].next_offset if expected else 0)
        assert reader.held_bytes == len(content) - reader.position  # the unterminated tail, held
        cut = [max(len(line) - limit, 0) for line in content.split(b"\n")[:-1]]
        assert (reader.stats.truncated, reader.stats.truncated_bytes) == (sum(1 for c in cut if c), sum(cut))


def test_an_unterminated_line_is_held_until_its_newline(impl: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"first\nsec")
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = TextReader(fd, 0)
        assert reader.read() == [Record(b"first\n", 6)]
        assert reader.read() == [] and reader.held_bytes == 3
        with path.open("ab") as f:
            f.write(b"ond\n")
        assert reader.read() == [Record(b"second\n", 13)]
        with path.open("ab") as f:
            f.write(b"last, never terminated")
        assert reader.read() == [] and reader.finish() == [Record(b"last, never terminated", 35)]
    finally:
        os.close(fd)


def test_a_line_over_the_limit_across_reads_is_cut_and_counted_once(impl: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"z" * 100 + b"\nok\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = TextReader(fd, 0, chunk_bytes=7, max_message_bytes=10)
        records: list[Record] = []
        while not reader.eof:
            records += reader.read()
        assert records == [Record(b"z" * 9 + b"\n", 101), Record(b"ok\n", 104)]
        assert (reader.stats.truncated, reader.stats.truncated_bytes) == (1, 91)
        assert reader.held_bytes == 0
    finally:
        os.close(fd)


def test_lines_slice_as_their_records_do(impl: ModuleType) -> None:
    buffer = bytearray(b"a\nbb\nccc\ndddd\n")
    _, ends, sizes, _, _ = impl.split(buffer, 0, True, 100, 0)
    lines = Lines(buffer, 0, memoryview(ends).cast("q"), memoryview(sizes).cast("q"), 1000)
    records = list(lines)
    assert [r.value for r in records] == [b"a\n", b"bb\n", b"ccc\n", b"dddd\n"]
    assert [r.next_offset for r in records] == [1002, 1005, 1009, 1014]
    for lo in range(5):
        for hi in range(lo, 5):
            part = lines[lo:hi]
            assert part == records[lo:hi] and len(part) == hi - lo
            assert part.nbytes == sum(len(r.value) for r in records[lo:hi])
            assert [part.next_offset(i) for i in range(len(part))] == [r.next_offset for r in records[lo:hi]]
            if part:
                assert part.value_start == ends_before(records, lo) and part[-1] == records[hi - 1]
    assert lines[1:][1:3] == records[2:4]


def ends_before(records: list[Record], index: int) -> int:
    return records[index - 1].next_offset - 1000 if index else 0


def test_a_read_buffer_is_used_again_only_once_its_lines_are_gone(impl: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(b"".join(b"%07d\n" % i for i in range(100)))  # a backlog of full 64-byte chunks
    fd = os.open(path, os.O_RDONLY)
    try:
        reader = TextReader(fd, 0, chunk_bytes=64)
        first = reader.read()
        copies = list(first)
        second = reader.read()
        assert isinstance(first, Lines) and isinstance(second, Lines)
        assert first == copies and first[0] == Record(b"0000000\n", 8)  # not overwritten by the second read
        assert second.buffer.obj is not first.buffer.obj  # type: ignore[union-attr]
        reused = id(second.buffer.obj)  # type: ignore[union-attr]
        del first, second
        third = reader.read()
        assert isinstance(third, Lines) and id(third.buffer.obj) == reused  # type: ignore[union-attr]
        assert list(third) == [Record(b"%07d\n" % i, 8 * i + 8) for i in range(16, 24)]
    finally:
        os.close(fd)
