"""The storage handler interface, object key naming and the registry of handlers by URL scheme."""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from typing import ClassVar
from urllib.parse import SplitResult, parse_qsl, urlsplit

from memq._errors import StorageError
from memq._format import Notification

__all__ = ["StorageHandler", "hash_prefix", "open_storage", "register_storage"]

Buffer = bytes | bytearray | memoryview


class StorageHandler(ABC):
    """Stores whole objects under keys and reads byte ranges of them back.

    A handler is named by a URL (`file:///dir`, `s3://bucket/prefix`); keys are relative to it. Methods block:
    asyncio callers run them in a thread. Errors are `StorageError`, and `ObjectNotFoundError` for a missing
    object.
    """

    scheme: ClassVar[str]

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix.strip("/")
        # Called with the operation's name for each request sent to a remote store (S3: PutObject, UploadPart,
        # retries included), so the broker can count what its objects cost; local handlers send none.
        self.on_request: Callable[[str], None] | None = None

    @classmethod
    @abstractmethod
    def from_url(cls, url: SplitResult, options: Mapping[str, str]) -> StorageHandler:
        """A handler for a parsed URL of this scheme; `options` come from the query string and the caller."""

    @property
    @abstractmethod
    def url(self) -> str:
        """The URL that names this handler."""

    @abstractmethod
    def put(self, key: str, parts: Sequence[Buffer]) -> None:
        """Store the concatenation of `parts` under `key`, durably, replacing any object there."""

    @abstractmethod
    def read(self, key: str, start: int, length: int) -> bytes:
        """Up to `length` bytes from `start`; fewer only where the object ends."""

    @abstractmethod
    def size(self, key: str) -> int:
        """The object's size in bytes."""

    @abstractmethod
    def notification(
        self, key: str, *, topic: str, header_size: int, messages_size: int, message_count: int, attempts: int
    ) -> Notification:
        """The announcement of the object stored under `key`."""

    @abstractmethod
    def key_of(self, notification: Notification) -> str:
        """The key under which this handler finds a notification's object; StorageError if it lives elsewhere."""

    def object_key(
        self,
        topic: str,
        *,
        client_request_id: int,
        server_request_id: int,
        attempt: int,
        host: str,
        epoch_ms: int | None = None,
    ) -> str:
        """`<hh>/<prefix>/<topic>/<cid>_<sid>_<epoch ms>_<attempt>_<host>`, spread over 256 hash prefixes.

        The reference hashes the first client request id alone, which is a small counter; hashing the whole
        name spreads objects evenly whatever the ids are.
        """
        epoch_ms = int(time.time() * 1000) if epoch_ms is None else epoch_ms
        name = f"{client_request_id}_{server_request_id}_{epoch_ms}_{attempt}_{host}"
        return "/".join(part for part in (hash_prefix(f"{topic}/{name}"), self.prefix, topic, name) if part)

    def close(self) -> None:  # noqa: B027 - handlers without resources need not override it
        """Release connections and files."""


def hash_prefix(name: str) -> str:
    """Two hex characters (256 prefixes) from a hash of `name`, so keys spread over S3's partitions."""
    return hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()[:2]


_HANDLERS: dict[str, type[StorageHandler]] = {}


def register_storage(scheme: str) -> Callable[[type[StorageHandler]], type[StorageHandler]]:
    """Class decorator: handle URLs of `scheme`. Other packages can instead use the `memq.storage` entry point."""

    def register(cls: type[StorageHandler]) -> type[StorageHandler]:
        cls.scheme = scheme
        _HANDLERS[scheme] = cls
        return cls

    return register


def open_storage(url: str, **options: str) -> StorageHandler:
    """The storage handler named by `url`; options from its query string, then `options`, configure it."""
    parsed = urlsplit(url)
    if not parsed.scheme:
        raise StorageError(f"storage URL {url!r} has no scheme; expected e.g. file:///var/lib/memq or s3://bucket")
    cls = _HANDLERS.get(parsed.scheme) or _entry_point(parsed.scheme)
    if cls is None:
        known = ", ".join(sorted(_HANDLERS))
        raise StorageError(f"storage URL {url!r}: no handler for scheme {parsed.scheme!r} (known: {known})")
    try:
        merged = dict(parse_qsl(parsed.query, strict_parsing=bool(parsed.query))) | options
    except ValueError as exc:
        raise StorageError(f"storage URL {url!r} has a malformed query: {exc}") from None
    return cls.from_url(parsed, merged)


def _entry_point(scheme: str) -> type[StorageHandler] | None:
    for entry in entry_points(group="memq.storage", name=scheme):
        loaded = entry.load()
        if isinstance(loaded, type) and issubclass(loaded, StorageHandler):
            return loaded
        raise StorageError(f"entry point memq.storage:{scheme} is {loaded!r}, not a StorageHandler")
    return None
