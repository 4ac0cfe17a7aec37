"""The MemQ wire protocol between producers and brokers, as the reference speaks it (versions 1 to 5).

Every packet is a frame: ``int32 length`` then ``length`` bytes. A request frame starts with ``int16
version, int64 client request id, int8 type``; a response frame with the same three fields, then ``int16
code`` and an error string, then the typed payload only when the code is 200. Integers are big-endian,
strings are ``int16 length`` + UTF-8 bytes (length 0 for empty). Responses are matched to requests by the
client request id, so a broker may answer out of order.

Everything here is pure: bytes in, typed values out, :class:`FrameError` (with the byte offset) on bad input.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum

from memq._errors import FormatError

__all__ = [
    "CLIENT_VERSION",
    "MAX_FRAME_BYTES",
    "MAX_VERSION",
    "BrokerAddress",
    "FrameError",
    "FrameTooLargeError",
    "MetadataRequest",
    "ReadRequest",
    "Request",
    "RequestType",
    "Response",
    "ResponseCode",
    "TopicMetadata",
    "WriteRequest",
    "checksum",
    "decode_metadata",
    "decode_request",
    "decode_response",
    "encode_metadata",
    "encode_request",
    "encode_request_parts",
    "encode_response",
    "encode_write_ok",
    "read_frame",
]

CLIENT_VERSION = 3  # what our producer speaks: the version of the reference Java client 0.2.20
MAX_VERSION = 5
MAX_FRAME_BYTES = 4 * 1024 * 1024  # the reference's default on both sides
_V4 = 4  # write requests gain a producer id and connection list, write responses routing fields

_HEADER = struct.Struct(">hqb")
_RESPONSE_HEADER = struct.Struct(">hqbh")
_I32 = struct.Struct(">i")


class RequestType(IntEnum):
    WRITE = 0
    TOPIC_METADATA = 1
    READ = 2


class ResponseCode(IntEnum):
    OK = 200
    NO_DATA = 204
    REDIRECT = 302
    BAD_REQUEST = 400
    UNAUTHORIZED = 401
    NOT_FOUND = 404
    INTERNAL_SERVER_ERROR = 500
    REQUEST_FAILED = 502
    SERVICE_UNAVAILABLE = 503


class FrameError(FormatError):
    """A frame that does not follow the wire protocol; ``offset`` is the byte within the frame body."""


class FrameTooLargeError(FrameError):
    """A frame whose length prefix exceeds the configured maximum (or is negative)."""


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """One producer message (``data``) for ``topic``; ``crc`` is the CRC32 of ``data`` the client sent."""

    topic: str
    data: bytes | memoryview  # decoded requests hold a view into their frame
    crc: int | None = None  # absent before version 2
    disable_acks: bool = False
    producer_id: str = ""  # version 4+


@dataclass(frozen=True, slots=True)
class MetadataRequest:
    topics: tuple[str, ...] = ()  # empty: every topic


@dataclass(frozen=True, slots=True)
class ReadRequest:
    topic: str
    notification: str
    header_only: bool
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class Request:
    version: int
    request_id: int
    body: WriteRequest | MetadataRequest | ReadRequest

    @property
    def type(self) -> RequestType:
        return _TYPES[type(self.body)]


_TYPES: dict[type, RequestType] = {
    WriteRequest: RequestType.WRITE,
    MetadataRequest: RequestType.TOPIC_METADATA,
    ReadRequest: RequestType.READ,
}


@dataclass(frozen=True, slots=True)
class Response:
    version: int
    request_id: int
    type: RequestType
    code: int
    error: str = ""
    payload: bytes = b""  # the typed payload, only when code is OK


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    locality: str = "n/a"  # the reference client's default locality

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TopicMetadata:
    topic: str
    write_brokers: tuple[BrokerAddress, ...]
    storage_handler: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    read_brokers: tuple[BrokerAddress, ...] = ()


def checksum(data: bytes | memoryview) -> int:
    """The CRC32 a WRITE request carries over its data (unsigned; the reference's signed int32 has the same bits)."""
    return zlib.crc32(data)


# ----------------------------------------------------------------------------------------------- framing


async def read_frame(reader: asyncio.StreamReader, max_bytes: int = MAX_FRAME_BYTES) -> bytes | None:
    """The next frame body from ``reader``; None at a clean end of stream between frames."""
    try:
        prefix = await reader.readexactly(4)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError(f"stream ended inside a length prefix ({len(exc.partial)} of 4 bytes)", 0) from None
    (length,) = struct.unpack(">i", prefix)
    if length < 0 or length > max_bytes:
        raise FrameTooLargeError(f"frame length {length} outside 0..{max_bytes}", 0)
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise FrameError(f"stream ended after {len(exc.partial)} of {length} frame bytes", len(exc.partial)) from None


def _frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


# ------------------------------------------------------------------------------------------------ cursor


class _Cursor:
    """Reads big-endian fields from a frame body; every shortfall names the field and its offset."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos

    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def take(self, n: int, what: str) -> bytes:
        start = self._advance(n, what)
        return self.buf[start : self.pos]

    def view(self, n: int, what: str) -> memoryview:
        """Like :meth:`take`, without copying: a view into the frame."""
        start = self._advance(n, what)
        return memoryview(self.buf)[start : self.pos]

    def _advance(self, n: int, what: str) -> int:
        """Step over ``n`` bytes; returns where they start."""
        if n < 0:
            raise FrameError(f"negative length {n} for {what}", self.pos)
        if n > self.remaining():
            raise FrameError(f"{what} needs {n} bytes, only {self.remaining()} left", self.pos)
        start = self.pos
        self.pos += n
        return start

    def unpack(self, fmt: str, what: str) -> int:
        size = struct.calcsize(fmt)
        value: int = struct.unpack_from(fmt, self.take(size, what))[0]
        return value

    def i8(self, what: str) -> int:
        return self.unpack(">b", what)

    def i16(self, what: str) -> int:
        return self.unpack(">h", what)

    def u16(self, what: str) -> int:
        return self.unpack(">H", what)

    def i32(self, what: str) -> int:
        return self.unpack(">i", what)

    def u32(self, what: str) -> int:
        return self.unpack(">I", what)

    def string(self, what: str) -> str:
        start = self.pos
        raw = self.take(self.i16(f"length of {what}"), what)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise FrameError(f"{what} is not UTF-8", start) from None

    def done(self, what: str) -> None:
        if self.remaining():
            raise FrameError(f"{self.remaining()} unexpected bytes after {what}", self.pos)


def _string(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > 0x7FFF:
        raise ValueError(f"string of {len(raw)} bytes does not fit the wire's int16 length")
    return struct.pack(">h", len(raw)) + raw


# ---------------------------------------------------------------------------------------------- requests


def encode_request(request: Request) -> bytes:
    """The framed bytes of ``request``."""
    return b"".join(encode_request_parts(request))


def encode_request_parts(request: Request) -> list[bytes | memoryview]:
    """The framed bytes of ``request`` as pieces to write in order; a WRITE's data is one piece, not copied."""
    body = request.body
    head = _HEADER.pack(request.version, request.request_id, request.type)
    if isinstance(body, WriteRequest):
        fields = _write_fields(body, request.version)
        length = len(head) + len(fields) + len(body.data)
        return [_I32.pack(length) + head + fields, body.data]
    if isinstance(body, MetadataRequest):
        payload = b"".join(_string(topic) for topic in body.topics)
    else:
        payload = (
            _string(body.topic)
            + _string(body.notification)
            + struct.pack(">?ii", body.header_only, body.offset, body.size)
        )
    return [_frame(head + payload)]


def _write_fields(body: WriteRequest, version: int) -> bytes:
    """A WRITE's fields up to and including the data length (the data follows them)."""
    parts = [struct.pack(">?", body.disable_acks), _string(body.topic)]
    if version >= 2:
        parts.append(struct.pack(">I", checksum(body.data) if body.crc is None else body.crc))
    if version >= _V4:
        parts.append(_string(body.producer_id) + struct.pack(">h", 0))
    parts.append(_I32.pack(len(body.data)))
    return b"".join(parts)


def decode_request(frame: bytes) -> Request:
    """A request from a frame body (without its length prefix)."""
    cursor = _Cursor(frame)
    version = cursor.i16("protocol version")
    request_id = cursor.unpack(">q", "client request id")
    raw_type = cursor.i8("request type")
    if not 1 <= version <= MAX_VERSION:
        raise FrameError(f"unsupported protocol version {version} (1..{MAX_VERSION})", 0)
    try:
        kind = RequestType(raw_type)
    except ValueError:
        raise FrameError(f"unknown request type {raw_type}", 10) from None
    body: WriteRequest | MetadataRequest | ReadRequest
    if kind is RequestType.WRITE:
        body = _decode_write(cursor, version)
    elif kind is RequestType.TOPIC_METADATA:
        topics = []
        while cursor.remaining():
            topics.append(cursor.string("topic name"))
        body = MetadataRequest(tuple(topics))
    else:
        body = ReadRequest(
            topic=cursor.string("topic name"),
            notification=cursor.string("notification"),
            header_only=bool(cursor.i8("header-only flag")),
            offset=cursor.i32("read offset"),
            size=cursor.i32("read size"),
        )
        cursor.done("read request")
    return Request(version, request_id, body)


def _decode_write(cursor: _Cursor, version: int) -> WriteRequest:
    disable_acks = bool(cursor.i8("disable-acks flag"))
    topic = cursor.string("topic name")
    crc = cursor.u32("checksum") if version >= 2 else None
    producer_id = ""
    if version >= _V4:
        producer_id = cursor.string("producer id")
        for _ in range(max(cursor.i16("connection count"), 0)):
            cursor.string("connection broker")
            cursor.i32("connection slots")
    length_at = cursor.pos
    length = cursor.i32("data length")
    if length != cursor.remaining():
        raise FrameError(f"data length {length} but {cursor.remaining()} bytes follow", length_at)
    data = cursor.view(length, "data")  # the message is stored as received: no copy of it here
    return WriteRequest(topic=topic, data=data, crc=crc, disable_acks=disable_acks, producer_id=producer_id)


# --------------------------------------------------------------------------------------------- responses


def encode_response(response: Response) -> bytes:
    """The framed bytes of ``response``; the payload is sent only with code 200, as the reference reads it."""
    head = _RESPONSE_HEADER.pack(response.version, response.request_id, response.type, response.code)
    payload = response.payload if response.code == ResponseCode.OK else b""
    return _frame(head + _string(response.error[:4096]) + payload)


def decode_response(frame: bytes) -> Response:
    """A response from a frame body (without its length prefix)."""
    cursor = _Cursor(frame)
    version = cursor.i16("protocol version")
    request_id = cursor.unpack(">q", "client request id")
    raw_type = cursor.i8("request type")
    try:
        kind = RequestType(raw_type)
    except ValueError:
        raise FrameError(f"unknown request type {raw_type}", 10) from None
    code = cursor.i16("response code")
    error = cursor.string("error message")
    return Response(version, request_id, kind, code, error, cursor.buf[cursor.pos :])


def encode_write_ok(version: int) -> bytes:
    """The payload of a successful WRITE response: empty up to v3, routing fields (none) from v4."""
    if version < _V4:
        return b""
    return _string("") + struct.pack(">iih", 0, 0, min(version, MAX_VERSION))


def _encode_broker(broker: BrokerAddress) -> bytes:
    if not 0 < broker.port <= 0xFFFF:
        raise ValueError(f"broker port {broker.port} outside 1..65535")
    return _string(broker.locality) + _string(broker.host) + struct.pack(">H", broker.port)


def encode_metadata(topics: list[TopicMetadata], version: int) -> bytes:
    """The payload of a TOPIC_METADATA response (read brokers from version 3)."""
    parts: list[bytes] = []
    for md in topics:
        parts.append(_string(md.topic) + struct.pack(">h", len(md.write_brokers)))
        parts.extend(_encode_broker(b) for b in md.write_brokers)
        parts.append(_string(md.storage_handler) + struct.pack(">h", len(md.properties)))
        parts.extend(_string(k) + _string(v) for k, v in md.properties.items())
        if version >= 3:
            parts.append(struct.pack(">h", len(md.read_brokers)))
            parts.extend(_encode_broker(b) for b in md.read_brokers)
    return b"".join(parts)


def decode_metadata(payload: bytes, version: int) -> list[TopicMetadata]:
    cursor = _Cursor(payload)
    topics = []
    while cursor.remaining():
        name = cursor.string("topic name")
        write_brokers = _decode_brokers(cursor)
        handler = cursor.string("storage handler name")
        properties = {}
        for _ in range(cursor.i16("property count")):
            key = cursor.string("property name")
            properties[key] = cursor.string("property value")
        read_brokers = _decode_brokers(cursor) if version >= 3 else ()
        topics.append(TopicMetadata(name, write_brokers, handler, properties, read_brokers))
    return topics


def _decode_brokers(cursor: _Cursor) -> tuple[BrokerAddress, ...]:
    brokers = []
    for _ in range(cursor.i16("broker count")):
        locality = cursor.string("broker locality")
        host = cursor.string("broker address")
        brokers.append(BrokerAddress(host, cursor.u16("broker port"), locality))
    return tuple(brokers)
