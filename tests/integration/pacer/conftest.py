"""Pacer integration fixtures: fresh MariaDB databases per test (the server is shared)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from pacer import PartitionInfo
from pacer.client import Client
from pacer.storage.mysql import MysqlStore
from tests.integration.pacer.brokers import BrokerProcess
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


ADMIN_TOKEN = "test-admin-token"


@pytest.fixture
def start_broker(
    services: Services, new_topic: Callable[..., str], new_shards: Callable[[int], list[str]], tmp_path: Path
) -> Iterator[Callable[..., BrokerProcess]]:
    """``start_broker(**overrides)``: a broker process; all brokers of a test share its topic and shards."""
    shards = new_shards(2)
    topic = new_topic(partitions=4, prefix="pacer-control")
    group = f"pacer-{uuid.uuid4().hex[:8]}"
    started: list[BrokerProcess] = []

    def start(**overrides: Any) -> BrokerProcess:
        config: dict[str, Any] = {
            "storage": shards,
            "control_topic": f"{services.cluster_prefix}{topic}",
            "control_partitions": 4,
            "group_id": group,
            "admin_token": ADMIN_TOKEN,
            "session_timeout_ms": 6000,
            "rebalance_timeout_ms": 8000,
            "refill_interval_s": 0.5,
            "expire_interval_s": 0.5,
            "psc": {"psc.discovery.file": services.psc_discovery_file},
        } | overrides
        broker = BrokerProcess(config, tmp_path, f"broker{len(started)}")
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.stop()


def wait_for_owners(client: Client, queue: str, owners: set[str], timeout: float = 60.0) -> list[PartitionInfo]:
    """The queue's partitions once exactly ``owners`` own them all."""
    deadline = time.monotonic() + timeout
    while True:
        infos = client.partitions(queue)
        found = {info.owner for info in infos}
        if found == owners:
            return infos
        if time.monotonic() > deadline:
            raise AssertionError(f"owners of {queue} are {found}, expected {owners}")
        time.sleep(0.3)
