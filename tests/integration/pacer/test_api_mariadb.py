"""Pacer's API contract on MariaDB, with the queue's partitions placed over two shards."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from pacer import Pacer
from pacer.storage import mysql
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


def test_a_refill_cut_at_the_packed_length_limit_leaves_the_rest_for_the_next(
    new_shards: Callable[[int], list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mysql, "PACKED_REFILL_BYTES", 2000)  # the sessions' group_concat_max_len
    service = Pacer.open(new_shards(1), buffer_capacity=1000)
    try:
        service.create_queue("cut")
        bodies = [bytes([i]) * 300 + b"'\\\x00" for i in range(20)]  # about 450 bytes each, packed
        service.enqueue("cut", bodies)
        owner = service.owner("cut", 0)
        assert owner.refill(force=True) == 4  # the whole jobs of the first 2000 bytes; nothing written
        assert owner.refill(force=True) == 4  # the next ones: the cut job was left for it
        service.enqueue("cut", [b"big" * 1000])  # alone longer than the limit: read as a row of its own
        leased: list[bytes] = []
        for _ in range(1000):  # each dequeue takes what the buffer holds; the store is read again 1 ms later
            taken = [lease.body for lease in service.dequeue("cut", 100)]
            leased += taken
            if len(leased) >= 21:
                break
            if not taken:
                time.sleep(0.002)
        assert leased == [*bodies, b"big" * 1000]  # every job once, oldest first
    finally:
        service.close()


def test_an_enqueue_of_many_large_bodies_fits_the_servers_packet_limit(pacer: Pacer, queue: str) -> None:
    bodies = [bytes([i % 3]) * (1 << 20) for i in range(20)]  # 20 MiB, zeros among them: escaped twice as long
    descriptors = pacer.enqueue(queue, bodies)
    assert len(descriptors) == 20 and pacer.count(queue, "pending") == 20
    leased: list[bytes] = []
    for _ in range(200):
        taken = [lease.body for lease in pacer.dequeue(queue, 20)]
        leased += taken
        if len(leased) >= 20:
            break
        if not taken:
            time.sleep(0.002)
    assert leased == bodies
