"""What readers hand to the writer: one record and the file position a watermark would hold after it."""

from __future__ import annotations

import os
from typing import NamedTuple


class Record(NamedTuple):
    """One log record; ``next_offset`` is the byte after it, where reading resumes once it is delivered."""

    value: bytes
    next_offset: int
    key: bytes | None = None
    timestamp_ns: int | None = None


class ReadStats:
    """Counters a reader keeps about what it had to change or leave out."""

    __slots__ = ("dropped", "truncated", "truncated_bytes")

    def __init__(self) -> None:
        self.truncated = 0  # records cut to the maximum size
        self.truncated_bytes = 0  # bytes cut off them
        self.dropped = 0  # records left out whole (a thrift value over the maximum)


class Reader:
    """Reads records from an open file descriptor from a given offset, in large chunks.

    ``read`` returns the complete records it finds in the next chunk; an incomplete tail (a line without its
    newline, a torn frame) is held and not counted as read, so ``offset`` of the last record returned is
    always a safe place to resume. ``finish`` is called once the file is known to be complete (rotated away):
    whatever is held is then emitted or counted as lost.
    """

    def __init__(self, fd: int, offset: int, chunk_bytes: int) -> None:
        self.fd = fd
        self.chunk_bytes = chunk_bytes
        self.stats = ReadStats()
        self.eof = False  # the last read reached the end of the file
        self.error: str | None = None  # set when the file cannot be read past some offset
        self.position = offset  # offset after the last record returned
        self._read_to = offset  # offset of the next byte to read from the file

    @property
    def held_bytes(self) -> int:
        """Bytes read but not yet returned as records (an unterminated line, a partial frame)."""
        return self._read_to - self.position

    def read(self) -> list[Record]:
        raise NotImplementedError

    def finish(self) -> list[Record]:
        """The file will not grow: return what is held, if it makes a record, and forget it."""
        raise NotImplementedError

    def _pread(self) -> bytes:
        # Ask for what the file holds, not a whole chunk: pread allocates the size asked for, and a megabyte per
        # read for the few kilobytes a tailed file gains between reads would grow the heap for nothing.
        size = min(self.chunk_bytes, os.fstat(self.fd).st_size - self._read_to)
        data = os.pread(self.fd, size, self._read_to) if size > 0 else b""
        self._read_to += len(data)
        self.eof = len(data) < self.chunk_bytes
        return data
