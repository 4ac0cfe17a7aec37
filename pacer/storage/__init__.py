"""Where jobs are stored: :class:`Store` and its backends, chosen by URL."""

from __future__ import annotations

from collections.abc import Sequence

from pacer._errors import InvalidArgument
from pacer.storage.base import Store


def open_store(urls: str | Sequence[str]) -> Store:
    """``sqlite:///path`` (embedded), or one ``mysql://user@host:port/db`` URL per shard, shard 0 first."""
    shards = [urls] if isinstance(urls, str) else list(urls)
    if len(shards) == 1 and shards[0].startswith("sqlite://"):
        from pacer.storage.sqlite import SqliteStore

        path = shards[0].removeprefix("sqlite://")
        if not path.startswith("/"):
            raise InvalidArgument(f"storage URL {shards[0]!r}: use sqlite:///absolute/path or sqlite:///:memory:")
        return SqliteStore(":memory:" if path == "/:memory:" else path)
    if shards and all(url.startswith(("mysql://", "mariadb://")) for url in shards):
        from pacer.storage.mysql import MysqlStore

        return MysqlStore(shards)
    raise InvalidArgument(f"storage {shards!r}: expected sqlite:///path or one or more mysql://user@host:port/db URLs")


__all__ = ["Store", "open_store"]
