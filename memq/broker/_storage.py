"""How the broker stores objects: the storage handler named by a URL, driven from worker threads."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from memq._errors import StorageError
from memq._format import Notification, ObjectIndex

HOSTNAME = socket.gethostname()


class ObjectStore(Protocol):
    def object_key(self, topic: str, client_request_id: int, server_request_id: int, attempt: int) -> str: ...

    def put(self, key: str, parts: Sequence[bytes | memoryview]) -> None: ...

    def notification(self, topic: str, key: str, index: ObjectIndex, attempt: int) -> Notification: ...


class FileStore:
    """Objects as files under a directory: written to a temporary name, fsynced, then renamed into place."""

    def __init__(self, root: str | Path, prefix: str | None = None) -> None:
        self.root = Path(root).resolve()
        self.prefix = prefix

    def object_key(self, topic: str, client_request_id: int, server_request_id: int, attempt: int) -> str:
        shard = hashlib.md5(str(client_request_id).encode(), usedforsecurity=False).hexdigest()[:2]
        return f"{shard}/{self.prefix or topic}/{client_request_id}_{server_request_id}_{attempt}_{HOSTNAME}"

    def put(self, key: str, parts: Sequence[bytes | memoryview]) -> None:
        path = self.root / key
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                for part in parts:
                    out.write(part)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            raise StorageError(f"cannot write object: {exc.strerror}", str(path)) from exc

    def notification(self, topic: str, key: str, index: ObjectIndex, attempt: int) -> Notification:
        return Notification(
            topic=topic,
            header_size=index.header_size,
            messages_size=index.messages_size,
            message_count=len(index.entries),
            path=str(self.root / key),
            attempts=attempt,
        )


def open_store(url: str, prefix: str | None = None, s3_endpoint_url: str | None = None) -> ObjectStore:
    """The storage handler for ``url``: ``file:///dir`` (or ``file://./relative``)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileStore(parsed.netloc + parsed.path, prefix)
    raise StorageError(f"unsupported storage URL {url!r}; expected file:///dir")
