from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memq import FormatError
from memq._format import (
    HEADER_LENGTH,
    Compression,
    Notification,
    Record,
    build_object,
    decode_message,
    encode_empty_message,
    encode_message,
    encode_object_index,
    encode_records,
    encoded_record_size,
    iter_object_records,
    parse_message_header,
    parse_object_index,
    seal_message,
)
from tests.unit.memq.vectors import vector

ADDRESS = bytes([10, 1, 2, 3])


def _message(records: list[Record], compression: Compression = Compression.ZSTD, request_id: int = 7) -> bytes:
    return encode_message(
        records, compression=compression, producer_epoch=1_700_000_000_000, request_id=request_id, address=ADDRESS
    )


# -- the reference's vectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "messages", "records", "compression"),
    [("batch-uncompressed.b64", 2, 4, Compression.NONE), ("batch-gzip.b64", 3, 6, Compression.GZIP)],
)
def test_reference_vectors_decode(name: str, messages: int, records: int, compression: Compression) -> None:
    buf = vector(name)
    index = parse_object_index(buf, len(buf))
    assert len(index.entries) == messages
    decoded = list(iter_object_records(buf))
    assert [index for _, index, _, _ in decoded] == list(range(records))
    assert sorted({message for message, _, _, _ in decoded}) == list(range(messages))
    for _, _, header, record in decoded:
        assert header.version == 100
        assert header.header_length == HEADER_LENGTH
        assert header.compression is compression
        assert len(header.address) == 4
        assert record.value == b"test1231231"
        assert record.key is None
        assert record.headers == (("test", b"value"),)
        assert record.message_id is not None and len(record.message_id) == 8
        assert 1612137600000 <= record.timestamp_ms < 1612828800000  # February 2021, first week
    assert decoded[0][3].timestamp_ms == 1612391939395 or compression is Compression.GZIP


def test_uncompressed_vector_reencodes_to_the_same_bytes() -> None:
    buf = vector("batch-uncompressed.b64")
    index = parse_object_index(buf, len(buf))
    rebuilt = []
    for entry in index.entries:
        header, records = decode_message(buf, entry.offset)
        again = encode_message(
            records,
            compression=header.compression,
            producer_epoch=header.producer_epoch,
            request_id=header.request_id,
            address=header.address,
        )
        assert again == buf[entry.offset : entry.offset + entry.size]
        rebuilt.append(again)
    assert build_object(rebuilt) == buf


def test_header_fields_and_crc_of_reference_message() -> None:
    buf = vector("batch-gzip.b64")
    entry = parse_object_index(buf).entries[1]
    header = parse_message_header(buf, entry.offset, verify_crc=True)
    assert header.size == entry.size
    assert header.record_count == 2
    assert header.crc == zlib.crc32(buf[header.body_offset : header.body_offset + header.body_length])


# -- forms the reference reader rejects are never written ----------------------------------------------------


def test_message_without_records_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one record"):
        _message([])


def test_message_ids_that_grow_within_a_message_are_refused() -> None:
    records = [Record(b"a", message_id=b"12"), Record(b"b"), Record(b"c", message_id=b"123")]
    with pytest.raises(ValueError, match="record 2 has a 3-byte message id"):
        _message(records)
    _message([Record(b"a"), Record(b"b", message_id=b"123"), Record(b"c", message_id=b"12")])


@pytest.mark.parametrize(
    "record",
    [
        Record(b"v", message_id=b"x" * 256),
        Record(b"v", headers=(("h", b"x" * 40_000),)),
        Record(b"v", headers=tuple((f"h{i}", b"x" * 2000) for i in range(17))),
    ],
)
def test_records_beyond_the_reference_limits_are_refused(record: Record) -> None:
    with pytest.raises(ValueError):
        _message([record])


