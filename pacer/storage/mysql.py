"""The MySQL 8 / MariaDB 10.11 backend: one or more shards, each a database given by URL.

Shard 0 also holds the metadata (queues, the shard map). Sessions run READ COMMITTED with
CLIENT_FOUND_ROWS (row counts are rows matched), so ``SKIP LOCKED`` claims take no gap locks.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql
import pymysql.constants.CLIENT
import pymysql.cursors

from pacer._accel import unpack_jobs
from pacer._errors import InvalidArgument, QueueNotFound
from pacer.storage.base import Reserved, Store, Tx

Connection = Any  # PyMySQL ships no type information
_NAMED = re.compile(r":([a-z_][a-z0-9_]*)")
_NO_SUCH_TABLE = 1146
_DATABASE = re.compile(r"[A-Za-z0-9_]{1,64}")
# A refilled job, packed: its numbers as 16 hex digits each (64-bit two's complement), then its body.
_PACKED_FIELDS = (
    "LENGTH(j.body)", "j.priority", "j.run_after", "j.local_id", "j.attempts_allowed", "j.attempts_remaining",
    "j.dispatches",
)  # fmt: skip
_PACKED_JOB = "CONCAT(" + "".join(f"LPAD(HEX({field}), 16, '0'), " for field in _PACKED_FIELDS) + "j.body)"
PACKED_REFILL_BYTES = 4 << 20  # the session's group_concat_max_len: several of the largest bodies (1 MiB)

_META = [
    "CREATE TABLE IF NOT EXISTS pacer_schema (version INT NOT NULL) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS pacer_queue (queue_name VARCHAR(48) NOT NULL PRIMARY KEY, "
    "num_partitions SMALLINT UNSIGNED NOT NULL, lease_ms INT UNSIGNED NOT NULL, max_jobs_per_second DOUBLE NULL, "
    "succeeded_ttl_s INT UNSIGNED NOT NULL, failed_ttl_s INT UNSIGNED NOT NULL) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS pacer_partition (queue_name VARCHAR(48) NOT NULL, "
    "partition_id SMALLINT UNSIGNED NOT NULL, shard_id SMALLINT UNSIGNED NOT NULL, "
    "PRIMARY KEY (queue_name, partition_id)) ENGINE=InnoDB",
]
_OWNER_MARK = "expiry_mark BIGINT NOT NULL DEFAULT 0, expiry_mark_id BIGINT NOT NULL DEFAULT 0"
# The ready index's generated columns (see SCHEMA_VERSION); VIRTUAL: computed, not stored in the row.
_LANE = "lane TINYINT UNSIGNED GENERATED ALWAYS AS (CASE WHEN state = 0 THEN priority ELSE 0 END) VIRTUAL"
_DUE_AT = "due_at BIGINT GENERATED ALWAYS AS (CASE WHEN state = 0 THEN run_after ELSE lease_expires_at END) VIRTUAL"
_OWNER = [
    "CREATE TABLE IF NOT EXISTS pacer_owner (queue_name VARCHAR(48) NOT NULL, partition_id SMALLINT UNSIGNED NOT NULL, "
    "epoch BIGINT UNSIGNED NOT NULL DEFAULT 0, owner_id VARCHAR(255) NULL, acquired_at BIGINT NULL, "
    f"{_OWNER_MARK}, PRIMARY KEY (queue_name, partition_id)) ENGINE=InnoDB",
]


@dataclass(frozen=True)
class ShardUrl:
    """``mysql://user[:password]@host[:port]/database``, parsed once."""

    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def parse(cls, url: str) -> ShardUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
            raise InvalidArgument(f"shard URL {url!r} must look like mysql://user@host:3306/database")
        database = parts.path.lstrip("/")
        if not _DATABASE.fullmatch(database):
            raise InvalidArgument(f"shard URL {url!r} needs a database name of letters, digits and '_'")
        return cls(
            parts.hostname,
            parts.port or 3306,
            unquote(parts.username or "root"),
            unquote(parts.password or ""),
            database,
        )


@functools.lru_cache(maxsize=64)
def _pyformat(sql: str) -> str:
    """``:name`` placeholders in PyMySQL's ``%(name)s`` form. Split and joined rather than ``re.sub`` with a
    template, which expands the template in Python at each match (5.4 µs per job of an enqueue of 100, 1.4 µs
    this way); cached, as an enqueue of a batch of the same size and settings is the same text each time (the
    lease and ack statements carry their ids written in, so each of those is new)."""
    parts = _NAMED.split(sql)
    parts[1::2] = ["%(" + name + ")s" for name in parts[1::2]]
    return "".join(parts)


class _MysqlTx:
    def __init__(self, cursor: pymysql.cursors.Cursor) -> None:
        self._cursor = cursor
        self.statements = 0

    def _execute(self, sql: str, params: dict[str, Any] | None) -> int:
        self.statements += 1
        return int(self._cursor.execute(_pyformat(sql), params or None))

    def run(self, sql: str, params: dict[str, Any] | None = None) -> int:
        return self._execute(sql, params)

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        self._execute(sql, params)
        return list(self._cursor.fetchall())

    def insert(self, sql: str, params: dict[str, Any], count: int) -> list[int]:
        self._execute(sql, params)
        # A multi-row insert is a "simple insert": InnoDB gives it one consecutive block of ids.
        first = int(self._cursor.lastrowid)
        step = int(self._cursor.connection.pacer_increment)
        return [first + i * step for i in range(count)]


