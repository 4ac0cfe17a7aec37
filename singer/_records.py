"""What readers hand to the writer: one record and the file position a watermark would hold after it."""

from __future__ import annotations

import operator
import os
from collections.abc import Sequence
from typing import NamedTuple, overload


class Record(NamedTuple):
    """One log record; ``next_offset`` is the byte after it, where reading resumes once it is delivered."""

    value: bytes
    next_offset: int
    key: bytes | None = None
    timestamp_ns: int | None = None


_VALUE = operator.itemgetter(0)  # Record.value, in C


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

    def read(self) -> Sequence[Record]:
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


class Lines(Sequence[Record]):
    """Lines of one read kept as columns: no object per line until one is asked for.

    Values are slices of one read buffer: line ``i`` ends (the byte after its newline) at ``ends[i]`` in the
    buffer, its value is the ``sizes[i] - sizes[i-1]`` bytes from where the previous line ended (``start``
    for the first), and its ``next_offset`` is ``base + ends[i]``. Slicing shares the buffer and columns."""

    __slots__ = ("base", "buffer", "ends", "hi", "lo", "sizes", "start")

    def __init__(
        self,
        buffer: bytearray | memoryview,
        start: int,
        ends: memoryview,
        sizes: memoryview,
        base: int,
        lo: int = 0,
        hi: int | None = None,
    ) -> None:
        self.buffer = buffer
        self.start = start  # where the value of line 0 (of the whole column, not of this slice) starts
        self.ends = ends  # int64 columns of the whole read
        self.sizes = sizes
        self.base = base  # file offset of buffer[0]
        self.lo = lo
        self.hi = len(ends) if hi is None else hi

    def __len__(self) -> int:
        return self.hi - self.lo

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> Lines: ...

    def __getitem__(self, index: int | slice) -> Record | Lines:
        if isinstance(index, slice):
            lo, hi, step = index.indices(len(self))
            if step != 1:
                raise ValueError("lines are sliced with a step of 1 only")
            return Lines(self.buffer, self.start, self.ends, self.sizes, self.base, self.lo + lo, self.lo + max(hi, lo))
        i = index + len(self) if index < 0 else index
        if not 0 <= i < len(self):
            raise IndexError("line index out of range")
        i += self.lo
        begin = self.ends[i - 1] if i else self.start
        size = self.sizes[i] - (self.sizes[i - 1] if i else 0)
        return Record(bytes(self.buffer[begin : begin + size]), self.base + self.ends[i])

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same records, a list among them."""
        return isinstance(other, Sequence) and len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    @property
    def value_start(self) -> int:
        """Where the first line's value starts in the buffer."""
        return self.ends[self.lo - 1] if self.lo else self.start

    @property
    def bytes_before(self) -> int:
        """Value bytes of the read's lines before this slice: ``sizes`` counts from the read's first line."""
        return self.sizes[self.lo - 1] if self.lo else 0

    @property
    def nbytes(self) -> int:
        """Value bytes of these lines."""
        return self.sizes[self.hi - 1] - self.bytes_before if self.hi > self.lo else 0

    def running_bytes(self) -> memoryview:
        """The running total of value sizes of these lines, counted from the read's first line."""
        return self.sizes[self.lo : self.hi]

    def next_offset(self, index: int) -> int:
        return self.base + self.ends[self.lo + index]


def value_bytes(records: Sequence[Record]) -> int:
    """Bytes of the records' values."""
    return records.nbytes if isinstance(records, Lines) else sum(map(len, map(_VALUE, records)))
