"""Body compression for producer messages: none, gzip and zstd, with the reference's ids."""

from __future__ import annotations

import contextlib
import gzip
import threading
import zlib
from enum import IntEnum

import zstandard

__all__ = ["Compression", "compress", "decompress"]

_ZSTD_LEVEL = 3  # zstd-jni's default, which the reference producer uses
_GZIP_LEVEL = 6  # java.util.zip's default
_CHUNK = 4096  # zstd input per step: at most ~128 MiB of output before the size check


class Compression(IntEnum):
    NONE = 0
    GZIP = 1
    ZSTD = 2


def compress(compression: Compression, body: bytes) -> bytes:
    if compression is Compression.NONE:
        return body
    if compression is Compression.GZIP:
        return gzip.compress(body, compresslevel=_GZIP_LEVEL, mtime=0)
    return _zstd_compressor().compress(body)


_local = threading.local()


def _zstd_compressor() -> zstandard.ZstdCompressor:
    # A compressor keeps its context between calls (about 10% of a 1 MiB compression to set up anew); it
    # must not be used by two threads at once, so each thread has its own.
    compressor: zstandard.ZstdCompressor | None = getattr(_local, "zstd", None)
    if compressor is None:
        compressor = _local.zstd = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
    return compressor


def decompress(compression: Compression, payload: bytes | memoryview, limit: int) -> bytes:
    """Decompress a whole body of at most `limit` bytes; ValueError if it is malformed, truncated or too big."""
    if compression is Compression.NONE:
        return bytes(payload)
    if compression is Compression.GZIP:
        return _gunzip(payload, limit)
    return _unzstd(payload, limit)


def _gunzip(payload: bytes | memoryview, limit: int) -> bytes:
    # Concatenated gzip members are one stream, as for java.util.zip.GZIPInputStream.
    out = bytearray()
    data = payload
    while True:
        inflater = zlib.decompressobj(wbits=31)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise ValueError(str(exc)) from None
        if len(out) > limit:
            raise ValueError(f"decompresses to more than {limit} bytes")
        if not inflater.eof:
            raise ValueError("gzip stream is truncated")
        data = inflater.unused_data
        if not data:
            return bytes(out)


def _unzstd(payload: bytes | memoryview, limit: int) -> bytes:
    # One frame that states its size (what our producer writes) is decompressed in one call, straight into a
    # buffer of that size; anything else (several frames, no size: zstd-jni's streams) takes the careful path.
    try:
        size = zstandard.frame_content_size(payload)
    except zstandard.ZstdError:
        size = -1  # not a zstd frame header: the careful path says what is wrong
    if 0 <= size <= limit:
        with contextlib.suppress(zstandard.ZstdError):
            return zstandard.ZstdDecompressor().decompress(payload, allow_extra_data=False)
    elif size > limit:
        raise ValueError(f"states {size} bytes, decompresses to more than {limit} bytes")
    return _unzstd_stream(payload, limit)


def _unzstd_stream(payload: bytes | memoryview, limit: int) -> bytes:
    # Fed in small chunks so that a body which inflates past `limit` is stopped early; frames follow each other.
    out = bytearray()
    position = 0
    while True:
        inflater = zstandard.ZstdDecompressor().decompressobj()
        while not inflater.eof:
            if position >= len(payload):
                raise ValueError("zstd stream is truncated")
            chunk = payload[position : position + _CHUNK]
            try:
                out += inflater.decompress(chunk)
            except zstandard.ZstdError as exc:
                raise ValueError(str(exc)) from None
            if len(out) > limit:
                raise ValueError(f"decompresses to more than {limit} bytes")
            position += len(chunk) - (len(inflater.unused_data) if inflater.eof else 0)
        if position >= len(payload):
            return bytes(out)
