"""MemQ byte formats: producer message, record, object index and notification, as the reference writes them.

All integers are big-endian. A producer message is a 40-byte header followed by one compressed body that holds
its records; the header's CRC32 covers the compressed body. An object is an index followed by the producer
messages exactly as the producers sent them. Decoding parses once, checks every length against the buffer, and
raises `FormatError` naming the byte offset where the bytes stop making sense.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from memq._accel import encode_plain
from memq._compression import Compression, compress, decompress
from memq._errors import FormatError

__all__ = [
    "HEADER_LENGTH",
    "MESSAGE_VERSION",
    "Compression",
    "IndexEntry",
    "MessageHeader",
    "Notification",
    "ObjectIndex",
    "Record",
    "build_object",
    "decode_message",
    "decode_message_columns",
    "decode_message_fields",
    "encode_empty_message",
    "encode_message",
    "encode_object_index",
    "encode_records",
    "encoded_record_size",
    "iter_object_records",
    "parse_message_header",
    "parse_object_index",
    "seal_message",
]

MESSAGE_VERSION = 100
HEADER_LENGTH = 40  # with a 4-byte IPv4 producer address, the only form the reference writes
_EXTRA_LENGTH = 21  # address length byte + IPv4 + producer epoch + request id
_MIN_HEADER = 19  # the header without its extra block

_PREFIX = struct.Struct(">hhh")  # headerLength, version, additionalHeaderLength
_EXTRA_TAIL = struct.Struct(">qq")  # producer epoch, request id
_CHECKS = struct.Struct(">IBii")  # crc, compression, record count, body length
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_RECORD_HEAD = struct.Struct(">hqB")  # internalFieldsLength, write timestamp, message id length
_INDEX_HEAD = struct.Struct(">ii")  # index bytes after this field, entry count
_INDEX_ENTRY = struct.Struct(">iii")  # id, offset from object start, size

_MAX_SHORT = 0x7FFF
_MAX_INT = 0x7FFFFFFF
_RECORD_FIXED = 2 + 8 + 1 + 2 + 4 + 4  # every length field and the timestamp of one record
_MIN_RECORD = 2 + 4 + 4  # internalFieldsLength 0, key length, value length


@dataclass(frozen=True, slots=True)
class Record:
    """One record ("log message"). An empty key and a missing key are the same on the wire: both read as None."""

    value: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int = 0
    message_id: bytes | None = None


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """The 40-byte header of a producer message, as parsed; `offset` is where the message starts in its buffer."""

    offset: int
    header_length: int
    version: int
    address: bytes
    producer_epoch: int
    request_id: int
    crc: int
    compression: Compression
    record_count: int
    body_length: int

    @property
    def body_offset(self) -> int:
        return self.offset + self.header_length

    @property
    def size(self) -> int:
        """Bytes of the whole message: header and body."""
        return self.header_length + self.body_length


@dataclass(frozen=True, slots=True)
class IndexEntry:
    id: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class ObjectIndex:
    """The index at the start of an object: where each producer message lies, from the object's start."""

    entries: tuple[IndexEntry, ...]

    @property
    def header_size(self) -> int:
        """Bytes of the index, including its own length field (the notification's `headerSize`)."""
        return _INDEX_HEAD.size + _INDEX_ENTRY.size * len(self.entries)

    @property
    def messages_size(self) -> int:
        return sum(entry.size for entry in self.entries)

    @property
    def object_size(self) -> int:
        return self.header_size + self.messages_size


