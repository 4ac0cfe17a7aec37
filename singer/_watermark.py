"""Watermarks: where each stream resumes, written so that a crash leaves the old or the new one, never neither.

One file per stream in the state directory, holding device, inode, the offset after the last record whose
whole batch was acknowledged, and a fingerprint of the file's first bytes, so a reused inode is not taken
for the file it replaced. The file has two fixed slots of ``SLOT_BYTES``; each holds a watermark as a JSON
line with a sequence number and a CRC32 of that line. A write goes to the slot that does not hold the
newest watermark, in place (``pwrite``), and is made durable with ``fdatasync`` on a descriptor kept open:
one flush of one block per batch. It is as crash-safe as writing a temporary file, fsyncing it, renaming it
and fsyncing the directory, for the same reason: the previous watermark is never touched while the next is
written. A write torn by a crash fails its CRC and the other slot, durable since its own ``fdatasync``,
is read; a finished write has the higher sequence number. The file's size never changes after it is made,
so ``fdatasync`` has no metadata to flush that reading it back needs. The file itself is made once, by the
temporary file, fsync, rename and directory fsync, with both slots in it.

Watermark files of the earlier format (one JSON object, ``<stream>.json``) are read, and replaced by the
first write.

The reference agent's watermark (``.<log>.<stream>`` beside the logs) is a Thrift ``LogPosition`` in
TJSONProtocol: ``{"1":{"rec":{"1":{"i64":INODE}}},"2":{"i64":OFFSET}}``; :func:`read_reference_watermark`
reads it so a host can move over without sending its logs again.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from psc.common.log import get_logger

_log = get_logger("singer.watermark")


@dataclass(frozen=True)
class Watermark:
    device: int
    inode: int
    offset: int
    fingerprint: str  # hex digest of the file's first ``fingerprint_bytes`` bytes
    fingerprint_bytes: int
    path: str  # where the file was when the watermark was written; informative only
    # The stream's last directory scan: the newest file's inode, and the inode of the file before it. Files
    # between that one and the newest, the newest unchanged, are copies: truncations while the agent was down.
    live_inode: int = 0
    last_copy_inode: int = 0
    # The inode the records of this file carry in ``_mid``, if not its own: a copy read on from where its
    # original (the live file, truncated since) was read, so a record sent again has its first id.
    mid_inode: int = 0


SLOT_BYTES = 4096  # a page: a write torn by a crash harms only its own slot
SUFFIX = ".wm"
LEGACY_SUFFIX = ".json"


class WatermarkStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, tuple[int, int]] = {}  # stream -> (open descriptor, sequence of the newest slot)
        self._sequence: dict[str, int] = {}  # streams loaded from a file of two slots: the newest's sequence

    def path_for(self, stream: str) -> Path:
        return self.directory / f"{quote(stream, safe='')}{SUFFIX}"

    def load(self, stream: str) -> Watermark | None:
        """The stream's watermark; an unreadable one is set aside as ``.bad`` (and logged), giving None."""
        path = self.path_for(stream)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return self._load_legacy(stream)
        slots = [_parse_slot(raw[i : i + SLOT_BYTES]) for i in (0, SLOT_BYTES)]
        valid = [slot for slot in slots if slot is not None]
        if not valid:
            self._set_aside(stream, path, "no slot holds a watermark with a matching checksum")
            return None
        sequence, mark = max(valid, key=lambda slot: slot[0])
        self._sequence[stream] = sequence
        return mark

    def saved(self) -> dict[str, Watermark]:
        """Every stream's watermark in the directory, by stream."""
        marks = {}
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            mark = self.load(unquote(path.stem))
            if mark is not None:
                marks[unquote(path.stem)] = mark
        return marks

    def _load_legacy(self, stream: str) -> Watermark | None:
        path = self.path_for(stream).with_suffix(LEGACY_SUFFIX)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return _watermark(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            self._set_aside(stream, path, str(exc))
            return None

    @staticmethod
    def _set_aside(stream: str, path: Path, error: str) -> None:
        bad = path.with_suffix(".bad")
        os.replace(path, bad)
        _log.error("watermark unreadable, set aside", stream=stream, path=str(bad), error=error)

    def save(self, stream: str, watermark: Watermark) -> None:
        """Durable when it returns: the next slot written in place and flushed, or the file made."""
        held = self._files.get(stream)
        if held is None and stream in self._sequence:
            try:
                held = (os.open(self.path_for(stream), os.O_RDWR), self._sequence[stream])
            except FileNotFoundError:
                held = None
        if held is None:
            self._create(stream, watermark)
            return
        fd, sequence = held
        self._files[stream] = held  # kept if the write fails: the next one goes to the same slot
        sequence += 1
        os.pwrite(fd, _slot(sequence, watermark), (sequence % 2) * SLOT_BYTES)
        os.fdatasync(fd)
        self._files[stream] = (fd, sequence)

    def _create(self, stream: str, watermark: Watermark) -> None:
        """The file with the watermark in its first slot and an empty second one: written to a temporary
        file, fsynced, renamed, and the directory fsynced."""
        path = self.path_for(stream)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, _slot(0, watermark) + bytes(SLOT_BYTES))
            os.fsync(fd)
            os.replace(tmp, path)
            self._fsync_directory()
        except BaseException:
            os.close(fd)
            raise
        self._files[stream] = (fd, 0)
        self._sequence[stream] = 0
        legacy = path.with_suffix(LEGACY_SUFFIX)
        if legacy.exists():  # the new file is durable first: a crash here leaves both, and the new one is read
            legacy.unlink()
            self._fsync_directory()

    def _fsync_directory(self) -> None:
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def close(self, stream: str) -> None:
        """Let go of the stream's open file (its watermark stays on disk)."""
        held = self._files.pop(stream, None)
        if held is not None:
            os.close(held[0])

    def remove(self, stream: str) -> None:
        self.close(stream)
        self._sequence.pop(stream, None)
        self.path_for(stream).unlink(missing_ok=True)
        self.path_for(stream).with_suffix(LEGACY_SUFFIX).unlink(missing_ok=True)


