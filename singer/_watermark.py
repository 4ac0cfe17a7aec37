"""Watermarks: where each stream resumes, written so that a crash leaves the old or the new one, never neither.

One JSON file per stream in the state directory: device, inode, the offset after the last record whose
whole batch was acknowledged, and a fingerprint of the file's first bytes, so a reused inode is not taken
for the file it replaced. Written to a temporary file, fsynced, renamed over the old one, and the directory
fsynced so the rename itself survives a power loss.

The reference agent's watermark (``.<log>.<stream>`` beside the logs) is a Thrift ``LogPosition`` in
TJSONProtocol: ``{"1":{"rec":{"1":{"i64":INODE}}},"2":{"i64":OFFSET}}``; :func:`read_reference_watermark`
reads it so a host can move over without sending its logs again.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

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


class WatermarkStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, stream: str) -> Path:
        return self.directory / f"{quote(stream, safe='')}.json"

    def load(self, stream: str) -> Watermark | None:
        """The stream's watermark; an unreadable one is set aside as ``.bad`` (and logged), giving None."""
        path = self.path_for(stream)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            fields = json.loads(raw)
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
        except (ValueError, KeyError, TypeError) as exc:
            bad = path.with_suffix(".bad")
            os.replace(path, bad)
            _log.error("watermark unreadable, set aside", stream=stream, path=str(bad), error=str(exc))
            return None

    def save(self, stream: str, watermark: Watermark) -> None:
        path = self.path_for(stream)
        tmp = path.with_suffix(".tmp")
        data = json.dumps(asdict(watermark), sort_keys=True).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def remove(self, stream: str) -> None:
        self.path_for(stream).unlink(missing_ok=True)


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
