"""Files of a stream: discovery, identity, and following them through rotation.

A stream is the files of one directory whose names fully match a regex; rotated siblings are ordered oldest
first (modification time, then the longer name, then the name that sorts last: ``app.log.2`` before
``app.log.1`` before ``app.log``). A file is identified by (device, inode) plus a fingerprint of its first
bytes, so a reused inode is not mistaken for the file it replaced.

Rotation:

- **rename** (logrotate ``create``): the open descriptor keeps reading the renamed file to its end, and only
  then does the stream move to the next file, once the renamed file has not been written for
  ``rotation_grace_s`` (a writer may still append to it until it reopens the path). Nothing is lost. An
  unterminated last line or a partial frame of a rotated file is given ``rotation_grace_s`` to complete
  before it is emitted (text) or dropped (thrift).
- **copytruncate**: detected when the file shrinks below what was read, or its first bytes or the bytes just
  before the read position change; while an older file is read, by a copy appearing beside a newest file
  that keeps its identity; at start-up, from the watermark. If the copy (a sibling with the same
  fingerprint, long enough) is found, the unread tail is read from the copy, then the live file from its
  start. What copytruncate can lose by its nature: lines written between the copy and the truncation are in
  neither file; and if the copy is not found (compressed at once, moved elsewhere) everything after the last
  read position up to the truncation. Both are counted: ``copytruncate`` events, and
  ``copytruncate_lost_bytes`` for the truncations of the file being read: the bytes the file was seen to
  hold beyond the copy (or, without a copy, beyond what was read), or, if more, an estimate of what was
  written between the copy and the truncation (the file's write rate times the time since the copy's last
  write, less what the truncated file holds again). ``bytes_unrecoverable`` is the part lost because no copy
  was found. Prefer ``create`` rotation.
- **deleted** files are read to their end and then closed, so no descriptor is leaked.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from psc.common.log import get_logger
from singer._records import Reader, Record
from singer._watermark import Watermark

_log = get_logger("singer.files")

FINGERPRINT_BYTES = 1024
CONTENT_ID_BYTES = 64
TAIL_CHECK_BYTES = 64  # the bytes just before the read position, checked with the fingerprint

ReaderFactory = Callable[[int, int], Reader]


@dataclass(frozen=True)
class LogFile:
    path: Path
    device: int
    inode: int
    size: int
    mtime_ns: int

    @property
    def identity(self) -> tuple[int, int]:
        return (self.device, self.inode)


def stream_directories(dir_glob: str) -> list[Path]:
    """Directories matching the glob, sorted."""
    return sorted(Path(p) for p in glob.glob(dir_glob) if os.path.isdir(p))


SCAN_ATTEMPTS = 5


def list_stream(directory: Path, pattern: re.Pattern[str]) -> list[LogFile]:
    """The stream's files in ``directory``, oldest first; dot-files (our own or the reference's state) excluded.

    logrotate renames every rotated file at each rotation (``app.log.1`` to ``app.log.2``, ...): a listing
    taken meanwhile can miss a file (its old name gone when it is looked at, or its new name put where the
    listing had passed already), and a file left out is taken for gone or, once back, for a new file to
    read: the current file lost track of, files read already read again. So the directory is listed until
    two listings in a row, each of whose names could all be looked at, hold the same files (a few tries at
    most); a file met under two names is listed once."""
    files: list[LogFile] = []
    previous: set[tuple[int, int]] | None = None
    for attempt in range(SCAN_ATTEMPTS):
        files, complete = _scan(directory, pattern)
        found = {f.identity for f in files}
        if complete and found == previous:
            break
        previous = found if complete else None
        if attempt:
            time.sleep(0.001 * attempt)  # a rotation under way: give it a moment to finish
    unique = {f.identity: f for f in files}
    files = list(unique.values())
    files.sort(key=lambda f: f.path.name, reverse=True)
    files.sort(key=lambda f: (f.mtime_ns, -len(f.path.name)))
    return files


def _scan(directory: Path, pattern: re.Pattern[str]) -> tuple[list[LogFile], bool]:
    """The stream's files, and whether every name listed could be looked at (none renamed meanwhile)."""
    files = []
    complete = True
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return [], True
    for entry in entries:
        if entry.name.startswith(".") or not pattern.fullmatch(entry.name):
            continue
        try:
            st = entry.stat()
        except FileNotFoundError:  # renamed or deleted between listing and stat
            complete = False
            continue
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            files.append(LogFile(Path(entry.path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return files, complete


def bytes_after(files: list[LogFile], mark: Watermark | None) -> int:
    """Lag: the bytes of the stream's files after the watermark (all of them without one, or if its file is gone)."""
    ids = [f.identity for f in files]
    if mark is None or (mark.device, mark.inode) not in ids:
        return sum(f.size for f in files)
    index = ids.index((mark.device, mark.inode))
    return max(files[index].size - mark.offset, 0) + sum(f.size for f in files[index + 1 :])


def fingerprint(fd: int, nbytes: int = FINGERPRINT_BYTES) -> tuple[str, int]:
    """Digest of the first ``nbytes`` bytes (fewer if the file is shorter) and how many were hashed."""
    data = os.pread(fd, nbytes, 0)
    return hashlib.sha256(data).hexdigest(), len(data)


@dataclass
class OpenFile:
    """A file of the stream held open: its identity, fingerprint and reader."""

    path: Path
    fd: int
    device: int
    inode: int
    fingerprint: str
    fingerprint_bytes: int
    reader: Reader
    head: bytes = b""  # the first bytes (up to CONTENT_ID_BYTES), taken with the fingerprint, for ``_fid``
    last_growth: float = field(default_factory=time.monotonic)
    last_size: int = 0  # the largest size seen with this content
    watched: tuple[float, int, float] = (0.0, 0, 0.0)  # (opened at, size then, last_size seen at): the write rate
    tail: tuple[int, bytes] = (0, b"")  # (offset, bytes) just before the last read position, as read
    mid_inode: int = 0  # the inode ``_mid`` names: the original's for a copy read on from it, else this one's
    first: bytes = b""  # the bytes the fingerprint was taken of: a copy shorter than them still shows as ours
    _content_id: bytes | None = None

    @property
    def identity(self) -> tuple[int, int]:
        return (self.device, self.inode)

    def watermark(self, offset: int) -> Watermark:
        mid_inode = self.mid_inode if self.mid_inode != self.inode else 0
        return Watermark(
            self.device, self.inode, offset, self.fingerprint, self.fingerprint_bytes, str(self.path),
            mid_inode=mid_inode,
        )  # fmt: skip

    def content_id(self, upto: int) -> bytes:
        """8 bytes naming this generation of the file: a digest of its first ``CONTENT_ID_BYTES`` bytes, or of
        its first ``upto`` if that is fewer. Bytes before a record never change while it can be re-sent, so a
        record always gets the same id; with ``_mid`` it tells records apart across copytruncate and a
        reused inode, where the offsets start again. Taken from ``head``, the bytes checked with the
        fingerprint when the records were read, never from the file at send time: by then it may have been
        truncated and rewritten, and old records would carry the new content's id."""
        head = self.head[:upto]
        if len(head) == CONTENT_ID_BYTES and self._content_id is not None:
            return self._content_id
        digest = hashlib.sha256(head).digest()[:8]
        if len(head) == CONTENT_ID_BYTES:
            self._content_id = digest
        return digest

    def take_fingerprint(self, data: bytes) -> None:
        """Fingerprint and head from the file's first bytes ``data``, read in one go."""
        self.fingerprint, self.fingerprint_bytes = hashlib.sha256(data).hexdigest(), len(data)
        self.first = data
        if len(self.head) < CONTENT_ID_BYTES:
            self.head = data[:CONTENT_ID_BYTES]

    def tail_intact(self) -> bool:
        """Whether the bytes just before the last read position are still those that were read: a truncation
        followed by new content past that position, whose first bytes happen to match, fails here."""
        offset, data = self.tail
        return not data or os.pread(self.fd, len(data), offset) == data

    def read_tail(self) -> tuple[int, bytes]:
        """The bytes just before the reader's position, to check later with ``tail_intact``."""
        end = self.reader.position
        start = max(end - TAIL_CHECK_BYTES, 0)
        return start, os.pread(self.fd, end - start, start)

    def write_rate(self) -> float:
        """Bytes per second the file grew by while it was watched (0 until watched for a while)."""
        opened_at, opened_size, seen_at = self.watched
        return (self.last_size - opened_size) / (seen_at - opened_at) if seen_at - opened_at >= 0.1 else 0.0

    def same_content(self, fd: int) -> bool:
        """Whether ``fd`` starts with the bytes this file's fingerprint was taken of."""
        return fingerprint(fd, self.fingerprint_bytes)[0] == self.fingerprint

    def close(self) -> None:
        os.close(self.fd)


def copytruncate_gap(write_rate: float, since_copy_s: float, written_after: int) -> int:
    """Bytes lost between logrotate's copy and its truncation, estimated: at ``write_rate`` bytes/s,
    ``since_copy_s`` seconds passed since the copy's last write, and ``written_after`` bytes are in the file
    since the truncation; the rest went into the file between the copy and the truncation."""
    return max(int(write_rate * since_copy_s) - written_after, 0)


@dataclass
class TailStats:
    copytruncate: int = 0  # truncations detected
    bytes_unrecoverable: int = 0  # unread bytes of a truncated file whose copy was not found
    copytruncate_lost_bytes: int = 0  # seen in a truncated file and in neither the copy nor what was read
    skipped_bytes: int = 0  # unreadable tails of rotated files (a corrupt or torn frame)
    files_opened: int = 0
    files_closed: int = 0
    open_errors: int = 0


class StreamTail:
    """Follows one stream's files from a watermark; ``read`` returns records of one file at a time.

    Files whose records may still be in flight stay open (``release`` closes them once a watermark has
    moved past them), so a rewind after a failed delivery can always go back, even to a deleted file.
    """

    def __init__(
        self,
        directory: Path,
        pattern: re.Pattern[str],
        make_reader: ReaderFactory,
        start: Watermark | None,
        rotation_grace_s: float = 2.0,
    ) -> None:
        self.directory = directory
        self.pattern = pattern
        self.make_reader = make_reader
        self.rotation_grace_s = rotation_grace_s
        self.stats = TailStats()
        self.current: OpenFile | None = None
        self.previous: list[OpenFile] = []  # finished files, oldest first, kept open until released
        self.last_error: str | None = None
        self._start = start
        # Files read to their end, by identity, with their fingerprint (a reused inode is a new file).
        self._finished: dict[tuple[int, int], tuple[str, int]] = {}
        # The last scan: the newest file, and the files with bytes. A file that appears with bytes while the
        # newest keeps its identity is a copy of it: logrotate copied and truncated the live file.
        self._newest: tuple[int, int] | None = None
        self._listed: set[tuple[int, int]] = set()
        self._counted: set[tuple[int, int]] = set()  # copies counted by a scan, among the files listed
        self._last_copy = 0  # the inode of the file before the newest, at the last scan
        self.scan_changed = False  # the newest file or the one before it changed since the watermark was written

    # --- reading ---------------------------------------------------------------------------------

    def read(self, look_around: bool = True) -> tuple[OpenFile | None, Sequence[Record]]:
        """The next records and the file they come from. ``look_around`` allows a directory scan (rotation,
        truncation, new files), which the caller rate-limits when nothing tells it the directory changed."""
        if self.current is None and (not look_around or not self._open_first()):
            return None, []
        current = self.current
        assert current is not None
        if self._rewritten(current):  # checked before new bytes are taken as ours
            self._truncated(current)
            if self.current is None:
                return None, []
            current = self.current
        before = current.reader.position
        records = current.reader.read()
        tail = current.read_tail() if records else current.tail  # taken before the check that vouches for it
        if records and self._rewritten(current):
            # Truncated while it was read: what was read may be the new content at old offsets. Drop it.
            self._truncated(current, before)
            return self.current, []
        if records:
            current.tail = tail
            current.last_growth = time.monotonic()
            # A file opened (nearly) empty has a fingerprint of few bytes, which a later copytruncate would
            # still match: cover the bytes just read at once, not only at the next watermark save. Only what
            # was read: bytes written after a copy was taken would stop the copy being recognised as ours.
            self.refresh_fingerprint(current.reader.position)
            return current, records
        if current.reader.error is not None:
            self.last_error = f"{current.path}: {current.reader.error}"
        if look_around and (current.reader.eof or current.reader.error is not None):
            return current, self._check_file(current)
        return current, []

    def _check_file(self, current: OpenFile) -> Sequence[Record]:
        """At the end of the current file: truncated? rotated? deleted? Returns records a rotation releases."""
        try:
            st = os.fstat(current.fd)
        except OSError:
            return []
        reader = current.reader
        grew = st.st_size > current.last_size
        if self._rewritten(current, st.st_size):
            self._truncated(current)
            return []
        if grew:
            current.last_growth = time.monotonic()
        files = list_stream(self.directory, self.pattern)
        self._count_copies(files)
        newer = self._after(current, files)
        if newer is None:
            if st.st_nlink == 0 and not reader.held_bytes and self._idle(current):
                self._finish(current)  # deleted and read to its end: release the descriptor
            return []
        if reader.error is None and (not self._quiet(current, st) or (reader.held_bytes and not self._idle(current))):
            # A renamed file is still written by a writer that has not reopened the path yet (it opened the
            # file just before the rename, or waits for its HUP); its last line or frame may be completing.
            return []
        records = reader.finish()
        if reader.error is not None or reader.held_bytes:
            self.stats.skipped_bytes += max(st.st_size - reader.position, 0)
        self._finish(current)
        self._open(newer, 0)
        return records

    def _count_copies(self, files: list[LogFile]) -> None:
        """Count the truncations seen only through their copies: while an older file is read (the agent is
        behind), the live file is copied and truncated, perhaps several times, and each copy is simply the
        next file to read. What was written between a copy and its truncation is not estimated for these."""
        if not files:
            return
        newest = files[-1].identity
        if newest == self._newest:
            copies = [f for f in files[:-1] if f.size > 0 and f.identity not in self._listed]
            if copies:
                self.stats.copytruncate += len(copies)
                self._counted.update(f.identity for f in copies)
                _log.warning(
                    "copies of the live file found (copytruncate)", path=str(files[-1].path), count=len(copies),
                    copies=[str(f.path) for f in copies],
                )  # fmt: skip
        self._note_listing(files)

    def _note_listing(self, files: list[LogFile]) -> None:
        newest = files[-1].identity if files else None
        last_copy = files[-2].inode if len(files) > 1 else 0
        self.scan_changed |= (newest, last_copy) != (self._newest, self._last_copy)
        self._newest, self._last_copy = newest, last_copy
        self._listed = {f.identity for f in files if f.size > 0}
        self._counted &= self._listed

    def stamp(self, mark: Watermark) -> Watermark:
        """``mark`` with what the last scan saw, so a restart can count the copies made while stopped."""
        if self._newest is None or self._newest[0] != mark.device:
            return mark
        return replace(mark, live_inode=self._newest[1], last_copy_inode=self._last_copy)

    def _count_copies_since(self, files: list[LogFile], start: Watermark) -> None:
        """At start-up: copies of the live file made after the last scan the watermark records, the newest
        file unchanged (copytruncate while the agent was stopped or had not looked yet). Copies keep their
        order (by modification time), so they are the files after the one that was last before the newest."""
        if not files or not start.live_inode or files[-1].identity != (start.device, start.live_inode):
            return
        inodes = [f.inode for f in files]
        if start.last_copy_inode not in inodes:
            return
        copies = [f for f in files[inodes.index(start.last_copy_inode) + 1 : -1] if f.size > 0]
        if copies:
            self.stats.copytruncate += len(copies)
            _log.warning(
                "copies of the live file made while stopped (copytruncate)", path=str(files[-1].path),
                count=len(copies),
            )  # fmt: skip

    def _quiet(self, current: OpenFile, st: os.stat_result) -> bool:
        """Not written for ``rotation_grace_s``: a rotated file may be left for the next one. A modification
        time in the future (a skewed clock) says nothing: then the last growth the agent saw counts."""
        age = time.time() - st.st_mtime_ns / 1e9
        if age < 0:
            return time.monotonic() - current.watched[2] >= self.rotation_grace_s
        return age >= self.rotation_grace_s

    def _idle(self, current: OpenFile) -> bool:
        return time.monotonic() - current.last_growth >= self.rotation_grace_s

    def _after(self, current: OpenFile, files: list[LogFile]) -> LogFile | None:
        """The file that follows ``current`` in the stream, if any. A copy of ``current`` (copytruncate at
        work: same first bytes, another inode) is not a successor, whatever its modification time."""
        ids = [f.identity for f in files]
        if current.identity in ids:
            candidates = files[ids.index(current.identity) + 1 :]
        else:
            candidates = [f for f in files if not self._is_finished(f)]
        return next((f for f in candidates if not self._is_copy_of(current, f)), None)

    def _is_copy_of(self, current: OpenFile, f: LogFile) -> bool:
        """Whether ``f`` starts as ``current`` does, as far as both go: a copy, or one still being made (an
        empty file included: a new file is not worth leaving ``current`` for until it has bytes of its own)."""
        n = min(f.size, FINGERPRINT_BYTES)
        try:
            fd = os.open(f.path, os.O_RDONLY)
        except OSError:
            return False
        try:
            return os.pread(fd, n, 0) == os.pread(current.fd, n, 0)
        finally:
            os.close(fd)

    def _is_finished(self, f: LogFile) -> bool:
        known = self._finished.get(f.identity)
        if known is None:
            return False
        try:
            fd = os.open(f.path, os.O_RDONLY)
        except OSError:
            return True
        try:
            return fingerprint(fd, known[1]) == known
        finally:
            os.close(fd)

    def _rewritten(self, current: OpenFile, size: int | None = None) -> bool:
        """Whether the file shrank below what was read, or its first bytes or the bytes just before the read
        position changed (copytruncate)."""
        if size is None:
            try:
                size = os.fstat(current.fd).st_size
            except OSError:
                return False
        reader = current.reader
        if size < reader.position + reader.held_bytes or not current.same_content(current.fd):
            return True
        if not current.tail_intact():
            return True
        self._seen(current, size)
        return False

    @staticmethod
    def _seen(current: OpenFile, size: int) -> None:
        """Remember the largest size the file had with its content unchanged: if a copytruncate follows, the
        bytes past the copy's end are known to be lost."""
        if size > current.last_size:
            current.last_size = size
            current.watched = (*current.watched[:2], time.monotonic())

    def _truncated(self, current: OpenFile, position: int | None = None) -> None:
        """copytruncate (or any truncation): finish the unread tail from the copy if it exists, then restart.
        ``position`` is the last offset known to hold the old content (default: the reader's)."""
        position = current.reader.position if position is None else position
        files = list_stream(self.directory, self.pattern)
        copy = self._find_copy(current, position, files)
        before = self.stats.copytruncate
        self._count_copies(files)  # copies no scan has seen yet, this truncation's among them
        if self.stats.copytruncate == before and (copy is None or copy.identity not in self._counted):
            self.stats.copytruncate += 1  # its copy is gone, or was not listed as new (a first scan)
        counted = self.stats.copytruncate - before
        lost = max(current.last_size - (position if copy is None else copy.size), 0)
        if copy is not None:
            lost = max(lost, self._gap_estimate(current, copy))
        self.stats.copytruncate_lost_bytes += lost
        _log.warning(
            "file truncated while read (copytruncate)", path=str(current.path), read_to=position,
            size_seen=current.last_size, copy=str(copy.path) if copy else None, lost_bytes=lost, count=counted,
        )  # fmt: skip
        self._finish(current)
        if copy is not None:
            self._counted.add(copy.identity)
            self._open(copy, position, mid_inode=current.mid_inode)  # its records keep the ids they had
        else:
            self.stats.bytes_unrecoverable += lost
            live = next((f for f in files if f.identity == current.identity), None)
            target = self._copy_after_short_copy(current, position, files) or live
            if target is not None:
                self._open(target, 0)

    @staticmethod
    def _gap_estimate(current: OpenFile, copy: LogFile) -> int:
        """Bytes written between the copy's last write and the truncation, at the rate the file grew: what
        was written since the copy, less what the truncated file holds now."""
        try:
            size_now = os.fstat(current.fd).st_size
        except OSError:
            return 0
        since_copy_s = max(time.time() - copy.mtime_ns / 1e9, 0.0)
        return copytruncate_gap(current.write_rate(), since_copy_s, size_now)

    def _copy_after_short_copy(self, current: OpenFile, position: int, files: list[LogFile]) -> LogFile | None:
        """Without a copy that reaches ``position``: a file after a shorter copy of ``current`` (one read to
        its end and past it, before the truncation), other than ``current``. It is the copy of a later
        truncation: what the live file got after the first one, missed while the agent did not look. Read it
        (and the rest, in order) before the live file, or those lines would be skipped."""
        for index, candidate in enumerate(files):
            if candidate.identity == current.identity or candidate.size >= position:
                continue
            if candidate.size > 0 and self._starts_as(current, candidate, min(candidate.size, len(current.first))):
                later = [f for f in files[index + 1 :] if f.identity != current.identity and f.size > 0]
                return later[0] if later else None
        return None

    @staticmethod
    def _starts_as(current: OpenFile, candidate: LogFile, nbytes: int | None = None) -> bool:
        """Whether ``candidate`` starts with the bytes ``current``'s fingerprint covers (or its first ``nbytes``)."""
        try:
            fd = os.open(candidate.path, os.O_RDONLY)
        except OSError:
            return False
        try:
            if nbytes is None:
                return current.same_content(fd)
            return os.pread(fd, nbytes, 0) == current.first[:nbytes]
        finally:
            os.close(fd)

    def _find_copy(self, current: OpenFile, position: int, files: list[LogFile]) -> LogFile | None:
        for candidate in files:
            if (
                candidate.identity != current.identity
                and candidate.size >= position
                and self._starts_as(current, candidate)
            ):
                return candidate
        return None

    # --- opening and closing ---------------------------------------------------------------------

    def _open_first(self) -> bool:
        files = list_stream(self.directory, self.pattern)
        self._note_listing(files)  # what was there before this process looked is counted from the watermark
        if not files:
            return False
        start, self._start = self._start, None
        if start is not None:
            truncated_at = None  # where the watermark's file is, if it was truncated since
            for index, f in enumerate(files):
                if f.identity == (start.device, start.inode):
                    first_open = self.stats.files_opened == 0  # a rewind comes here too: counted already
                    if self._open(f, start.offset, start, start.mid_inode):
                        self._mark_finished(files[:index])
                        if first_open:
                            self._count_copies_since(files, start)
                        return True
                    self.stats.copytruncate += 1  # shorter than the watermark, or other first bytes
                    truncated_at = index
                    _log.warning(
                        "file truncated or replaced since its watermark (copytruncate)", path=str(f.path),
                        read_to=start.offset, size=f.size,
                    )  # fmt: skip
            for index, f in enumerate(files):  # moved or copied: found by content
                if f.size >= start.offset and self._open(f, start.offset, start, start.mid_inode or start.inode):
                    self._mark_finished(files[:index])
                    if truncated_at is not None and truncated_at > index + 1:
                        # The files between the copy and the truncated file are copies of it too: each is
                        # one more copytruncate while the agent was down.
                        later = truncated_at - index - 1
                        self.stats.copytruncate += later
                        _log.warning(
                            "more truncations since the watermark (copytruncate)", path=str(files[truncated_at].path),
                            count=later,
                        )  # fmt: skip
                    return True
            self._skip_short_copy(files, start)
        # No usable watermark: every file not yet read, oldest first, from its start.
        unread = next((f for f in files if not self._is_finished(f)), None)
        return unread is not None and self._open(unread, 0)

    def _skip_short_copy(self, files: list[LogFile], start: Watermark) -> None:
        """The watermark's file was truncated after its copy was made and read past the copy's end: the copy
        and every file before it were read. Without this, every file would be read again from the oldest."""
        for index in range(len(files) - 1, -1, -1):
            f = files[index]
            if f.identity == (start.device, start.inode):
                continue  # the truncated file itself, even if its new content starts as the old did
            try:
                fd = os.open(f.path, os.O_RDONLY)
            except OSError:
                continue
            try:
                same = fingerprint(fd, start.fingerprint_bytes)[0] == start.fingerprint
            finally:
                os.close(fd)
            if same and f.size < start.offset:
                self._mark_finished(files[: index + 1])
                _log.warning("watermark beyond its file's copy: resuming after the copy", copy=str(f.path))
                return

    def _mark_finished(self, files: list[LogFile]) -> None:
        for f in files:
            try:
                fd = os.open(f.path, os.O_RDONLY)
            except OSError:
                continue
            try:
                self._finished[f.identity] = fingerprint(fd)
            finally:
                os.close(fd)

    def _open(self, f: LogFile, offset: int, expect: Watermark | None = None, mid_inode: int = 0) -> bool:
        """Open ``f`` at ``offset``; with ``expect``, only if its first bytes match the watermark's. ``mid_inode``:
        the inode its records name in ``_mid`` (default its own)."""
        try:
            fd = os.open(f.path, os.O_RDONLY)
        except OSError as exc:
            self.stats.open_errors += 1
            self.last_error = f"{f.path}: cannot open: {exc.strerror}"
            return False
        st = os.fstat(fd)
        first = os.pread(fd, FINGERPRINT_BYTES, 0)  # one read: the bytes checked are the bytes fingerprinted
        if expect is not None:
            head = first[: expect.fingerprint_bytes]
            if hashlib.sha256(head).hexdigest() != expect.fingerprint or st.st_size < offset:
                os.close(fd)
                return False
        self.current = OpenFile(
            f.path, fd, st.st_dev, st.st_ino, "", 0, self.make_reader(fd, offset), last_size=st.st_size,
            watched=(time.monotonic(), st.st_size, time.monotonic()), mid_inode=mid_inode or st.st_ino,
        )  # fmt: skip
        self.current.take_fingerprint(first)
        self.stats.files_opened += 1
        self.last_error = None
        return True

    def _finish(self, current: OpenFile) -> None:
        self.previous.append(current)
        self.current = None
        self._finished[current.identity] = (current.fingerprint, current.fingerprint_bytes)
        if len(self._finished) > 1024:  # forget the oldest: long rotated away
            del self._finished[next(iter(self._finished))]

    def refresh_fingerprint(self, upto: int = FINGERPRINT_BYTES) -> None:
        """Extend a short fingerprint once the file has grown, so it covers up to ``upto`` bytes (at most
        ``FINGERPRINT_BYTES``). One read both checks the old bytes and takes the new ones, so a truncation
        between the two cannot slip new content into the fingerprint."""
        current = self.current
        n = min(upto, FINGERPRINT_BYTES)
        if current is None or current.fingerprint_bytes >= n:
            return
        data = os.pread(current.fd, n, 0)
        if hashlib.sha256(data[: current.fingerprint_bytes]).hexdigest() == current.fingerprint:
            current.take_fingerprint(data)

    def release(self, watermark: Watermark) -> None:
        """Close finished files that the watermark has moved past."""
        ids = [f.identity for f in self.previous]
        mark = (watermark.device, watermark.inode)
        index = ids.index(mark) if mark in ids else len(ids)
        for f in self.previous[:index]:
            f.close()
            self.stats.files_closed += 1
        self.previous = self.previous[index:]

    def rewind(self, watermark: Watermark | None) -> None:
        """Go back to ``watermark`` after a failed delivery: everything after it will be read again."""
        files = [*self.previous, *([self.current] if self.current else [])]
        target = None
        if watermark is not None:
            target = next((f for f in files if (f.device, f.inode) == (watermark.device, watermark.inode)), None)
        for f in files:
            if f is not target:
                self._finished.pop(f.identity, None)  # read again: everything after the watermark
                f.close()
                self.stats.files_closed += 1
        self.previous, self.current = [], None
        if target is None:
            self._start = watermark  # resolved by the next read, as at start-up
            return
        assert watermark is not None
        target.reader = self.make_reader(target.fd, watermark.offset)
        target.last_growth = time.monotonic()
        self.current = target

    def close(self) -> None:
        for f in [*self.previous, *([self.current] if self.current else [])]:
            f.close()
            self.stats.files_closed += 1
        self.previous, self.current = [], None

    @property
    def open_files(self) -> int:
        return len(self.previous) + (1 if self.current else 0)
