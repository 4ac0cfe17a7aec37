"""The embedded backend: one SQLite file, for one process, no Kafka (``sqlite:///path``)."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

from pacer._errors import QueueNotFound
from pacer.storage.base import Store, Tx

_META = [
    "CREATE TABLE IF NOT EXISTS pacer_schema (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pacer_queue (queue_name TEXT PRIMARY KEY, num_partitions INTEGER NOT NULL, "
    "lease_ms INTEGER NOT NULL, max_jobs_per_second REAL, succeeded_ttl_s INTEGER NOT NULL, "
    "failed_ttl_s INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pacer_partition (queue_name TEXT NOT NULL, partition_id INTEGER NOT NULL, "
    "shard_id INTEGER NOT NULL, PRIMARY KEY (queue_name, partition_id))",
]
_OWNER_MARK = ("expiry_mark INTEGER NOT NULL DEFAULT 0", "expiry_mark_id INTEGER NOT NULL DEFAULT 0")
_OWNER = [
    "CREATE TABLE IF NOT EXISTS pacer_owner (queue_name TEXT NOT NULL, partition_id INTEGER NOT NULL, "
    f"epoch INTEGER NOT NULL DEFAULT 0, owner_id TEXT, acquired_at INTEGER, {', '.join(_OWNER_MARK)}, "
    "PRIMARY KEY (queue_name, partition_id))",
]
# The ready index's generated columns, as on MySQL.
_LANE = "lane INTEGER GENERATED ALWAYS AS (CASE WHEN state = 0 THEN priority ELSE 0 END) VIRTUAL"
_DUE_AT = "due_at INTEGER GENERATED ALWAYS AS (CASE WHEN state = 0 THEN run_after ELSE lease_expires_at END) VIRTUAL"


def _regexp(pattern: str, body: bytes | None) -> bool:
    return body is not None and re.search(pattern, bytes(body).decode("utf-8", "replace")) is not None


class _SqliteTx:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def run(self, sql: str, params: dict[str, Any] | None = None) -> int:
        return self._cursor.execute(sql, params or {}).rowcount

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return list(self._cursor.execute(sql, params or {}).fetchall())

    def insert(self, sql: str, params: dict[str, Any], count: int) -> list[int]:
        self._cursor.execute(sql, params)
        last = int(self._cursor.lastrowid or 0)  # a multi-row insert reports its last row
        return list(range(last - count + 1, last + 1))


class SqliteStore(Store):
    """All shards are the one file; transactions take SQLite's write lock (``BEGIN IMMEDIATE``)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.create_function("REGEXP", 2, _regexp, deterministic=True)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._lock = threading.RLock()

    @property
    def shard_count(self) -> int:
        return 1

    @contextlib.contextmanager
    def transaction(self, shard: int) -> Iterator[_SqliteTx]:
        with self._lock:
            cursor = self._conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(cursor)
            except sqlite3.OperationalError as exc:
                cursor.execute("ROLLBACK")
                if "no such table" in str(exc):
                    raise QueueNotFound(f"not found: {exc}") from exc
                raise
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    def job_table_ddl(self, table: str) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {table} ("
            "local_id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 4), "
            "priority INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 3), "
            "run_after INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, "
            "finished_at INTEGER, attempts_allowed INTEGER NOT NULL, attempts_remaining INTEGER NOT NULL, "
            "dispatches INTEGER NOT NULL DEFAULT 0, owner_epoch INTEGER NOT NULL DEFAULT 0, claim_token TEXT, "
            "lease_expires_at INTEGER, idempotency_key BLOB UNIQUE, custom_status TEXT NOT NULL DEFAULT '', "
            f"body BLOB NOT NULL, {_LANE}, {_DUE_AT})",
            f"CREATE INDEX IF NOT EXISTS {table}_due ON {table} (lane, due_at, local_id)",
        ]

    def upgrade_job_table(self, tx: Tx, table: str) -> None:
        for name in ("lease", "done", "finished", "ready"):
            tx.run(f"DROP INDEX IF EXISTS {table}_{name}")
        if "lane" not in _columns(tx, table):
            tx.run(f"ALTER TABLE {table} ADD COLUMN {_LANE}")
            tx.run(f"ALTER TABLE {table} ADD COLUMN {_DUE_AT}")
        tx.run(self.job_table_ddl(table)[1])

    def upgrade_owner_table(self, tx: Tx) -> None:
        if "expiry_mark" not in _columns(tx, "pacer_owner"):
            for column in _OWNER_MARK:
                tx.run(f"ALTER TABLE pacer_owner ADD COLUMN {column}")

    def meta_ddl(self) -> list[str]:
        return list(_META)

    def owner_ddl(self) -> list[str]:
        return list(_OWNER)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _columns(tx: Tx, table: str) -> set[str]:
    return {str(row[1]) for row in tx.rows(f"PRAGMA table_xinfo({table})")}