def _slot(sequence: int, watermark: Watermark) -> bytes:
    """One slot: ``{JSON} CRC32\n``, the JSON with the sequence number, padded with NUL to ``SLOT_BYTES``."""
    body = json.dumps({"sequence": sequence, **asdict(watermark)}, sort_keys=True).encode()
    line = b"%s %08x\n" % (body, zlib.crc32(body))
    if len(line) > SLOT_BYTES:
        raise ValueError(f"watermark of {len(line)} bytes does not fit a {SLOT_BYTES}-byte slot (path too long?)")
    return line.ljust(SLOT_BYTES, b"\0")


def _parse_slot(data: bytes) -> tuple[int, Watermark] | None:
    """(sequence, watermark) of a slot, or None if it is empty, torn or otherwise not what was written."""
    body, _, rest = data.partition(b"\n")[0].rpartition(b" ")
    try:
        if not body or int(rest, 16) != zlib.crc32(body):
            return None
        fields = json.loads(body)
        return int(fields["sequence"]), _watermark(fields)
    except (ValueError, KeyError, TypeError):
        return None


def _watermark(fields: dict[str, Any]) -> Watermark:
    return Watermark(
        device=int(fields["device"]),
        inode=int(fields["inode"]),
        offset=int(fields["offset"]),
        fingerprint=str(fields["fingerprint"]),
        fingerprint_bytes=int(fields["fingerprint_bytes"]),
        path=str(fields["path"]),
        live_inode=int(fields.get("live_inode", 0)),
        last_copy_inode=int(fields.get("last_copy_inode", 0)),
        mid_inode=int(fields.get("mid_inode", 0)),
    )


class ReferenceWatermarkError(ValueError):
    """The reference agent's watermark file is not a LogPosition in TJSONProtocol."""


def read_reference_watermark(path: Path) -> tuple[int, int]:
    """``(inode, offset)`` from the reference agent's watermark file."""
    try:
        doc = json.loads(path.read_bytes())
        inode = doc["1"]["rec"]["1"]["i64"]
        offset = doc["2"]["i64"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ReferenceWatermarkError(f"{path}: not a reference watermark (Thrift JSON LogPosition): {exc}") from None
    if not isinstance(inode, int) or not isinstance(offset, int) or offset < 0:
        raise ReferenceWatermarkError(f"{path}: inode and offset must be integers, got {inode!r} and {offset!r}")
    return inode, offset
