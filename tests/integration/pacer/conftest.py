"""Pacer integration fixtures: fresh MariaDB databases per test (the server is shared)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from pacer.storage.mysql import MysqlStore
from tests.services import Services


def database_url(services: Services, name: str) -> str:
    parts = urlsplit(services.mysql_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


@pytest.fixture
def new_shards(services: Services) -> Iterator[Callable[[int], list[str]]]:
    """``new_shards(n)``: URLs of ``n`` new empty databases, dropped after the test."""
    made: list[str] = []

    def make(count: int = 1) -> list[str]:
        prefix = f"pacer_{uuid.uuid4().hex[:10]}"
        urls = [database_url(services, f"{prefix}_s{i}") for i in range(count)]
        made.extend(urls)
        return urls

    yield make
    if made:
        MysqlStore(made).drop_databases()
