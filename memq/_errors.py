"""The exceptions MemQ raises: one base class, and one subclass per kind of failure."""

from __future__ import annotations

__all__ = ["CorruptObjectError", "FormatError", "MemqError", "ObjectNotFoundError", "StorageError"]


class MemqError(Exception):
    """Base class of every error MemQ raises on purpose."""


class FormatError(MemqError):
    """Bytes that do not follow the MemQ layouts; `offset` is where in the buffer the problem starts."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte offset {offset})")
        self.reason = message
        self.offset = offset


class StorageError(MemqError):
    """A storage backend could not store, find or read an object; `key` names it when known."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message if key is None else f"{message}: {key}")
        self.key = key


class ObjectNotFoundError(StorageError):
    """The object does not exist in the storage."""


class CorruptObjectError(MemqError):
    """An object that is missing, truncated or fails its checks, named by key and byte offset in the object.

    `offset` is -1 when the object could not be read at all (e.g. it does not exist).
    """

    def __init__(
        self,
        key: str,
        offset: int,
        reason: str,
        *,
        notification_offset: int | None = None,
        partition: int | None = None,
        resume_offset: int | None = None,
    ) -> None:
        where = f"object {key!r} at byte offset {offset}" if offset >= 0 else f"object {key!r}"
        super().__init__(f"{where}: {reason}")
        self.key = key
        self.offset = offset
        self.reason = reason
        self.notification_offset = notification_offset
        self.partition = partition
        # The consumer offset just past the unreadable part: seeking there skips it, knowingly.
        self.resume_offset = resume_offset