@dataclass(frozen=True, slots=True)
class Notification:
    """The announcement of one stored object, in the reference's JSON forms.

    S3 form: `bucket` and `key` name the object and `objectSize` excludes the index. File-system form: `path`
    names it and `objectSize` includes the index. `messages_size` always excludes the index.
    """

    topic: str
    header_size: int
    messages_size: int
    message_count: int
    bucket: str | None = None
    key: str | None = None
    path: str | None = None
    attempts: int = 0

    def __post_init__(self) -> None:
        if (self.path is None) == (self.key is None) or (self.key is None) != (self.bucket is None):
            raise ValueError("a notification names its object either by bucket and key or by path")

    @property
    def object_size(self) -> int:
        return self.header_size + self.messages_size

    @property
    def location(self) -> str:
        """The object's address as a URL: s3://bucket/key or file:///path."""
        return f"s3://{self.bucket}/{self.key}" if self.key is not None else f"file://{self.path}"

    def to_json(self) -> str:
        fields: dict[str, Any]
        if self.key is not None:
            fields = {"bucket": self.bucket, "key": self.key, "objectSize": self.messages_size, "topic": self.topic}
            fields |= {"headerSize": self.header_size, "numBatchMessages": self.message_count}
            fields["numAttempts"] = self.attempts
        else:
            fields = {"path": self.path, "objectSize": self.object_size, "topic": self.topic}
            fields |= {"headerSize": self.header_size, "numBatchMessages": self.message_count}
            fields["numAttempts"] = self.attempts
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Notification:
        try:
            fields = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FormatError(f"notification is not JSON: {exc}", 0) from exc
        if not isinstance(fields, dict):
            raise FormatError("notification is not a JSON object", 0)
        try:
            return cls._from_fields(fields)
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"notification {fields!r} is invalid: {exc!r}", 0) from exc

    @classmethod
    def _from_fields(cls, fields: dict[str, Any]) -> Notification:
        topic, header_size = _json_str(fields, "topic"), _json_int(fields, "headerSize")
        object_size, message_count = _json_int(fields, "objectSize"), _json_int(fields, "numBatchMessages")
        if "key" in fields:
            return cls(
                topic=topic,
                header_size=header_size,
                messages_size=object_size,
                message_count=message_count,
                bucket=_json_str(fields, "bucket"),
                key=_json_str(fields, "key"),
                attempts=_json_int(fields, "numAttempts") if "numAttempts" in fields else 0,
            )
        if object_size < header_size:
            raise ValueError(f"objectSize {object_size} is smaller than headerSize {header_size}")
        return cls(
            topic=topic,
            header_size=header_size,
            messages_size=object_size - header_size,
            message_count=message_count,
            path=_json_str(fields, "path"),
            attempts=_json_int(fields, "numAttempts") if "numAttempts" in fields else 0,
        )


