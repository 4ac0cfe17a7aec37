"""The MySQL store's connection pool, with stand-in connections (no server)."""

from __future__ import annotations

from typing import Any

import pytest

from pacer.storage.mysql import MysqlStore


class _Cursor:
    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def execute(self, sql: str, params: Any = None) -> int:
        return 1


class _Connection:
    def __init__(self) -> None:
        self.closed = False

    def cursor(self) -> _Cursor:
        return _Cursor()

    def close(self) -> None:
        self.closed = True


def test_a_connection_idle_since_its_session_began_is_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MysqlStore(["mysql://root@127.0.0.1:9/db"], idle_timeout_s=10)
    pool = store._statement_pools[0]
    opened: list[_Connection] = []

    def connect(database: bool = True) -> _Connection:
        opened.append(_Connection())
        return opened[-1]

    clock = [100.0]
    monkeypatch.setattr(pool, "connect", connect)
    monkeypatch.setattr("pacer.storage.mysql.time.monotonic", lambda: clock[0])

    with store.statement(0) as tx:
        tx.run("SELECT 1")
    clock[0] += 1
    with store.statement(0) as tx:  # idle 1 s: reused
        tx.run("SELECT 1")
        clock[0] += 12  # the process is paused after the answer: the server closes the idle session
    with store.statement(0) as tx:
        tx.run("SELECT 1")
    assert len(opened) == 2 and opened[0].closed and not opened[1].closed
