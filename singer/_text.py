"""Text logs: only ``\\n`` ends a line; optional multi-line records that start where a regex matches.

Without a multi-line regex, lines are split in C (``singer._speedups``) out of a large read buffer and kept as
columns of offsets, with no Python object per line; their values are slices of the buffer, which the
producer sends without copying them. Multi-line records are assembled in Python. A line longer than the
maximum is cut to it (the rest is read and dropped, never held in memory) and counted. An unterminated last
line is held until its newline arrives or the file is finished (rotated).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence

from singer._accel import split
from singer._records import Lines, Reader, Record

SPARE_BUFFERS = 2


class TextReader(Reader):
    def __init__(
        self,
        fd: int,
        offset: int,
        *,
        chunk_bytes: int = 1 << 20,
        max_message_bytes: int = 1_000_000,
        keep_newline: bool = True,
        start_regex: str | None = None,
    ) -> None:
        super().__init__(fd, offset, chunk_bytes)
        self.keep_newline = keep_newline
        # The newline counts towards the maximum when it is kept.
        self.limit = max_message_bytes - 1 if keep_newline else max_message_bytes
        self._start = re.compile(start_regex.encode()) if start_regex and start_regex not in ("^", "^.*$") else None
        self._partial = b""  # bytes of an unterminated line, at most ``limit`` of them
        self._partial_cut = 0  # bytes of that line read past the limit and dropped
        self._message: list[bytes] = []  # lines of the multi-line record being assembled
        self._message_size = 0
        self._message_end = offset
        self._spares: list[bytearray] = []  # the last full chunks' buffers, used again when free

    def read(self) -> Sequence[Record]:
        if self._start is None:
            return self._lines()
        data = self._pread()
        records: list[Record] = []
        if data:
            self._multiline(data, records)
        if self._start is not None and self.eof and not self._partial and not self._partial_cut and self._message:
            records.append(self._close_message())  # end of data closes a message, as a terminated line does
        return records

    def finish(self) -> list[Record]:
        records: list[Record] = []
        if self._partial or self._partial_cut:
            line, cut = self._partial, self._partial_cut
            self._partial, self._partial_cut = b"", 0
            if self._start is None:
                self._count_cut(cut)
                self.position = self._read_to
                records.append(Record(line, self.position))
            else:
                self._add_line(line, self._read_to, records, cut)
        if self._message:
            records.append(self._close_message())
        return records

    def _lines(self) -> Sequence[Record]:
        """One record per line: the fast path. The held partial line and the next chunk go in one buffer, whose
        lines are split in C and returned as columns (:class:`Lines`), their values slices of the buffer."""
        held = len(self._partial)
        size = min(self.chunk_bytes, os.fstat(self.fd).st_size - self._read_to)
        if size <= 0:
            self.eof = True
            return []
        whole = self._buffer(held + size, full=size == self.chunk_bytes)
        whole[:held] = self._partial
        with memoryview(whole) as view:
            read = os.preadv(self.fd, [view[held : held + size]], self._read_to)
        buffer = memoryview(whole)[: held + read]  # less than asked for if the file shrank meanwhile
        base = self._read_to - held  # the file offset of buffer[0]
        self._read_to += read
        self.eof = read < self.chunk_bytes
        if self.eof:
            self._spares = []
        elif not any(spare is whole for spare in self._spares):  # a backlog: the next read is a full chunk too
            self._spares = [*self._spares, whole][-SPARE_BUFFERS:]
        stop, ends, sizes, truncated, truncated_bytes = split(
            buffer, 0, self.keep_newline, self.limit, self._partial_cut
        )
        self.stats.truncated += truncated
        self.stats.truncated_bytes += truncated_bytes
        tail = len(buffer) - stop
        if stop:
            self._partial_cut = 0
            self.position = base + stop
        self._partial = bytes(buffer[stop : stop + min(tail, self.limit)])
        self._partial_cut += max(tail - self.limit, 0)
        if not stop:
            return []
        return Lines(buffer, 0, memoryview(ends).cast("q"), memoryview(sizes).cast("q"), base)

    def _buffer(self, need: int, full: bool) -> bytearray:
        """A buffer of at least ``need`` bytes. While a backlog is read in full chunks, one of the last ones is
        used again once nothing refers to it (its lines are all sent and, as the producer does not copy them,
        all reported): a new one would be zeroed and faulted in, page by page, for every chunk. Two are kept,
        the batch in flight's and the one read meanwhile. A tailed file's small reads get a buffer of their
        size, not kept."""
        for spare in reversed(self._spares) if full else ():  # the last one first: its pages are warmest
            if len(spare) >= need and sys.getrefcount(spare) == 3:  # the list, this loop and the argument
                return spare
        return bytearray(max(need, self.chunk_bytes + self.limit) if full else need)

    def _multiline(self, data: bytes, records: list[Record]) -> None:
        keep = 1 if self.keep_newline else 0
        base = self._read_to - len(data)
        start = 0
        newline = data.find(b"\n")
        while newline >= 0:
            line = data[start : newline + keep]
            cut = 0
            if self._partial or self._partial_cut:
                line = self._partial + line
                cut, self._partial, self._partial_cut = self._partial_cut, b"", 0
            if len(line) - keep > self.limit:
                cut += len(line) - keep - self.limit
                line = line[: self.limit] + (b"\n" if keep else b"")
            self._add_line(line, base + newline + 1, records, cut)
            start = newline + 1
            newline = data.find(b"\n", start)
        self._hold(data, start)

    def _add_line(self, line: bytes, end: int, records: list[Record], cut: int) -> None:
        """Add a line (already cut to the limit by ``cut`` bytes) to the record it belongs to."""
        assert self._start is not None
        if self._message and self._start.search(line):
            records.append(self._close_message())
        if self._message and self._message_size + len(line) - 1 > self.limit:
            cut += len(line)  # a continuation line that does not fit is dropped whole
        else:
            self._message.append(line)
            self._message_size += len(line)
        self._count_cut(cut)
        self._message_end = end

    def _close_message(self) -> Record:
        record = Record(b"".join(self._message), self._message_end)
        self._message, self._message_size = [], 0
        self.position = record.next_offset
        return record

    def _hold(self, data: bytes, start: int) -> None:
        """Keep the unterminated tail, at most ``limit`` bytes of it."""
        tail = len(data) - start
        room = self.limit - len(self._partial)
        if tail <= room:
            self._partial += data[start:]
        else:
            self._partial += data[start : start + max(room, 0)]
            self._partial_cut += tail - max(room, 0)

    def _count_cut(self, cut: int) -> None:
        if cut:
            self.stats.truncated += 1
            self.stats.truncated_bytes += cut
