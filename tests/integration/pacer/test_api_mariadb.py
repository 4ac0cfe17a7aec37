"""Pacer's API contract on MariaDB, with the queue's partitions placed over two shards."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from pacer import Pacer
from tests.pacer_contract import *  # noqa: F403


@pytest.fixture
def pacer(new_shards: Callable[[int], list[str]]) -> Iterator[Pacer]:
    service = Pacer.open(new_shards(2))
    yield service
    service.close()


@pytest.fixture
def queue(pacer: Pacer) -> str:
    name = f"q_{uuid.uuid4().hex[:8]}"
    pacer.create_queue(name)
    return name


def test_partitions_are_spread_over_the_shards(pacer: Pacer) -> None:
    pacer.create_queue("spread", partitions=4)
    assert sorted({p.shard for p in pacer.partitions("spread")}) == [0, 1]
