"""`file:///dir`: objects as files under a local directory, the embedded default."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import SplitResult, unquote

from memq._errors import ObjectNotFoundError, StorageError
from memq._format import Notification
from memq.storage.base import Buffer, StorageHandler, register_storage

__all__ = ["FileStorage"]

_IOV_MAX = 1024  # buffers per writev on Linux


@register_storage("file")
class FileStorage(StorageHandler):
    """Each object is one file `<root>/<key>`, written to a temporary name, fsynced, then renamed into place."""

    def __init__(self, root: str | os.PathLike[str], prefix: str = "") -> None:
        super().__init__(prefix)
        self.root = Path(root).resolve()

    @classmethod
    def from_url(cls, url: SplitResult, options: Mapping[str, str]) -> FileStorage:
        if url.netloc not in ("", "localhost"):
            raise StorageError(f"file URL {url.geturl()!r} names host {url.netloc!r}; write file:///absolute/dir")
        path = unquote(url.path)
        if not path.startswith("/"):
            raise StorageError(f"file URL {url.geturl()!r} needs an absolute path: file:///absolute/dir")
        if unknown := set(options) - {"prefix"}:
            raise StorageError(f"file storage takes no option(s) {sorted(unknown)}")
        return cls(path, options.get("prefix", ""))

    @property
    def url(self) -> str:
        return f"file://{self.root}"

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise StorageError(f"invalid object key {key!r}")
        return self.root.joinpath(*parts)

    def put(self, key: str, parts: Sequence[Buffer]) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            try:
                try:
                    _write_all(fd, parts)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(temporary, path)
            except BaseException:
                os.unlink(temporary)
                raise
            _fsync_directory(path.parent)
        except OSError as exc:
            raise StorageError(f"cannot write object: {exc}", key) from exc

    def read(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError(f"invalid range start={start} length={length}")
        try:
            with self._path(key).open("rb") as source:
                source.seek(start)
                return source.read(length)
        except FileNotFoundError:
            raise ObjectNotFoundError("no such object", key) from None
        except OSError as exc:
            raise StorageError(f"cannot read object: {exc}", key) from exc

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFoundError("no such object", key) from None
        except OSError as exc:
            raise StorageError(f"cannot stat object: {exc}", key) from exc

    def notification(
        self, key: str, *, topic: str, header_size: int, messages_size: int, message_count: int, attempts: int
    ) -> Notification:
        return Notification(
            topic=topic,
            header_size=header_size,
            messages_size=messages_size,
            message_count=message_count,
            path=str(self._path(key)),
            attempts=attempts,
        )

    def key_of(self, notification: Notification) -> str:
        if notification.path is None:
            raise StorageError(f"{notification.location} is not a file; file storage at {self.root} cannot read it")
        path = Path(notification.path)
        if not path.is_absolute() or not path.is_relative_to(self.root):
            raise StorageError(f"{notification.path} lies outside file storage at {self.root}")
        return path.relative_to(self.root).as_posix()


def _write_all(fd: int, parts: Sequence[Buffer]) -> None:
    """Write the concatenation of ``parts`` with as few system calls as the kernel allows (one, usually)."""
    views = [memoryview(part).cast("B") for part in parts if len(part)]
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first : first + _IOV_MAX])
        while first < len(views) and written >= len(views[first]):
            written -= len(views[first])
            first += 1
        if written:
            views[first] = views[first][written:]


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
