"""Bodies compressed the way other writers do it: streamed zstd frames, several gzip members or zstd frames."""

from __future__ import annotations

import gzip
import struct
import zlib

import pytest
import zstandard

from memq import FormatError
from memq._format import HEADER_LENGTH, Compression, Record, decode_message, encode_message

RECORDS = [Record(b"value-%d" % i * 50, key=b"k%d" % i, timestamp_ms=i, message_id=b"id%03d" % i) for i in range(40)]


def _with_body(compression: Compression, body: bytes) -> bytes:
    """Our message for RECORDS with its body replaced by `body` (header fields fixed up)."""
    ours = bytearray(
        encode_message(RECORDS, compression=Compression.NONE, producer_epoch=1, request_id=2, address=b"\x7f\0\0\1")
    )
    message = ours[:HEADER_LENGTH] + body
    struct.pack_into(">IBii", message, 27, zlib.crc32(body), compression, len(RECORDS), len(body))
    return bytes(message)


def _plain() -> bytes:
    return encode_message(RECORDS, compression=Compression.NONE, producer_epoch=1, request_id=2, address=b"\x7f\0\0\1")[
        HEADER_LENGTH:
    ]


def test_streamed_zstd_without_content_size_as_zstd_jni_writes() -> None:
    compressor = zstandard.ZstdCompressor(level=3, write_content_size=False)
    chunks = compressor.compressobj()
    body = b"".join([chunks.compress(_plain()[:100]), chunks.compress(_plain()[100:]), chunks.flush()])
    assert decode_message(_with_body(Compression.ZSTD, body))[1] == RECORDS


def test_several_zstd_frames_and_gzip_members_are_one_stream() -> None:
    plain = _plain()
    frames = b"".join(zstandard.ZstdCompressor().compress(part) for part in (plain[:333], plain[333:]))
    assert decode_message(_with_body(Compression.ZSTD, frames))[1] == RECORDS
    members = gzip.compress(plain[:500]) + gzip.compress(plain[500:])
    assert decode_message(_with_body(Compression.GZIP, members))[1] == RECORDS


@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.ZSTD])
def test_a_truncated_stream_with_a_matching_crc_is_a_format_error(compression: Compression) -> None:
    whole = (
        gzip.compress(_plain()) if compression is Compression.GZIP else zstandard.ZstdCompressor().compress(_plain())
    )
    with pytest.raises(FormatError, match="does not decompress") as caught:
        decode_message(_with_body(compression, whole[:-5]))
    assert caught.value.offset == HEADER_LENGTH
