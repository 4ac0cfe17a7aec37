"""Text logs: only ``\\n`` ends a line; optional multi-line records that start where a regex matches.

Lines are cut out of large chunks in bulk: ``bytes.splitlines`` (or ``split``) and their end offsets summed
in C, so the Python work per line is building its record. Chunks with a line over the limit (or a ``\r``,
which ``splitlines`` also cuts at) take a loop of ``bytes.find``. A line longer than the maximum is cut to it
(the rest is read and dropped, never held in memory) and counted. An unterminated last line is held until
its newline arrives or the file is finished (rotated).
"""

from __future__ import annotations

import itertools
import re
from itertools import repeat

from singer._records import Reader, Record

_plus_one = (1).__add__
_new_tuple = tuple.__new__


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

    def read(self) -> list[Record]:
        data = self._pread()
        records: list[Record] = []
        if data:
            if self._start is None:
                self._lines(data, records)
            else:
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

    def _lines(self, data: bytes, records: list[Record]) -> None:
        """One record per line: the fast path."""
        keep = 1 if self.keep_newline else 0
        limit = self.limit
        start = 0
        base = self._read_to - len(data)  # file offset of data[0]
        newline = data.find(b"\n")
        if newline >= 0 and (self._partial or self._partial_cut):
            line = self._partial + data[: newline + keep]
            self._partial = b""
            start = newline + 1
            cut, self._partial_cut = self._partial_cut, 0
            if len(line) - keep > limit:
                cut += len(line) - keep - limit
                line = line[:limit] + (b"\n" if keep else b"")
            self._count_cut(cut)
            records.append(Record(line, base + start))
            newline = data.find(b"\n", start)
        last = data.rfind(b"\n")
        if newline >= 0 and self._bulk(data[start : last + 1], base + start, records):
            start, newline = last + 1, -1
        append = records.append
        while newline >= 0:
            if newline - start > limit:
                self._count_cut(newline - start - limit)
                append(Record(data[start : start + limit] + (b"\n" if keep else b""), base + newline + 1))
            else:
                append(Record(data[start : newline + keep], base + newline + 1))
            start = newline + 1
            newline = data.find(b"\n", start)
        if records:
            self.position = records[-1].next_offset
        self._hold(data, start)

    def _bulk(self, body: bytes, base: int, records: list[Record]) -> bool:
        """Records of whole lines (``body`` ends with a newline), split in one call; False, with nothing added,
        if a line is over the limit or the split would also cut at ``\r``."""
        if self.keep_newline:
            if b"\r" in body:
                return False  # bytes.splitlines also ends lines at \r
            lines = body.splitlines(keepends=True)
            ends = itertools.accumulate(map(len, lines), initial=base)
            over = max(map(len, lines)) - 1 > self.limit
        else:
            lines = body[:-1].split(b"\n")
            ends = itertools.accumulate(map(_plus_one, map(len, lines)), initial=base)
            over = max(map(len, lines)) > self.limit
        if over:
            return False
        next(ends)  # the start of the first line
        # Record(line, end) without a Python call each: tuple.__new__ fills every field, in C.
        records.extend(map(_new_tuple, repeat(Record), zip(lines, ends, repeat(None), repeat(None))))
        return True

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