class _Pool:
    """Idle connections of one shard; a broken connection is dropped, so a restarted server is reconnected.

    Sessions get a short ``wait_timeout``: a process paused in the middle of a transaction (SIGSTOP, a long
    GC pause) has its connection closed by the server and its locks released, so it cannot block a
    takeover for longer. Connections idle nearly that long are therefore not reused; a connection's idle time
    is counted from when its last session began, since the process may have been paused between the server's
    last answer and handing the connection back.
    """

    def __init__(self, url: ShardUrl, size: int, idle_timeout_s: int, *, autocommit: bool = False) -> None:
        self.url = url
        self.autocommit = autocommit
        self.idle_timeout_s = idle_timeout_s
        self.size = size
        self._idle: collections.deque[tuple[Connection, float]] = collections.deque()  # appends and pops are atomic

    def connect(self, database: bool = True) -> Connection:
        conn = pymysql.connect(
            host=self.url.host,
            port=self.url.port,
            user=self.url.user,
            password=self.url.password,
            database=self.url.database if database else None,
            client_flag=pymysql.constants.CLIENT.FOUND_ROWS,
            autocommit=self.autocommit,
            connect_timeout=5,
            read_timeout=30,
            write_timeout=30,
            init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        )
        with conn.cursor() as cursor:
            cursor.execute(
                f"SET SESSION wait_timeout = {int(self.idle_timeout_s)}, group_concat_max_len = {PACKED_REFILL_BYTES}"
            )
            cursor.execute("SELECT @@auto_increment_increment")
            conn.pacer_increment = int(cursor.fetchone()[0])
        return conn

    def take(self) -> Connection:
        while True:
            try:
                conn, since = self._idle.pop()  # the most recently used
            except IndexError:
                return self.connect()
            if time.monotonic() - since < self.idle_timeout_s * 0.8:
                return conn
            conn.close()  # the server may be closing it right now

    def give_back(self, conn: Connection, since: float) -> None:
        """Keep ``conn`` for reuse; the server last heard from it no earlier than ``since`` (monotonic)."""
        if len(self._idle) < self.size:
            self._idle.append((conn, since))
        else:
            conn.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.pop()[0].close()
            except IndexError:
                return


