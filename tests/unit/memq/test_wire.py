"""The wire protocol: frames round-trip, and bad frames raise typed errors that say what was wrong."""

from __future__ import annotations

import asyncio
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memq._wire import (
    MAX_FRAME_BYTES,
    BrokerAddress,
    FrameError,
    FrameTooLargeError,
    MetadataRequest,
    ReadRequest,
    Request,
    RequestType,
    Response,
    ResponseCode,
    TopicMetadata,
    WriteRequest,
    checksum,
    decode_metadata,
    decode_request,
    decode_response,
    encode_metadata,
    encode_request,
    encode_request_parts,
    encode_response,
    encode_write_ok,
    read_frame,
)


def _body(framed: bytes) -> bytes:
    (length,) = struct.unpack(">i", framed[:4])
    assert length == len(framed) - 4
    return framed[4:]


@given(
    version=st.integers(1, 5),
    request_id=st.integers(-(2**63), 2**63 - 1),
    topic=st.text(min_size=1, max_size=40),
    data=st.binary(max_size=300),
    disable_acks=st.booleans(),
)
def test_write_request_round_trips(version: int, request_id: int, topic: str, data: bytes, disable_acks: bool) -> None:
    request = Request(version, request_id, WriteRequest(topic, data, disable_acks=disable_acks))
    decoded = decode_request(_body(encode_request(request)))
    assert decoded.version == version
    assert decoded.request_id == request_id
    assert decoded.type is RequestType.WRITE
    assert isinstance(decoded.body, WriteRequest)
    assert (decoded.body.topic, decoded.body.data, decoded.body.disable_acks) == (topic, data, disable_acks)
    assert decoded.body.crc == (checksum(data) if version >= 2 else None)


def test_v3_write_layout_matches_the_reference() -> None:
    framed = encode_request(Request(3, 7, WriteRequest("ab", b"xyz")))
    expected_body = (
        struct.pack(">hqb", 3, 7, 0)
        + b"\x00"
        + b"\x00\x02ab"
        + struct.pack(">I", checksum(b"xyz"))
        + b"\x00\x00\x00\x03xyz"
    )
    assert framed == struct.pack(">i", len(expected_body)) + expected_body


@pytest.mark.parametrize("version", [1, 3, 5])
def test_request_parts_carry_the_data_uncopied_and_join_to_the_frame(version: int) -> None:
    data = bytes(range(256)) * 4
    for body in (WriteRequest("topic", data), MetadataRequest(("a",))):
        request = Request(version, 5, body)
        parts = encode_request_parts(request)
        assert b"".join(parts) == encode_request(request)
    assert encode_request_parts(Request(version, 5, WriteRequest("topic", data)))[-1] is data


def test_decoded_write_data_is_a_view_of_the_frame() -> None:
    frame = _body(encode_request(Request(3, 1, WriteRequest("t", b"payload"))))
    data = decode_request(frame).body.data  # type: ignore[union-attr]
    assert isinstance(data, memoryview) and data.obj is frame and bytes(data) == b"payload"


def test_metadata_and_read_requests_round_trip() -> None:
    for body in (
        MetadataRequest(("a", "b")),
        MetadataRequest(),
        ReadRequest("t", '{"key":"k"}', True, 10, 20),
    ):
        decoded = decode_request(_body(encode_request(Request(3, 1, body))))
        assert decoded.body == body


@pytest.mark.parametrize("version", [2, 3, 4, 5])
def test_metadata_payload_round_trips(version: int) -> None:
    brokers = (BrokerAddress("127.0.0.1", 20001), BrokerAddress("10.0.0.2", 65000, "us-east-1a"))
    topics = [
        TopicMetadata("t1", brokers, "file", {"notificationTopic": "n1"}, brokers),
        TopicMetadata("t2", brokers[:1]),
    ]
    decoded = decode_metadata(encode_metadata(topics, version), version)
    if version < 3:
        topics = [TopicMetadata(t.topic, t.write_brokers, t.storage_handler, t.properties) for t in topics]
    assert decoded == topics


def test_response_round_trips_and_drops_payload_on_errors() -> None:
    ok = Response(3, 99, RequestType.WRITE, ResponseCode.OK, "", b"pay")
    assert decode_response(_body(encode_response(ok))) == ok
    failed = Response(3, 99, RequestType.WRITE, ResponseCode.REQUEST_FAILED, "upload failed", b"pay")
    assert decode_response(_body(encode_response(failed))).payload == b""
    assert decode_response(_body(encode_response(failed))).error == "upload failed"


def test_write_ok_payload_by_version() -> None:
    assert encode_write_ok(3) == b""
    assert encode_write_ok(5) == b"\x00\x00" + struct.pack(">iih", 0, 0, 5)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"\x00", "protocol version needs 2 bytes"),
        (struct.pack(">hqb", 9, 1, 0), "unsupported protocol version 9"),
        (struct.pack(">hqb", 3, 1, 7), "unknown request type 7"),
        (struct.pack(">hqb", 3, 1, 0) + b"\x00\x00\x05ab", "topic name needs 5 bytes"),
        (
            struct.pack(">hqb", 3, 1, 0) + b"\x00\x00\x01a" + b"\x00" * 4 + struct.pack(">i", 10) + b"abc",
            "data length 10",
        ),
        (struct.pack(">hqb", 3, 1, 0) + b"\x00\x00\x01a" + b"\x00" * 4 + struct.pack(">i", -1), "data length -1"),
        (struct.pack(">hqb", 3, 1, 0) + b"\x00\xff\xffa", "negative length -1 for topic name"),
        (struct.pack(">hqb", 3, 1, 0) + b"\x00\x00\x02\xff\xfe", "topic name is not UTF-8"),
    ],
)
def test_bad_request_frames_raise_typed_errors(frame: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message) as caught:
        decode_request(frame)
    assert caught.value.offset >= 0


@given(st.binary(max_size=64))
def test_random_bytes_raise_frame_errors_or_decode(frame: bytes) -> None:
    """Any input either decodes to a request or raises FrameError; nothing else escapes."""
    try:
        decoded = decode_request(frame)
    except FrameError as exc:
        assert 0 <= exc.offset <= len(frame)
    else:
        assert isinstance(decoded, Request)


def _read(data: bytes, max_bytes: int = MAX_FRAME_BYTES) -> bytes | None:
    async def run() -> bytes | None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_frame(reader, max_bytes)

    return asyncio.run(run())


def test_read_frame() -> None:
    assert _read(struct.pack(">i", 3) + b"abc") == b"abc"
    assert _read(b"") is None
    with pytest.raises(FrameError, match="inside a length prefix"):
        _read(b"\x00\x00")
    with pytest.raises(FrameError, match="after 2 of 3 frame bytes"):
        _read(struct.pack(">i", 3) + b"ab")


def test_oversized_and_negative_frames_are_rejected_before_reading() -> None:
    assert MAX_FRAME_BYTES == 4 * 1024 * 1024
    with pytest.raises(FrameTooLargeError, match=f"frame length {MAX_FRAME_BYTES + 1}"):
        _read(struct.pack(">i", MAX_FRAME_BYTES + 1))
    with pytest.raises(FrameTooLargeError, match="frame length -5"):
        _read(struct.pack(">i", -5))
    with pytest.raises(FrameTooLargeError):
        _read(struct.pack(">i", 11) + b"x" * 11, max_bytes=10)
