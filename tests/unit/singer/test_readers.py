"""Text and framed-thrift readers: records, offsets, limits, held tails."""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from singer._records import Lines, Record
from singer._text import TextReader
from singer._thrift import LogMessage, ThriftDecodeError, ThriftReader, crc32, decode, encode, frame


class LogFile:
    """A file the test appends to, with an open descriptor for a reader."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_bytes(b"")
        self.fd = os.open(path, os.O_RDONLY)

    def append(self, data: bytes) -> None:
        with self.path.open("ab") as f:
            f.write(data)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[LogFile]:
    f = LogFile(tmp_path / "app.log")
    yield f
    os.close(f.fd)


def read_all(reader: TextReader | ThriftReader) -> list[Record]:
    records: list[Record] = []
    while True:
        records += reader.read()
        if reader.eof or reader.error:
            return records


# --- text --------------------------------------------------------------------------------------------


def test_only_newline_ends_a_line_and_offsets_follow_bytes(log: LogFile) -> None:
    log.append(b"a\r\nb\x0bc\n\n")
    records = read_all(TextReader(log.fd, 0))
    assert records == [Record(b"a\r\n", 3), Record(b"b\x0bc\n", 7), Record(b"\n", 8)]


def test_strip_newline_option(log: LogFile) -> None:
    log.append(b"one\ntwo\n")
    records = read_all(TextReader(log.fd, 0, keep_newline=False))
    assert [r.value for r in records] == [b"one", b"two"]
    assert records[-1].next_offset == 8


def test_unterminated_line_is_held_until_its_newline(log: LogFile) -> None:
    log.append(b"done\npart")
    reader = TextReader(log.fd, 0, chunk_bytes=64)
    assert read_all(reader) == [Record(b"done\n", 5)]
    assert reader.position == 5 and reader.held_bytes == 4
    log.append(b"ial\nnext\n")
    assert read_all(reader) == [Record(b"partial\n", 13), Record(b"next\n", 18)]


def test_unterminated_line_is_emitted_when_the_file_is_finished(log: LogFile) -> None:
    log.append(b"a\ntail")
    reader = TextReader(log.fd, 0)
    assert read_all(reader) == [Record(b"a\n", 2)]
    assert reader.finish() == [Record(b"tail", 6)]
    assert reader.held_bytes == 0


def test_long_line_is_truncated_and_counted_without_holding_it(log: LogFile) -> None:
    log.append(b"x" * 100 + b"\nok\n")
    reader = TextReader(log.fd, 0, chunk_bytes=16, max_message_bytes=10)
    records = read_all(reader)
    assert records == [Record(b"x" * 9 + b"\n", 101), Record(b"ok\n", 104)]
    assert reader.stats.truncated == 1 and reader.stats.truncated_bytes == 91


def test_a_backlog_reuses_a_read_buffer_only_once_nothing_points_into_it(log: LogFile) -> None:
    lines = [b"line %02d\n" % i for i in range(40)]  # 8 bytes each: two lines per 16-byte chunk
    log.append(b"".join(lines))
    reader = TextReader(log.fd, 0, chunk_bytes=16, max_message_bytes=10)
    first = reader.read()
    assert isinstance(first, Lines) and isinstance(first.buffer, memoryview)
    first_buffer = id(first.buffer.obj)  # an id: a reference would keep it from being used again
    in_flight = memoryview(first.buffer)  # as the producer's tally holds it until every line is reported
    del first
    second = reader.read()  # read while the first batch is in flight: a buffer of its own
    assert isinstance(second, Lines) and isinstance(second.buffer, memoryview)
    assert id(second.buffer.obj) != first_buffer
    in_flight.release()  # the first batch's reports are in
    third = reader.read()
    assert isinstance(third, Lines) and isinstance(third.buffer, memoryview)
    assert id(third.buffer.obj) == first_buffer  # used again, not a fresh one
    assert list(second) == [Record(lines[i], 8 * (i + 1)) for i in (2, 3)]  # untouched by the third read
    assert list(third) == [Record(lines[i], 8 * (i + 1)) for i in (4, 5)]


def test_long_line_within_one_chunk_is_truncated(log: LogFile) -> None:
    log.append(b"y" * 30 + b"\n")
    reader = TextReader(log.fd, 0, max_message_bytes=10, keep_newline=False)
    assert read_all(reader) == [Record(b"y" * 10, 31)]
    assert reader.stats.truncated_bytes == 20


def test_multiline_records_start_at_regex_match(log: LogFile) -> None:
    log.append(b"orphan\nERROR boom\n  at a\n  at b\nINFO fine\n")
    reader = TextReader(log.fd, 0, start_regex=r"^(ERROR|INFO) ")
    records = read_all(reader)
    assert [r.value for r in records] == [b"orphan\n", b"ERROR boom\n  at a\n  at b\n", b"INFO fine\n"]
    assert [r.next_offset for r in records] == [7, 32, 42]


def test_multiline_last_record_waits_while_a_line_is_incomplete(log: LogFile) -> None:
    log.append(b"START 1\n cont\nSTA")
    reader = TextReader(log.fd, 0, start_regex="^START")
    assert read_all(reader) == []
    log.append(b"RT 2\n")
    assert [r.value for r in read_all(reader)] == [b"START 1\n cont\n", b"START 2\n"]


def test_multiline_continuation_over_the_limit_is_dropped(log: LogFile) -> None:
    log.append(b"S 1\n" + b"c" * 20 + b"\nshort\n")
    reader = TextReader(log.fd, 0, start_regex="^S ", max_message_bytes=16)
    assert [r.value for r in read_all(reader)] == [b"S 1\nshort\n"]
    assert reader.stats.truncated == 1


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    chunk=st.integers(min_value=1, max_value=64),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=4),
)
def test_text_round_trip_whatever_the_chunks_and_write_boundaries(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], chunk: int, cuts: list[int]
) -> None:
    data = b"".join(line + b"\n" for line in lines)
    log = LogFile(tmp_path_factory.mktemp("t") / "x.log")
    reader = TextReader(log.fd, 0, chunk_bytes=chunk)
    got: list[Record] = []
    written = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        log.append(data[written:cut])
        written = max(written, cut)
        got += read_all(reader)
    os.close(log.fd)
    assert [r.value for r in got] == [line + b"\n" for line in lines]
    assert got == [] or got[-1].next_offset == len(data)


@settings(max_examples=80, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=40),
    chunk=st.sampled_from([7, 64, 1 << 20]),
    keep=st.booleans(),
    limit=st.integers(min_value=2, max_value=40),
)
def test_every_record_and_offset_whatever_the_chunk_newline_option_and_limit(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], chunk: int, keep: bool, limit: int
) -> None:
    """Whole chunks split in bulk and line by line (a line over the limit, a \r) give the same records."""
    log = LogFile(tmp_path_factory.mktemp("t") / "x.log")
    log.append(b"".join(line + b"\n" for line in lines))
    reader = TextReader(log.fd, 0, chunk_bytes=chunk, keep_newline=keep, max_message_bytes=limit)
    got = read_all(reader)
    os.close(log.fd)
    room = limit - 1 if keep else limit
    ends = list(itertools.accumulate(len(line) + 1 for line in lines))
    assert got == [Record(line[:room] + (b"\n" if keep else b""), end) for line, end in zip(lines, ends, strict=True)]
    assert reader.stats.truncated == sum(1 for line in lines if len(line) > room)


# --- thrift ------------------------------------------------------------------------------------------


messages = st.builds(
    LogMessage,
    message=st.binary(max_size=200),
    key=st.none() | st.binary(max_size=20),
    timestamp_ns=st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
    checksum=st.none() | st.integers(min_value=0, max_value=2**32 - 1),
)


@given(messages)
def test_thrift_codec_round_trip(msg: LogMessage) -> None:
    assert decode(encode(msg)) == msg


def test_thrift_encoding_is_the_binary_protocol_bytes() -> None:
    body = encode(LogMessage(b"hi", key=b"k", timestamp_ns=5, checksum=crc32(b"hi")))
    expected = (
        b"\x0b\x00\x01\x00\x00\x00\x01k"
        + b"\x0b\x00\x02\x00\x00\x00\x02hi"
        + b"\x0a\x00\x03"
        + struct.pack(">q", 5)
        + b"\x0a\x00\x04"
        + struct.pack(">q", 0xD8932AAC)
        + b"\x00"
    )
    assert body == expected
    assert frame(LogMessage(b"hi"))[:4] == struct.pack(">I", len(encode(LogMessage(b"hi"))))


def test_unknown_fields_are_skipped_and_audit_headers_kept() -> None:
    audit = b"\x0b\x00\x01\x00\x00\x00\x04host\x08\x00\x03\x00\x00\x00\x07\x00"
    extra = b"\x0f\x00\x09\x08\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x02"  # list<i32> [1, 2] as field 9
    body = b"\x0b\x00\x02\x00\x00\x00\x01m" + extra + b"\x0c\x00\x05" + audit + b"\x00"
    assert decode(body) == LogMessage(b"m", audit_headers=audit)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"\x0a\x00\x03" + b"\x00" * 8 + b"\x00", "required field 2"),
        (b"\x0b\x00\x02\x00\x00\x00\x09ab\x00", "past the end"),
        (b"\x0b\x00\x02\x00\x00\x00\x01m\x00junk", "follow the struct"),
        (b"\x07\x00\x02\x00", "unknown thrift type"),
    ],
)
def test_bad_frames_name_the_problem(body: bytes, problem: str) -> None:
    with pytest.raises(ThriftDecodeError, match=problem):
        decode(body)


def test_thrift_reader_drops_oversized_values_and_keeps_going(log: LogFile) -> None:
    log.append(frame(LogMessage(b"a" * 50)) + frame(LogMessage(b"ok", key=b"k", timestamp_ns=7)))
    reader = ThriftReader(log.fd, 0, max_message_bytes=10)
    records = read_all(reader)
    size = log.path.stat().st_size
    assert records == [Record(b"ok", size, b"k", 7)]
    assert reader.stats.dropped == 1 and reader.position == size


def test_thrift_reader_stops_at_last_good_offset_on_a_corrupt_frame(log: LogFile) -> None:
    good = frame(LogMessage(b"good"))
    log.append(good + struct.pack(">I", 1_000_000_000) + b"garbage")
    reader = ThriftReader(log.fd, 0, max_message_bytes=100)
    assert read_all(reader) == [Record(b"good", len(good))]
    assert reader.error is not None and f"offset {len(good)}" in reader.error
    assert reader.position == len(good)


@settings(max_examples=60, deadline=None)
@given(
    msgs=st.lists(messages, min_size=1, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=6),
    chunk=st.integers(min_value=1, max_value=300),
)
def test_torn_frames_stop_at_the_last_good_offset_and_resume(
    tmp_path_factory: pytest.TempPathFactory, msgs: list[LogMessage], cuts: list[int], chunk: int
) -> None:
    frames = [frame(m) for m in msgs]
    data = b"".join(frames)
    ends = [sum(len(f) for f in frames[: i + 1]) for i in range(len(frames))]
    log = LogFile(tmp_path_factory.mktemp("t") / "x.thrift")
    reader = ThriftReader(log.fd, 0, chunk_bytes=chunk)
    got: list[Record] = []
    written = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        log.append(data[max(written, 0) : max(cut, written)])
        written = max(written, cut)
        got += read_all(reader)
        assert reader.error is None
        assert reader.position == max([0, *(e for e in ends if e <= written)])  # the last whole frame's end
    os.close(log.fd)
    assert [(r.value, r.key, r.timestamp_ns, r.next_offset) for r in got] == [
        (m.message, m.key, m.timestamp_ns, e) for m, e in zip(msgs, ends, strict=True)
    ]