class MysqlStore(Store):
    skip_locked = " FOR UPDATE SKIP LOCKED"
    for_update = " FOR UPDATE"
    share_lock = " LOCK IN SHARE MODE"  # MariaDB 10.11 has no FOR SHARE; MySQL 8 accepts both
    insert_ignore = "INSERT IGNORE"
    insert_defaults = True  # in the DDL, and set on older tables by the version 4 upgrade
    by_id = " FORCE INDEX (PRIMARY)"  # MySQL 8 and MariaDB both take index hints in UPDATE

    def __init__(self, shard_urls: Sequence[str], pool_size: int = 16, idle_timeout_s: int = 10) -> None:
        super().__init__()
        if not shard_urls:
            raise InvalidArgument("MySQL storage needs at least one shard URL")
        urls = [ShardUrl.parse(url) for url in shard_urls]
        self._pools = [_Pool(url, pool_size, idle_timeout_s) for url in urls]
        # Connections in autocommit mode, for statements that commit by themselves (one round trip, not two).
        self._statement_pools = [_Pool(url, pool_size, idle_timeout_s, autocommit=True) for url in urls]
        self._lock = threading.Lock()
        self.statements = 0  # SQL statements run so far, BEGIN and COMMIT not counted (for benchmarks)

    @property
    def shard_count(self) -> int:
        return len(self._pools)

    def concat(self, *parts: str) -> str:
        return "CONCAT(" + ", ".join(parts) + ")"

    def _ready(self, tx: Tx, table: str, ready: str, params: dict[str, Any]) -> list[Reserved]:
        """The refill's jobs packed into one value: PyMySQL decodes each row of a result in Python, about 1.2 µs of
        a worker process's interpreter lock per job, where unpacking takes a quarter of that. The ids come from
        the index in dispatch order, as the rows would; the jobs, packed by GROUP_CONCAT in no promised order,
        are put back in that order here. A value cut at ``group_concat_max_len`` loses its last jobs, which
        stay PENDING for the next refill; if it holds no whole job, the rows are read one by one."""
        found = tx.rows(
            f"SELECT GROUP_CONCAT({_PACKED_JOB} SEPARATOR '') FROM (SELECT local_id FROM {table} WHERE {ready} "
            f"ORDER BY lane, due_at, local_id LIMIT :n) AS r JOIN {table} AS j ON j.local_id = r.local_id",
            params,
        )
        packed = found[0][0]
        if packed is None:
            return []
        jobs = unpack_jobs(bytes(packed))
        return jobs if jobs else super()._ready(tx, table, ready, params)

    def regexp(self) -> str:
        # MySQL 8.0.22+ refuses binary strings in REGEXP; the pattern is a bound parameter.
        return "CONVERT(body USING utf8mb4) REGEXP :body_regex"

    def transaction(self, shard: int) -> contextlib.AbstractContextManager[_MysqlTx]:
        return self._session(self._pools[shard])

    def statement(self, shard: int) -> contextlib.AbstractContextManager[_MysqlTx]:
        return self._session(self._statement_pools[shard])

    @contextlib.contextmanager
    def _session(self, pool: _Pool) -> Iterator[_MysqlTx]:
        conn = pool.take()
        began = time.monotonic()
        try:
            # autocommit is off: the first statement opens the transaction (no BEGIN round trip)
            with conn.cursor() as cursor:
                tx = _MysqlTx(cursor)
                try:
                    yield tx
                finally:
                    with self._lock:
                        self.statements += tx.statements
            if not pool.autocommit:
                conn.commit()
        except pymysql.err.ProgrammingError as exc:
            _rollback(conn)
            pool.give_back(conn, began)
            if exc.args and exc.args[0] == _NO_SUCH_TABLE:
                raise QueueNotFound(f"not found: {exc.args[1]}") from exc
            raise
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError):
            conn.close()  # broken or unknown state: never reuse
            raise
        except BaseException:
            _rollback(conn)
            pool.give_back(conn, began)
            raise
        else:
            pool.give_back(conn, began)

    def create_schema(self) -> int:
        for pool in self._pools:
            conn = pool.connect(database=False)
            try:
                with conn.cursor() as cursor:
                    cursor.execute(
                        f"CREATE DATABASE IF NOT EXISTS `{pool.url.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                    )
                conn.commit()
            finally:
                conn.close()
        return super().create_schema()

    def drop_databases(self) -> None:
        """Drop every shard's database (tests and teardown)."""
        for pool in self._statement_pools:
            pool.close()
        for pool in self._pools:
            pool.close()
            conn = pool.connect(database=False)
            try:
                with conn.cursor() as cursor:
                    cursor.execute(f"DROP DATABASE IF EXISTS `{pool.url.database}`")
            finally:
                conn.close()

    def job_table_ddl(self, table: str) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {table} ("
            "local_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, "
            "state TINYINT UNSIGNED NOT NULL DEFAULT 0, "
            "priority TINYINT UNSIGNED NOT NULL, "
            "run_after BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, "
            "finished_at BIGINT NULL DEFAULT 0, attempts_allowed INT NOT NULL, attempts_remaining INT NOT NULL, "
            "dispatches INT UNSIGNED NOT NULL DEFAULT 0, owner_epoch BIGINT UNSIGNED NOT NULL DEFAULT 0, "
            "claim_token VARCHAR(64) NULL, lease_expires_at BIGINT NULL DEFAULT 0, "
            "idempotency_key VARBINARY(128) NULL, "
            f"custom_status VARCHAR(5000) NOT NULL DEFAULT '', body MEDIUMBLOB NOT NULL, {_LANE}, {_DUE_AT}, "
            "PRIMARY KEY (local_id), "
            "KEY ix_due (lane, due_at, local_id), "
            "UNIQUE KEY ux_idem (idempotency_key), "
            "CHECK (state BETWEEN 0 AND 4), CHECK (priority BETWEEN 1 AND 3)"
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        ]

    def upgrade_job_table(self, tx: Tx, table: str) -> None:
        # MySQL 8 has no DROP INDEX IF EXISTS: look the indexes up, so a half-done upgrade can run again.
        names = {str(row[2]) for row in tx.rows(f"SHOW INDEX FROM {table}")}
        columns = {str(row[0]) for row in tx.rows(f"SHOW COLUMNS FROM {table}")}
        changes = [f"DROP INDEX {name}" for name in ("ix_lease", "ix_done", "ix_finished", "ix_ready") if name in names]
        if "lane" not in columns:
            changes += [f"ADD COLUMN {_LANE}", f"ADD COLUMN {_DUE_AT}"]
        if "ix_due" not in names:
            changes.append("ADD INDEX ix_due (lane, due_at, local_id)")
        changes += [f"ALTER COLUMN {column} SET DEFAULT 0" for column in ("state", "finished_at", "lease_expires_at")]
        tx.run(f"ALTER TABLE {table} {', '.join(changes)}")

    def upgrade_owner_table(self, tx: Tx) -> None:
        if "expiry_mark" not in {str(row[0]) for row in tx.rows("SHOW COLUMNS FROM pacer_owner")}:
            tx.run(f"ALTER TABLE pacer_owner ADD COLUMN {_OWNER_MARK.replace(', ', ', ADD COLUMN ')}")

    def meta_ddl(self) -> list[str]:
        return list(_META)

    def owner_ddl(self) -> list[str]:
        return list(_OWNER)

    def close(self) -> None:
        for pool in self._pools + self._statement_pools:
            pool.close()


def _rollback(conn: Connection) -> None:
    with contextlib.suppress(pymysql.err.Error):
        conn.rollback()