def _json_int(fields: dict[str, Any], name: str) -> int:
    value = fields[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
    return value


def _json_str(fields: dict[str, Any], name: str) -> str:
    value = fields[name]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, not {value!r}")
    return value


# -- records -------------------------------------------------------------------------------------------------


def _encode_headers(headers: Sequence[tuple[str, bytes]]) -> bytes:
    out = bytearray()
    for name, value in headers:
        raw = name.encode()
        if len(raw) > _MAX_SHORT or len(value) > _MAX_SHORT:
            raise ValueError(f"header {name!r} is longer than {_MAX_SHORT} bytes")
        out += _I16.pack(len(raw)) + raw + _I16.pack(len(value)) + value
    return bytes(out)


def encoded_record_size(record: Record) -> int:
    """Bytes the record takes in a message body before compression."""
    headers = sum(4 + len(name.encode()) + len(value) for name, value in record.headers)
    return _RECORD_FIXED + len(record.message_id or b"") + headers + len(record.key or b"") + len(record.value)


_PLAIN_HEAD = struct.Struct(">hqBhi")  # internalFieldsLength 11, timestamp, no id, no headers, key length


def encode_records(
    values: Sequence[bytes],
    keys: Sequence[bytes | None],
    timestamps: Sequence[int],
    headers: Sequence[tuple[tuple[str, bytes], ...]] | None = None,
) -> bytes:
    """The uncompressed body of records given column by column (no message ids).

    Records without headers, the common case, are packed in one pass (in C when built: ``memq._accel``).
    """
    if headers is None or not any(headers):
        body = encode_plain(values, keys, timestamps)
        if body is not None:
            return body
        if not len(values) == len(keys) == len(timestamps):
            raise ValueError(
                f"{len(values)} values, {len(keys)} keys and {len(timestamps)} timestamps: one of each per record"
            )
        headers = None  # something else than bytes and ints: the careful path below packs or refuses it
    columns = zip(values, keys, timestamps, headers or repeat((), len(values)), strict=True)
    return _encode_records([Record(v, k or None, h, t) for v, k, t, h in columns])


def _encode_records(records: Sequence[Record]) -> bytes:
    """The uncompressed body: every record's fields, length-prefixed, in one join."""
    parts: list[bytes] = []
    append = parts.append
    plain, head, short, long_ = _PLAIN_HEAD.pack, _RECORD_HEAD.pack, _I16.pack, _I32.pack
    for record in records:
        key = record.key or b""
        value = record.value
        if len(key) > _MAX_INT or len(value) > _MAX_INT:
            raise ValueError("key and value are limited to 2 GiB each")
        message_id = record.message_id
        if not message_id and not record.headers:  # the common case: one pack for the fixed fields
            append(plain(11, record.timestamp_ms, 0, 0, len(key)))
        else:
            message_id = message_id or b""
            if len(message_id) > 0xFF:
                raise ValueError(f"message id of {len(message_id)} bytes; at most 255")
            headers = _encode_headers(record.headers) if record.headers else b""
            internal = 11 + len(message_id) + len(headers)
            if internal > _MAX_SHORT:
                raise ValueError(f"message id and headers take {internal} bytes; at most {_MAX_SHORT}")
            append(head(internal, record.timestamp_ms, len(message_id)))
            append(message_id)
            append(short(len(headers)))
            append(headers)
            append(long_(len(key)))
        append(key)
        append(long_(len(value)))
        append(value)
    return b"".join(parts)


class _BodyReader:
    """Reads the fields of a decompressed body; every failure names the offset in `base` terms."""

    __slots__ = ("_base", "_body", "_exact", "pos")

    def __init__(self, body: bytes, base: int, exact: bool) -> None:
        self._body = body
        self._base = base  # offset of the body in the caller's buffer
        self._exact = exact  # False when the body was decompressed: offsets inside it are not buffer offsets
        self.pos = 0

    def fail(self, message: str) -> FormatError:
        if self._exact:
            return FormatError(message, self._base + self.pos)
        return FormatError(f"{message} at byte {self.pos} of the decompressed body", self._base)

    def take(self, size: int, what: str) -> bytes:
        end = self.pos + size
        if end > len(self._body):
            raise self.fail(f"{what} of {size} bytes runs past the end of the body ({len(self._body)} bytes)")
        data = self._body[self.pos : end]
        self.pos = end
        return data

    def unpack(self, layout: struct.Struct, what: str) -> tuple[Any, ...]:
        if self.pos + layout.size > len(self._body):
            raise self.fail(f"{what} is truncated")
        values = layout.unpack_from(self._body, self.pos)
        self.pos += layout.size
        return values

    def length(self, layout: struct.Struct, what: str) -> int:
        (value,) = self.unpack(layout, what)
        if value < 0:
            self.pos -= layout.size
            raise self.fail(f"{what} is negative ({value})")
        return int(value)

    @property
    def remaining(self) -> int:
        return len(self._body) - self.pos


def _read_headers(reader: _BodyReader, size: int) -> tuple[tuple[str, bytes], ...]:
    end = reader.pos + size
    headers = []
    while reader.pos < end:
        name = reader.take(reader.length(_I16, "header name length"), "header name")
        value = reader.take(reader.length(_I16, "header value length"), "header value")
        headers.append((name.decode(errors="replace"), value))
    if reader.pos != end:
        raise reader.fail(f"headers overrun their declared length of {size} bytes")
    return tuple(headers)


def _read_record(reader: _BodyReader) -> Record:
    internal = reader.length(_I16, "internal fields length")
    timestamp_ms, message_id = 0, None
    headers: tuple[tuple[str, bytes], ...] = ()
    if internal > 0:
        end = reader.pos + internal
        if internal < 11 or internal > reader.remaining:
            reader.pos -= _I16.size
            raise reader.fail(f"internal fields length {internal} does not fit")
        timestamp_ms, id_length = reader.unpack(_I64, "timestamp")[0], reader.take(1, "message id length")[0]
        message_id = reader.take(id_length, "message id") if id_length else None
        headers = _read_headers(reader, reader.length(_I16, "headers length"))
        if reader.pos != end:
            raise reader.fail(f"internal fields take {internal - (end - reader.pos)} bytes, not {internal}")
    key = reader.take(reader.length(_I32, "key length"), "key") or None
    value = reader.take(reader.length(_I32, "value length"), "value")
    return Record(value=value, key=key, headers=headers, timestamp_ms=timestamp_ms, message_id=message_id)


_QB = struct.Struct(">qB")
_new_record = Record.__new__
_set = object.__setattr__

# A record's fields in Record's order (value, key, headers, timestamp_ms, message_id): cheaper than a Record.
RecordFields = tuple[bytes, bytes | None, tuple[tuple[str, bytes], ...], int, bytes | None]
# The same fields column by column: values, keys, headers, timestamps, message ids.
RecordColumns = tuple[
    list[bytes], list[bytes | None], list[tuple[tuple[str, bytes], ...]], list[int], list[bytes | None]
]


def _parse_records_fast(body: bytes, count: int) -> RecordColumns | None:
    """All `count` records of a well-formed body as columns, or None at the first doubt (then `_read_record`
    reports it). Columns rather than a tuple per record: one container fewer per record for the collector.

    Slices past the end come back short instead of failing, so `pos` is checked against the body's length
    after every record; every length read is checked for sign.
    """
    size = len(body)
    short, long_, head, plain = _I16.unpack_from, _I32.unpack_from, _QB.unpack_from, _PLAIN_HEAD.unpack_from
    values: list[bytes] = []
    keys: list[bytes | None] = []
    headers_column: list[tuple[tuple[str, bytes], ...]] = []
    stamps: list[int] = []
    ids: list[bytes | None] = []
    value, key, header, stamp, id_ = values.append, keys.append, headers_column.append, stamps.append, ids.append
    pos = 0
    try:
        for _ in range(count):
            # The common record (timestamp, no id, no headers): its fixed fields and key length in one unpack.
            if size - pos >= _PLAIN_HEAD.size:
                internal, timestamp_ms, id_length, headers_length, key_length = plain(body, pos)
                if internal == 11 and not id_length and not headers_length and key_length >= 0:
                    pos += _PLAIN_HEAD.size
                    key(body[pos : pos + key_length] if key_length else None)
                    pos += key_length
                    (value_length,) = long_(body, pos)
                    if value_length < 0:
                        return None
                    pos += 4 + value_length
                    if pos > size:
                        return None
                    value(body[pos - value_length : pos])
                    header(())
                    stamp(timestamp_ms)
                    id_(None)
                    continue
            (internal,) = short(body, pos)
            pos += 2
            timestamp_ms, message_id = 0, None
            headers: tuple[tuple[str, bytes], ...] | None = ()
            if internal:
                if internal < 11:
                    return None
                end = pos + internal
                timestamp_ms, id_length = head(body, pos)
                pos += 9
                if id_length:
                    message_id = body[pos : pos + id_length]
                    pos += id_length
                (headers_length,) = short(body, pos)
                pos += 2
                if headers_length:
                    if headers_length < 0:
                        return None
                    headers = _parse_headers_fast(body, pos, pos + headers_length)
                    if headers is None:
                        return None
                    pos += headers_length
                if pos != end:
                    return None
            (key_length,) = long_(body, pos)
            pos += 4
            if key_length < 0:
                return None
            key(body[pos : pos + key_length] if key_length else None)
            pos += key_length
            (value_length,) = long_(body, pos)
            pos += 4
            if value_length < 0:
                return None
            value(body[pos : pos + value_length])
            pos += value_length
            if pos > size:
                return None
            header(headers or ())
            stamp(timestamp_ms)
            id_(message_id)
    except struct.error:
        return None
    return (values, keys, headers_column, stamps, ids) if pos == size else None


def _as_record(fields: RecordFields) -> Record:
    record = _new_record(Record)  # what the frozen dataclass's __init__ does, without its per-field overhead
    _set(record, "value", fields[0])
    _set(record, "key", fields[1])
    _set(record, "headers", fields[2])
    _set(record, "timestamp_ms", fields[3])
    _set(record, "message_id", fields[4])
    return record


def _parse_headers_fast(body: bytes, pos: int, end: int) -> tuple[tuple[str, bytes], ...] | None:
    short = _I16.unpack_from
    headers = []
    while pos < end:
        (name_length,) = short(body, pos)
        name = body[pos + 2 : pos + 2 + name_length]
        pos += 2 + name_length
        (value_length,) = short(body, pos)
        if name_length < 0 or value_length < 0:
            return None
        headers.append((name.decode(errors="replace"), body[pos + 2 : pos + 2 + value_length]))
        pos += 2 + value_length
    return tuple(headers) if pos == end else None


# -- producer messages ---------------------------------------------------------------------------------------


def _check_message_ids(records: Sequence[Record]) -> None:
    # The reference reader XORs each id into the first one it saw in the message: a longer id overruns it.
    first = 0
    for index, record in enumerate(records):
        size = len(record.message_id or b"")
        if size and not first:
            first = size
        elif size > first:
            raise ValueError(
                f"record {index} has a {size}-byte message id, longer than the message's first id ({first} bytes);"
                " the reference reader rejects that: start a new message"
            )


def encode_message(
    records: Sequence[Record],
    *,
    compression: Compression,
    producer_epoch: int,
    request_id: int,
    address: bytes,
) -> bytes:
    """One producer message: the 40-byte header, then the records compressed as one stream.

    Raises ValueError for a form the reference reader rejects: no records, or a message id longer than the
    first id in the message.
    """
    _check_message_ids(records)
    return seal_message(
        _encode_records(records),
        len(records),
        compression=compression,
        producer_epoch=producer_epoch,
        request_id=request_id,
        address=address,
    )


def seal_message(
    body: bytes,
    record_count: int,
    *,
    compression: Compression,
    producer_epoch: int,
    request_id: int,
    address: bytes,
) -> bytes:
    """A producer message from an uncompressed body of ``record_count`` (at least one) records."""
    if record_count < 1:
        raise ValueError("a message needs at least one record")
    if len(address) != 4:
        raise ValueError(f"producer address must be 4 bytes (IPv4), not {len(address)}")
    payload = compress(Compression(compression), body)
    if len(payload) > _MAX_INT - HEADER_LENGTH:
        raise ValueError(f"compressed body of {len(payload)} bytes does not fit a message")
    header = _PREFIX.pack(HEADER_LENGTH, MESSAGE_VERSION, _EXTRA_LENGTH)
    header += bytes([4]) + address + _EXTRA_TAIL.pack(producer_epoch, request_id)
    header += _CHECKS.pack(zlib.crc32(payload), compression, record_count, len(payload))
    return header + payload


def encode_empty_message(*, producer_epoch: int, request_id: int, address: bytes) -> bytes:
    """A producer message of no records: the header alone, which brokers acknowledge without storing it.

    Never part of an object (the reference reader rejects a zero-record message there); our producer sends one
    from ``flush`` so that our broker seals the topic's open batch at once.
    """
    if len(address) != 4:
        raise ValueError(f"producer address must be 4 bytes (IPv4), not {len(address)}")
    header = _PREFIX.pack(HEADER_LENGTH, MESSAGE_VERSION, _EXTRA_LENGTH)
    header += bytes([4]) + address + _EXTRA_TAIL.pack(producer_epoch, request_id)
    return header + _CHECKS.pack(zlib.crc32(b""), Compression.NONE, 0, 0)


def parse_message_header(
    buf: bytes | memoryview, offset: int = 0, *, verify_crc: bool = False, with_body: bool = True
) -> MessageHeader:
    """Parse and check the header of the message at `offset`: its lengths must fit the buffer.

    With `verify_crc`, also checks the body's CRC32 (without decompressing it). Without `with_body`, `buf` may
    hold the header alone (e.g. the first bytes of a ranged read) and the body's length is not checked.
    """
    end = len(buf)
    if offset < 0 or offset + _MIN_HEADER > end:
        raise FormatError(
            f"message header is truncated: {max(end - offset, 0)} of at least {_MIN_HEADER} bytes", offset
        )
    header_length, version, extra = _PREFIX.unpack_from(buf, offset)
    address, epoch, request_id = b"", 0, 0
    pos = offset + _PREFIX.size
    if extra < 0:
        raise FormatError(f"extra header length is negative ({extra})", offset + 4)
    if extra > 0:
        if pos + 1 > end:
            raise FormatError("message header is truncated in its extra block", pos)
        address_length = buf[pos]
        if extra != 1 + address_length + _EXTRA_TAIL.size:
            raise FormatError(f"extra header length {extra} does not match a {address_length}-byte address", offset + 4)
        if pos + extra + _CHECKS.size > end:
            raise FormatError("message header is truncated", offset)
        address = bytes(buf[pos + 1 : pos + 1 + address_length])
        epoch, request_id = _EXTRA_TAIL.unpack_from(buf, pos + 1 + address_length)
        pos += extra
    if header_length != _MIN_HEADER + extra:
        raise FormatError(f"header length {header_length} does not match its layout ({_MIN_HEADER + extra})", offset)
    crc, compression_id, record_count, body_length = _CHECKS.unpack_from(buf, pos)
    try:
        compression = Compression(compression_id)
    except ValueError:
        raise FormatError(f"unknown compression id {compression_id}", pos + 4) from None
    if record_count < 0:
        raise FormatError(f"record count is negative ({record_count})", pos + 5)
    if body_length < 0:
        raise FormatError(f"body length is negative ({body_length})", pos + 9)
    body_offset = offset + header_length
    if with_body and body_offset + body_length > end:
        raise FormatError(
            f"body of {body_length} bytes runs past the end of the buffer ({end - body_offset} bytes left)", pos + 9
        )
    header = MessageHeader(
        offset=offset,
        header_length=header_length,
        version=version,
        address=address,
        producer_epoch=epoch,
        request_id=request_id,
        crc=crc,
        compression=compression,
        record_count=record_count,
        body_length=body_length,
    )
    if verify_crc and with_body:
        _verify_crc(buf, header)
    return header


def _verify_crc(buf: bytes | memoryview, header: MessageHeader) -> None:
    body = memoryview(buf)[header.body_offset : header.body_offset + header.body_length]
    actual = zlib.crc32(body)
    if actual != header.crc:
        raise FormatError(f"CRC32 mismatch: header says {header.crc:#010x}, body has {actual:#010x}", header.offset)


def decode_message(
    buf: bytes | memoryview, offset: int = 0, *, max_body_bytes: int = 256 << 20
) -> tuple[MessageHeader, list[Record]]:
    """Decode the message at `offset`: verify the CRC, decompress, and parse exactly `record_count` records.

    `max_body_bytes` caps the decompressed body so that a hostile message cannot exhaust memory.
    """
    header, fields = decode_message_fields(buf, offset, max_body_bytes=max_body_bytes)
    return header, [_as_record(one) for one in fields]


def decode_message_fields(
    buf: bytes | memoryview, offset: int = 0, *, max_body_bytes: int = 256 << 20
) -> tuple[MessageHeader, list[RecordFields]]:
    """`decode_message`, with each record as a plain tuple of its fields (for readers that make their own)."""
    header, columns = decode_message_columns(buf, offset, max_body_bytes=max_body_bytes)
    return header, list(zip(*columns, strict=True))


def decode_message_columns(
    buf: bytes | memoryview, offset: int = 0, *, max_body_bytes: int = 256 << 20
) -> tuple[MessageHeader, RecordColumns]:
    """`decode_message`, with the records' fields column by column: (values, keys, headers, timestamps, ids)."""
    header = parse_message_header(buf, offset, verify_crc=True)
    start = header.body_offset
    view = memoryview(buf)[start : start + header.body_length]
    # A compressed body is read where it lies; records are sliced from bytes, so only a plain body is copied.
    payload = bytes(view) if header.compression is Compression.NONE else view
    try:
        body = decompress(header.compression, payload, max_body_bytes)
    except ValueError as exc:
        raise FormatError(f"body does not decompress as {header.compression.name.lower()}: {exc}", start) from exc
    reader = _BodyReader(body, start, exact=header.compression is Compression.NONE)
    if header.record_count * _MIN_RECORD > len(body):
        raise reader.fail(f"{header.record_count} records cannot fit in {len(body)} bytes")
    fast = _parse_records_fast(body, header.record_count)
    if fast is not None:
        return header, fast
    columns: RecordColumns = ([], [], [], [], [])  # the careful parse: says exactly where and why it is malformed
    for index in range(header.record_count):
        try:
            record = _read_record(reader)
        except FormatError as exc:
            raise FormatError(f"record {index}: {exc.reason}", exc.offset) from None
        for column, field in zip(
            columns, (record.value, record.key, record.headers, record.timestamp_ms, record.message_id), strict=True
        ):
            column.append(field)  # type: ignore[attr-defined]
    if reader.remaining:
        raise reader.fail(f"{reader.remaining} bytes follow the last of {header.record_count} records")
    return header, columns


# -- objects -------------------------------------------------------------------------------------------------


def encode_object_index(messages: Sequence[bytes | memoryview]) -> bytes:
    """The index to put before `messages` in an object.

    Raises ValueError for a form the reference reader rejects: no messages, or a message that is not a valid
    producer message or holds no records (the broker acknowledges such a message without storing it).
    """
    if not messages:
        raise ValueError("an object needs at least one message")
    header_size = _INDEX_HEAD.size + _INDEX_ENTRY.size * len(messages)
    out = bytearray(_INDEX_HEAD.pack(header_size - 4, len(messages)))
    position = header_size
    for index, message in enumerate(messages):
        try:
            header = parse_message_header(message)
        except FormatError as exc:
            raise ValueError(f"message {index} is not a producer message: {exc}") from exc
        if header.size != len(message):
            raise ValueError(f"message {index} has {len(message) - header.size} bytes after its body")
        if header.record_count == 0:
            raise ValueError(f"message {index} holds no records")
        out += _INDEX_ENTRY.pack(index, position, len(message))
        position += len(message)
    if position > _MAX_INT:
        raise ValueError(f"object of {position} bytes exceeds the format's 2 GiB offsets")
    return bytes(out)


def build_object(messages: Sequence[bytes | memoryview]) -> bytes:
    """A whole object in memory: the index, then the messages verbatim."""
    return encode_object_index(messages) + b"".join(messages)


def parse_object_index(buf: bytes | memoryview, object_size: int | None = None) -> ObjectIndex:
    """Parse the index at the start of `buf` (at least `header_size` bytes) and check that it is consistent.

    With `object_size`, the entries must also cover the object exactly.
    """
    if len(buf) < _INDEX_HEAD.size:
        raise FormatError(f"object index is truncated: {len(buf)} of at least {_INDEX_HEAD.size} bytes", 0)
    length, count = _INDEX_HEAD.unpack_from(buf, 0)
    if count <= 0:
        raise FormatError(f"object index has {count} entries; at least 1 expected", 4)
    if length != 4 + _INDEX_ENTRY.size * count:
        raise FormatError(f"object index length {length} does not match {count} entries", 0)
    header_size = 4 + length
    if len(buf) < header_size:
        raise FormatError(f"object index is truncated: {len(buf)} of {header_size} bytes", len(buf))
    entries = []
    position = header_size
    for index in range(count):
        at = _INDEX_HEAD.size + _INDEX_ENTRY.size * index
        entry = IndexEntry(*_INDEX_ENTRY.unpack_from(buf, at))
        if entry.id != index or entry.offset != position or entry.size < _MIN_HEADER:
            raise FormatError(f"index entry {index} is {entry}; expected id {index} at offset {position}", at)
        entries.append(entry)
        position += entry.size
    if object_size is not None and position != object_size:
        raise FormatError(f"index covers {position} bytes but the object has {object_size}", 0)
    return ObjectIndex(tuple(entries))


def iter_object_records(buf: bytes | memoryview) -> Iterator[tuple[int, int, MessageHeader, Record]]:
    """Every record of a whole object in memory: (message index, record index in the object, header, record)."""
    index = parse_object_index(buf, len(buf))
    record_index = 0
    for entry in index.entries:
        header, records = decode_message(memoryview(buf)[: entry.offset + entry.size], entry.offset)
        for record in records:
            yield entry.id, record_index, header, record
            record_index += 1
