"""The framed thrift log format: ``LogMessage`` structs in Thrift binary protocol, each after a 4-byte length.

A file is frames back to back: a big-endian unsigned 32-bit length N, then N bytes of one ``LogMessage``
(no envelope, fields as ``type:1 id:2`` headers, a stop byte at the end). ``LogMessage`` fields: 1 key
(binary, optional), 2 message (binary, required), 3 timestampInNanos (i64), 4 checksum (i64, CRC-32 of the
message), 5 loggingAuditHeaders (struct, kept as raw bytes here). Unknown fields are skipped.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from singer._records import Reader, Record

# Thrift binary protocol type ids.
T_STOP, T_BOOL, T_BYTE, T_DOUBLE, T_I16, T_I32, T_I64, T_STRING, T_STRUCT, T_MAP, T_SET, T_LIST = (
    0, 2, 3, 4, 6, 8, 10, 11, 12, 13, 14, 15
)  # fmt: skip
_FIXED = {T_BOOL: 1, T_BYTE: 1, T_DOUBLE: 8, T_I16: 2, T_I32: 4, T_I64: 8}
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_HEADER = struct.Struct(">bh")
_MAX_DEPTH = 32


class ThriftDecodeError(ValueError):
    """A frame's bytes are not a valid ``LogMessage``."""


@dataclass(frozen=True, slots=True)
class LogMessage:
    message: bytes
    key: bytes | None = None
    timestamp_ns: int | None = None
    checksum: int | None = None
    audit_headers: bytes | None = None  # the serialized LoggingAuditHeaders struct, without decoding it


def encode(msg: LogMessage) -> bytes:
    """One ``LogMessage`` in binary protocol (fields in id order, unset optionals left out)."""
    parts = []
    if msg.key is not None:
        parts += [_HEADER.pack(T_STRING, 1), _U32.pack(len(msg.key)), msg.key]
    parts += [_HEADER.pack(T_STRING, 2), _U32.pack(len(msg.message)), msg.message]
    if msg.timestamp_ns is not None:
        parts += [_HEADER.pack(T_I64, 3), _I64.pack(msg.timestamp_ns)]
    if msg.checksum is not None:
        parts += [_HEADER.pack(T_I64, 4), _I64.pack(msg.checksum)]
    if msg.audit_headers is not None:
        parts += [_HEADER.pack(T_STRUCT, 5), msg.audit_headers]
    parts.append(b"\x00")
    return b"".join(parts)


def frame(msg: LogMessage) -> bytes:
    """``msg`` as it is stored in a log file: its length, then its bytes."""
    body = encode(msg)
    return _U32.pack(len(body)) + body


def crc32(message: bytes) -> int:
    """The ``checksum`` field's value: CRC-32 of the message as an unsigned 32-bit number."""
    return zlib.crc32(message)


def decode(buf: bytes | memoryview, start: int = 0, end: int | None = None) -> LogMessage:
    """Decode the ``LogMessage`` in ``buf[start:end]``; raises :class:`ThriftDecodeError` naming the problem."""
    end = len(buf) if end is None else end
    key = message = audit = None
    timestamp = checksum = None
    pos = start
    try:
        while True:
            ftype = buf[pos]
            if ftype == T_STOP:
                pos += 1
                break
            fid = (buf[pos + 1] << 8) | buf[pos + 2]
            pos += 3
            if ftype == T_STRING and fid in (1, 2):
                (size,) = _U32.unpack_from(buf, pos)
                pos += 4
                if pos + size > end:
                    raise ThriftDecodeError(f"field {fid} claims {size} bytes, past the end of the frame")
                value = bytes(buf[pos : pos + size])
                pos += size
                if fid == 1:
                    key = value
                else:
                    message = value
            elif ftype == T_I64 and fid in (3, 4):
                (number,) = _I64.unpack_from(buf, pos)
                pos += 8
                if fid == 3:
                    timestamp = number
                else:
                    checksum = number
            elif ftype == T_STRUCT and fid == 5:
                after = _skip(buf, pos, T_STRUCT, end, 0)
                audit = bytes(buf[pos:after])
                pos = after
            else:
                pos = _skip(buf, pos, ftype, end, 0)
            if pos > end:
                raise ThriftDecodeError("a field runs past the end of the frame")
    except (IndexError, struct.error):
        raise ThriftDecodeError("the frame ends inside a field") from None
    if pos != end:
        raise ThriftDecodeError(f"{end - pos} bytes follow the struct's stop byte")
    if message is None:
        raise ThriftDecodeError("required field 2 (message) is missing")
    return LogMessage(message, key, timestamp, checksum, audit)


