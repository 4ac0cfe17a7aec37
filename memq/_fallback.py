"""Pure-Python versions of :mod:`memq._speedups`, for builds without a C compiler.

They define the behaviour; the C versions answer the same calls faster.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

_RECORD_FIXED = 2 + 8 + 1 + 2 + 4 + 4  # a record's length fields and timestamp
_PLAIN = struct.Struct(">hqBhi")  # internalFieldsLength 11, timestamp, no id, no headers, key length
_PLAIN_UNKEYED = struct.Struct(">hqBhii")  # the same with key length 0, then the value length
_I32 = struct.Struct(">i")
_time = time.time


class OpenBase:
    """The columns and sizes of a request being filled, which :meth:`ProducerBase.produce` appends to."""

    __slots__ = ("capacity", "headers", "keys", "reports", "sealed", "size", "stamps", "values")

    values: list[bytes]
    keys: list[bytes | None]
    stamps: list[int]
    headers: list[Any] | None  # None until a record has headers, then one entry per record
    reports: list[Any] | None  # None until a record has its own report, then one entry per record
    size: int  # uncompressed record bytes
    capacity: int  # record bytes the request can carry
    sealed: bool


class ProducerBase:
    """The producer's fields that :meth:`produce` reads, and its fast path (the rest is ``_append``)."""

    __slots__ = ("_buffered", "_lock", "_max_buffered", "_open", "_unanswered")

    _open: dict[str, Any]  # topic -> OpenBase being filled
    _lock: threading.Lock  # guards the fields here and the open requests
    _buffered: int  # bytes of records produced and not yet answered
    _unanswered: int  # records produced and not yet answered
    _max_buffered: int

    def produce(
        self,
        topic: str,
        value: bytes | bytearray | memoryview,
        key: bytes | bytearray | memoryview | None = None,
        headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None = None,
        timestamp: int = 0,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> None:
        """Queue a record; ``on_delivery(err, record)`` runs in a later ``poll`` or ``flush``."""
        if headers is None and on_delivery is None and type(value) is bytes and (key is None or type(key) is bytes):
            # The common record joins its topic's open request with a few list appends; anything that needs
            # a decision (a new request, a full one, no room in flight) takes the general path.
            size = _RECORD_FIXED + len(value) + (len(key) if key else 0)
            stamp = timestamp or int(_time() * 1000)
            with self._lock:
                pending = self._open.get(topic)
                if (
                    pending is not None
                    and pending.size + size <= pending.capacity
                    and self._buffered + size <= self._max_buffered
                ):
                    pending.values.append(value)
                    pending.keys.append(key)
                    pending.stamps.append(stamp)
                    if pending.headers is not None:
                        pending.headers.append(())
                    if pending.reports is not None:
                        pending.reports.append(None)
                    pending.size += size
                    self._buffered += size
                    self._unanswered += 1
                    return
        self._append(topic, value, key, headers, timestamp, on_delivery)

    def psc_produce(
        self,
        topic: str,
        value: bytes | bytearray | memoryview | None = None,
        key: bytes | bytearray | memoryview | None = None,
        partition: int = -1,
        on_delivery: Callable[[Any, Any], None] | None = None,
        timestamp: int = 0,
        headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None = None,
    ) -> None:
        """``produce`` with the arguments of PSC's backend ``produce``; no value is an empty one, and MemQ
        topics have one partition as PSC sees them."""
        self.produce(topic, b"" if value is None else value, key, headers, timestamp, on_delivery)

    def _append(self, topic: str, value: Any, key: Any, headers: Any, timestamp: int, report: Any) -> None:
        raise NotImplementedError


def encode_plain(values: Sequence[bytes], keys: Sequence[bytes | None], timestamps: Sequence[int]) -> bytes | None:
    """The body of records without headers (no message ids), built in one join; None if the columns differ
    in length (the caller says what is wrong)."""
    count = len(values)
    if len(keys) != count or len(timestamps) != count:
        return None
    # map() over the columns runs the packing loop in C; the slices interleave heads and payloads.
    zero = repeat(0)
    if not any(keys):
        parts: list[bytes] = [b""] * (2 * count)
        parts[::2] = map(_PLAIN_UNKEYED.pack, repeat(11), timestamps, zero, zero, zero, map(len, values))
        parts[1::2] = values
        return b"".join(parts)
    present = [k or b"" for k in keys]
    parts = [b""] * (4 * count)
    parts[::4] = map(_PLAIN.pack, repeat(11), timestamps, zero, zero, map(len, present))
    parts[1::4] = present
    parts[2::4] = map(_I32.pack, map(len, values))
    parts[3::4] = values
    return b"".join(parts)