def test_object_refuses_empty_messages_and_garbage() -> None:
    with pytest.raises(ValueError, match="at least one message"):
        encode_object_index([])
    empty_body = zlib.compress(b"")
    header = struct.pack(">hhhB4sqqIBii", 40, 100, 21, 4, ADDRESS, 1, 2, zlib.crc32(empty_body), 0, 0, len(empty_body))
    with pytest.raises(ValueError, match="holds no records"):
        encode_object_index([_message([Record(b"x")]), header + empty_body])
    with pytest.raises(ValueError, match="not a producer message"):
        encode_object_index([b"\x00" * 50])
    with pytest.raises(ValueError, match="after its body"):
        encode_object_index([_message([Record(b"x")]) + b"!"])


def test_encoded_record_size_is_the_uncompressed_body_size() -> None:
    records = [Record(b"value", key=b"k", headers=(("name", b"v"),), timestamp_ms=5, message_id=b"id")] * 3
    message = _message(records, Compression.NONE)
    assert len(message) - HEADER_LENGTH == sum(encoded_record_size(record) for record in records)


# -- round trips ---------------------------------------------------------------------------------------------

_names = st.text(max_size=20)
_records = st.builds(
    Record,
    value=st.binary(max_size=300),
    key=st.none() | st.binary(max_size=40),
    headers=st.lists(st.tuples(_names, st.binary(max_size=40)), max_size=4).map(tuple),
    timestamp_ms=st.integers(-(2**63), 2**63 - 1),
    message_id=st.none() | st.binary(max_size=16),
)


def _storable(records: list[Record]) -> list[Record]:
    """Records with ids cut to the first id's length, the reference reader's constraint."""
    first = next((len(r.message_id) for r in records if r.message_id), 0)
    out = []
    for record in records:
        message_id = (record.message_id or b"")[:first] or None
        out.append(Record(record.value, record.key, record.headers, record.timestamp_ms, message_id))
    return out


def _as_read(record: Record) -> Record:
    """What a reader sees: an empty key or id reads back as none."""
    return Record(record.value, record.key or None, record.headers, record.timestamp_ms, record.message_id or None)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    records=st.lists(_records.map(lambda r: Record(r.value, r.key, r.headers, r.timestamp_ms)), min_size=1, max_size=8),
    columns_headers=st.booleans(),
)
def test_columns_encode_as_the_records_do(records: list[Record], columns_headers: bool) -> None:
    """The producer's column encoding (no message ids) writes the same bytes as the record encoding."""
    values, keys, stamps = [r.value for r in records], [r.key for r in records], [r.timestamp_ms for r in records]
    headers = [r.headers for r in records] if columns_headers or any(r.headers for r in records) else None
    body = encode_records(values, keys, stamps, headers)
    kwargs: Any = {"compression": Compression.NONE, "producer_epoch": 1, "request_id": 2, "address": ADDRESS}
    assert seal_message(body, len(records), **kwargs) == encode_message(records, **kwargs)
    _header, decoded = decode_message(seal_message(body, len(records), **{**kwargs, "compression": Compression.ZSTD}))
    assert decoded == [_as_read(r) for r in records]


def test_columns_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one of each per record"):
        encode_records([b"a", b"b"], [None], [1, 2])
    with pytest.raises(ValueError, match="at least one record"):
        seal_message(b"", 0, compression=Compression.NONE, producer_epoch=1, request_id=1, address=ADDRESS)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.lists(st.lists(_records, min_size=1, max_size=6).map(_storable), min_size=1, max_size=4),
    compression=st.sampled_from(list(Compression)),
)
def test_objects_round_trip(messages: list[list[Record]], compression: Compression) -> None:
    encoded = [_message(records, compression, request_id=i) for i, records in enumerate(messages)]
    obj = build_object(encoded)
    index = parse_object_index(obj, len(obj))
    assert [entry.size for entry in index.entries] == [len(m) for m in encoded]
    decoded = list(iter_object_records(obj))
    expected = [(m, _as_read(r)) for m, records in enumerate(messages) for r in records]
    assert [(m, r) for m, _, _, r in decoded] == expected
    assert [i for _, i, _, _ in decoded] == list(range(len(expected)))
    assert all(h.request_id == m and h.producer_epoch == 1_700_000_000_000 for m, _, h, _ in decoded)


