"""The asyncio clients against a real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest

import psc
from tests.services import Services

TIMEOUT = 15.0


@pytest.fixture
def base(services: Services) -> dict[str, Any]:
    return {"psc.project": "it-asyncio", "psc.discovery.file": services.psc_discovery_file}


def consumer_config(base: dict[str, Any], **extra: Any) -> dict[str, Any]:
    group = f"g-{uuid.uuid4().hex[:8]}"
    return {**base, "psc.consumer.group.id": group, "psc.consumer.offset.auto.reset": "earliest", **extra}


def test_async_produce_send_flush_and_consume(
    base: dict[str, Any], services: Services, new_topic: Callable[..., str]
) -> None:
    uri = services.cluster_prefix + new_topic(partitions=2)

    async def scenario() -> None:
        async with psc.AsyncProducer(base) as producer:
            first = await producer.produce(uri, b"m0", partition=0)
            assert (first.topic_uri, first.partition, first.offset) == (uri, 0, 0)
            futures = [producer.send(uri, f"m{i}".encode(), partition=1) for i in range(1, 5)]
            assert await producer.flush(TIMEOUT) == 0
            assert [(await f).offset for f in futures] == [0, 1, 2, 3]
            assert uri in (await producer.list_topics(uri, TIMEOUT)).topics
            assert len(producer) == 0

        async with psc.AsyncConsumer(consumer_config(base)) as consumer:
            await consumer.subscribe([uri])
            batch: list[psc.Message] = []
            while len(batch) < 3:
                batch += await consumer.consume(3 - len(batch), 0.5)
            rest = []
            async for message in consumer:
                rest.append(message)
                if len(batch) + len(rest) == 5:
                    break
            values = sorted(m.value() for m in batch + rest)
            assert values == [b"m0", b"m1", b"m2", b"m3", b"m4"]
            committed = await consumer.commit(asynchronous=False)
            assert committed is not None and sorted(c.offset for c in committed) == [1, 4]
            parts = await consumer.assignment()
            assert [c.offset for c in await consumer.committed(parts, TIMEOUT)] == [c.offset for c in sorted(committed)]
            assert sorted(p.offset for p in await consumer.position(parts)) == [1, 4]
            await consumer.seek_to_beginning()
            again = None
            while again is None:
                again = await consumer.poll(0.5)
            assert again.offset() == 0
            assert await consumer.get_watermark_offsets(psc.TopicUriPartition(uri, 1), TIMEOUT) == (0, 4)

    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_async_transaction(base: dict[str, Any], services: Services, new_topic: Callable[..., str]) -> None:
    uri = services.cluster_prefix + new_topic()
    config = {**base, "psc.producer.transactional.id": f"txn-{uuid.uuid4().hex[:8]}"}

    async def scenario() -> None:
        async with psc.AsyncProducer(config) as producer:
            await producer.init_transactions(TIMEOUT)
            await producer.begin_transaction()
            aborted = producer.send(uri, b"aborted")
            await producer.flush(TIMEOUT)
            await aborted
            await producer.abort_transaction(TIMEOUT)
            await producer.begin_transaction()
            await producer.produce(uri, b"kept")
            await producer.commit_transaction(TIMEOUT)
        read_committed = consumer_config(base, **{"psc.consumer.isolation.level": "read_committed"})
        async with psc.AsyncConsumer(read_committed) as consumer:
            await consumer.assign([psc.TopicUriPartition(uri, 0, psc.OFFSET_BEGINNING)])
            got = []
            for _ in range(6):
                got += await consumer.consume(10, 0.5)
            assert [m.value() for m in got] == [b"kept"]

    asyncio.run(asyncio.wait_for(scenario(), 60))