def _skip(buf: bytes | memoryview, pos: int, ftype: int, end: int, depth: int) -> int:
    """The position after a value of type ``ftype`` that starts at ``pos``."""
    if depth > _MAX_DEPTH:
        raise ThriftDecodeError("structs nested too deeply")
    fixed = _FIXED.get(ftype)
    if fixed is not None:
        return pos + fixed
    if ftype == T_STRING:
        return pos + 4 + int(_U32.unpack_from(buf, pos)[0])
    if ftype == T_STRUCT:
        while True:
            inner = buf[pos]
            if inner == T_STOP:
                return pos + 1
            pos = _skip(buf, pos + 3, inner, end, depth + 1)
            if pos > end:
                raise ThriftDecodeError("a nested field runs past the end of the frame")
    if ftype == T_MAP:
        ktype, vtype = buf[pos], buf[pos + 1]
        (count,) = _U32.unpack_from(buf, pos + 2)
        pos += 6
        for _ in range(count):
            pos = _skip(buf, _skip(buf, pos, ktype, end, depth + 1), vtype, end, depth + 1)
            if pos > end:
                raise ThriftDecodeError("a map runs past the end of the frame")
        return pos
    if ftype in (T_SET, T_LIST):
        etype = buf[pos]
        (count,) = _U32.unpack_from(buf, pos + 1)
        pos += 5
        for _ in range(count):
            pos = _skip(buf, pos, etype, end, depth + 1)
            if pos > end:
                raise ThriftDecodeError("a list runs past the end of the frame")
        return pos
    raise ThriftDecodeError(f"unknown thrift type id {ftype}")


class ThriftReader(Reader):
    """Reads frames; a value over ``max_message_bytes`` is dropped and counted, reading goes on past it.

    A frame longer than ``max_frame_bytes`` or one that does not decode stops the reader at the last good
    offset with ``error`` set. A frame cut short by the end of the file is held until it completes.
    """

    def __init__(
        self,
        fd: int,
        offset: int,
        *,
        chunk_bytes: int = 1 << 20,
        max_message_bytes: int = 1_000_000,
        max_frame_bytes: int | None = None,
    ) -> None:
        super().__init__(fd, offset, chunk_bytes)
        self.max_message_bytes = max_message_bytes
        self.max_frame_bytes = max_frame_bytes if max_frame_bytes is not None else 10 * max_message_bytes
        self._held = b""

    def read(self) -> list[Record]:
        if self.error is not None:
            return []
        data = self._pread()
        buf = self._held + data if self._held else data
        records: list[Record] = []
        pos, size, base = 0, len(buf), self.position
        while size - pos >= 4:
            (length,) = _U32.unpack_from(buf, pos)
            if length > self.max_frame_bytes:
                self.error = f"frame at offset {base + pos} claims {length} bytes, over {self.max_frame_bytes}"
                break
            end = pos + 4 + length
            if end > size:
                break
            try:
                msg = decode(buf, pos + 4, end)
            except ThriftDecodeError as exc:
                self.error = f"frame at offset {base + pos} is not a LogMessage: {exc}"
                break
            pos = end
            if len(msg.message) > self.max_message_bytes:
                self.stats.dropped += 1
                continue
            records.append(Record(msg.message, base + pos, msg.key, msg.timestamp_ns))
        self.position = base + pos
        self._held = buf[pos:] if self.error is None else b""
        if self.error is not None:
            self._read_to = self.position
        return records

    def finish(self) -> list[Record]:
        self._held = b""
        return []