@given(
    topic=st.text(min_size=1, max_size=30),
    header_size=st.integers(0, 2**31),
    messages_size=st.integers(0, 2**40),
    count=st.integers(0, 1000),
    attempts=st.integers(0, 5),
    s3=st.booleans(),
)
def test_notifications_round_trip(
    topic: str, header_size: int, messages_size: int, count: int, attempts: int, s3: bool
) -> None:
    where: dict[str, Any] = {"bucket": "b", "key": "0f/t/1_2_3_0_host"} if s3 else {"path": "/data/t/x"}
    notification = Notification(
        topic=topic,
        header_size=header_size,
        messages_size=messages_size,
        message_count=count,
        attempts=attempts,
        **where,
    )
    assert Notification.from_json(notification.to_json()) == notification


def test_notification_json_matches_the_reference_shapes() -> None:
    s3 = Notification(topic="t", header_size=68, messages_size=303914, message_count=5, bucket="b", key="89/t/k")
    assert s3.to_json() == (
        '{"bucket":"b","key":"89/t/k","objectSize":303914,"topic":"t","headerSize":68,'
        '"numBatchMessages":5,"numAttempts":0}'
    )
    fs = Notification.from_json(
        '{"path":"/d/t/h/1_2_0","objectSize":100,"topic":"t","headerSize":20,"numBatchMessages":1}'
    )
    assert (fs.messages_size, fs.object_size, fs.location) == (80, 100, "file:///d/t/h/1_2_0")
    assert Notification.from_json(fs.to_json()) == fs


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"topic":"t"}',
        '{"bucket":"b","key":"k","objectSize":-1,"topic":"t","headerSize":8,"numBatchMessages":1}',
        '{"path":"/p","objectSize":4,"topic":"t","headerSize":8,"numBatchMessages":1}',
    ],
)
def test_bad_notifications_raise_format_error(text: str) -> None:
    with pytest.raises(FormatError):
        Notification.from_json(text)


# -- corrupted and truncated input ---------------------------------------------------------------------------

_SAMPLE = [
    Record(b"first value", key=b"k1", headers=(("a", b"1"),), timestamp_ms=1, message_id=b"id-0001"),
    Record(b"", key=None, headers=(), timestamp_ms=2, message_id=b"id-0002"),
    Record(b"third" * 20, key=b"k3", headers=(("b", b""), ("c", b"3")), timestamp_ms=3),
]
_OBJECTS = {
    compression: build_object([_message(_SAMPLE, compression, 1), _message(_SAMPLE[:2], compression, 2)])
    for compression in Compression
}
_EXPECTED = [*_SAMPLE, *_SAMPLE[:2]]


def _records_or_error(buf: bytes) -> list[Record] | FormatError:
    try:
        return [record for _, _, _, record in iter_object_records(buf)]
    except FormatError as exc:
        return exc


