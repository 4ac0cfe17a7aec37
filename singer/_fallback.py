"""Pure-Python versions of :mod:`singer._speedups`, for builds without a C compiler."""

from __future__ import annotations

from array import array


def split(
    buffer: bytearray | memoryview, start: int, keep_newline: bool, limit: int, first_cut: int
) -> tuple[int, bytes, bytes, int, int]:
    """The lines of ``buffer[start:]`` that a newline ends: (stop, ends, sizes, truncated, truncated_bytes).

    ``ends`` holds, as int64s, where each line ends (the byte after its newline) and ``sizes`` the running
    total of value sizes: line i's value is ``buffer[ends[i-1]:ends[i-1] + size_i]`` (from ``start`` for the
    first). A line over ``limit`` bytes is cut to it; a kept newline is written over the byte after the cut,
    so the value stays a slice. ``first_cut`` bytes were already cut from the first line. ``stop`` is where
    the unterminated tail begins."""
    keep = 1 if keep_newline else 0
    ends, sizes = array("q"), array("q")
    line, total, cut = start, 0, first_cut
    truncated = truncated_bytes = 0
    find = bytes(buffer).find  # a copy: a memoryview cannot search; cuts are written to the buffer itself
    newline = find(b"\n", line)
    while newline >= 0:
        length = newline - line
        value = length + keep
        if length > limit:
            cut += length - limit
            value = limit + keep
            if keep:
                buffer[line + limit] = 0x0A
        if cut:
            truncated += 1
            truncated_bytes += cut
            cut = 0
        line = newline + 1
        total += value
        ends.append(line)
        sizes.append(total)
        newline = find(b"\n", line)
    return line, ends.tobytes(), sizes.tobytes(), truncated, truncated_bytes