@settings(max_examples=400)
@given(compression=st.sampled_from(list(Compression)), position=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_a_corrupted_byte_is_reported_or_harmless(compression: Compression, position: int, flip: int) -> None:
    obj = bytearray(_OBJECTS[compression])
    position %= len(obj)
    obj[position] ^= flip
    outcome = _records_or_error(bytes(obj))
    if isinstance(outcome, FormatError):
        assert 0 <= outcome.offset <= len(obj)
        assert f"offset {outcome.offset}" in str(outcome)
    else:
        # Only header fields no reader relies on (address, epoch, request id) may change without an error.
        assert outcome == _EXPECTED


@settings(max_examples=200)
@given(compression=st.sampled_from(list(Compression)), cut=st.integers(0, 10_000))
def test_truncation_is_always_reported(compression: Compression, cut: int) -> None:
    obj = _OBJECTS[compression]
    cut %= len(obj)
    outcome = _records_or_error(obj[:cut])
    assert isinstance(outcome, FormatError)
    assert 0 <= outcome.offset <= len(obj)


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_random_bytes_raise_format_error(data: bytes) -> None:
    assert isinstance(_records_or_error(data), FormatError)
    with pytest.raises(FormatError):
        decode_message(data)


def test_body_errors_name_the_exact_offset_when_uncompressed() -> None:
    message = bytearray(_message([Record(b"abc", key=b"k")], Compression.NONE))
    body = HEADER_LENGTH
    struct.pack_into(">h", message, body, 200)  # internal fields length past the body
    struct.pack_into(">I", message, 27, zlib.crc32(message[body:]))
    with pytest.raises(FormatError) as caught:
        decode_message(bytes(message))
    assert caught.value.offset == body
    assert "record 0" in str(caught.value)


def test_crc_mismatch_and_unknown_compression() -> None:
    message = bytearray(_message([Record(b"abc")], Compression.GZIP))
    message[-1] ^= 1
    with pytest.raises(FormatError, match="CRC32 mismatch"):
        decode_message(bytes(message))
    parse_message_header(bytes(message))  # lengths still fit: only the CRC check sees it
    message = bytearray(_message([Record(b"abc")], Compression.GZIP))
    message[31] = 9
    with pytest.raises(FormatError, match="unknown compression id 9") as caught:
        parse_message_header(bytes(message))
    assert caught.value.offset == 31


def test_decompression_is_capped() -> None:
    message = _message([Record(b"\x00" * 100_000)], Compression.ZSTD)
    with pytest.raises(FormatError, match="more than 1000 bytes"):
        decode_message(message, max_body_bytes=1000)
    assert decode_message(message)[1][0].value == b"\x00" * 100_000


def _careful(body: bytes, count: int) -> list[tuple[Any, ...]] | None:
    from memq._format import _BodyReader, _read_record

    reader = _BodyReader(body, 0, exact=True)
    try:
        records = [_read_record(reader) for _ in range(count)]
    except FormatError:
        return None
    fields = [(r.value, r.key, r.headers, r.timestamp_ms, r.message_id) for r in records]
    return fields if not reader.remaining else None


@settings(max_examples=300)
@given(
    records=st.lists(_records, min_size=1, max_size=4).map(_storable),
    position=st.integers(0, 10_000),
    flip=st.integers(0, 255),
    cut=st.integers(0, 8),
)
def test_fast_and_careful_record_parsers_agree(records: list[Record], position: int, flip: int, cut: int) -> None:
    from memq._format import _parse_records_fast

    body = bytearray(_message(records, Compression.NONE)[HEADER_LENGTH:])
    body[position % len(body)] ^= flip
    data = bytes(body[: len(body) - cut])
    columns = _parse_records_fast(data, len(records))
    assert (None if columns is None else list(zip(*columns, strict=True))) == _careful(data, len(records))


def test_empty_message_is_a_valid_header_of_no_records_that_no_object_takes() -> None:
    message = encode_empty_message(producer_epoch=5, request_id=9, address=ADDRESS)
    header = parse_message_header(message, verify_crc=True)
    assert (len(message), header.size, header.record_count, header.body_length) == (HEADER_LENGTH, HEADER_LENGTH, 0, 0)
    assert (header.producer_epoch, header.request_id, header.address) == (5, 9, ADDRESS)
    assert header.compression is Compression.NONE
    with pytest.raises(ValueError, match="no records"):
        encode_object_index([message])
    with pytest.raises(ValueError, match="4 bytes"):
        encode_empty_message(producer_epoch=5, request_id=9, address=b"\0" * 16)
