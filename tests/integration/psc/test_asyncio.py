"""psc.aio against a real broker: delivery futures, every consumer call, and callbacks awaited on the loop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest

import psc
from psc.aio import AIOConsumer, AIOProducer
from tests.services import Services

TIMEOUT = 15.0


@pytest.fixture
def base(services: Services) -> dict[str, Any]:
    return {"psc.project": "it-asyncio", "psc.discovery.file": services.psc_discovery_file}


def consumer_config(base: dict[str, Any], **extra: Any) -> dict[str, Any]:
    group = f"g-{uuid.uuid4().hex[:8]}"
    return {**base, "psc.consumer.group.id": group, "psc.consumer.offset.auto.reset": "earliest", **extra}


async def read(consumer: AIOConsumer, count: int) -> list[psc.Message]:
    out: list[psc.Message] = []
    while len(out) < count:
        out += await consumer.consume(count - len(out), 0.5)
    return out


def test_produce_returns_delivery_futures_and_the_consumer_answers_every_call(
    base: dict[str, Any], services: Services, new_topic: Callable[..., str]
) -> None:
    uri = services.cluster_prefix + new_topic(partitions=2)

    async def scenario() -> None:
        async with AIOProducer(base, batch_size=10) as producer:
            first = await producer.produce(uri, b"m0", partition=0)
            assert not first.done()  # awaiting produce() does not wait for delivery
            futures = [await producer.produce(uri, f"m{i}".encode(), partition=1) for i in range(1, 5)]
            delivered = await asyncio.wait_for(first, TIMEOUT)  # sent after the buffer timeout, on its own
            assert (delivered.topic(), delivered.partition(), delivered.offset()) == (uri, 0, 0)
            assert [(await f).offset() for f in futures] == [0, 1, 2, 3]
            assert uri in (await producer.list_topics(uri, TIMEOUT)).topics
            assert len(producer) == 0

        config = consumer_config(base, **{"psc.consumer.enable.auto.offset.store": "false"})
        async with AIOConsumer(config) as consumer:
            await consumer.subscribe([uri])
            batch = await read(consumer, 3)
            rest = []
            async for message in consumer:
                rest.append(message)
                if len(batch) + len(rest) == 5:
                    break
            assert sorted(m.value() for m in batch + rest) == [b"m0", b"m1", b"m2", b"m3", b"m4"]
            for message in batch + rest:
                await consumer.store_offsets(message)
            committed = await consumer.commit(asynchronous=False)
            assert committed is not None and sorted(c.offset for c in committed) == [1, 4]
            parts = await consumer.assignment()
            assert sorted(c.offset for c in await consumer.committed(parts, TIMEOUT)) == [1, 4]
            assert sorted(p.offset for p in await consumer.position(parts)) == [1, 4]
            assert await consumer.get_watermark_offsets(psc.TopicUriPartition(uri, 1), TIMEOUT) == (0, 4)
            [found] = await consumer.offsets_for_times([psc.TopicUriPartition(uri, 1, 0)], TIMEOUT)
            assert found.offset == 0
            await consumer.pause(parts)
            await consumer.resume(parts)
            await consumer.seek(psc.TopicUriPartition(uri, 1, 2))
            again = await read(consumer, 1)
            assert (again[0].partition(), again[0].offset()) == (1, 2)
            assert await consumer.consumer_group_metadata() is not None
            assert uri in (await consumer.list_topics(uri, TIMEOUT)).topics

    asyncio.run(asyncio.wait_for(scenario(), 90))


def test_a_commit_in_an_async_on_revoke_is_kept(
    base: dict[str, Any], services: Services, new_topic: Callable[..., str]
) -> None:
    uri = services.cluster_prefix + new_topic()
    config = consumer_config(base, **{"psc.consumer.commit.auto.enabled": "false"})  # only the callback commits

    async def scenario() -> None:
        async with AIOProducer(base) as producer:
            for i in range(6):
                await producer.produce(uri, f"m{i}".encode())
            assert await producer.flush(TIMEOUT) == 0

        revoked: list[list[psc.TopicUriPartition]] = []

        async def on_revoke(consumer: AIOConsumer, partitions: list[psc.TopicUriPartition]) -> None:
            revoked.append(partitions)
            await asyncio.sleep(0.05)  # really asynchronous: the consumer must wait for it
            await consumer.commit(asynchronous=False)

        consumer = AIOConsumer(config)
        await consumer.subscribe([uri], on_revoke=on_revoke)
        assert [m.value() for m in await read(consumer, 4)] == [b"m0", b"m1", b"m2", b"m3"]
        await consumer.close()  # leaving the group revokes: the callback commits the position
        assert revoked and revoked[0][0].topic_uri == uri

        async with AIOConsumer(config) as again:
            await again.subscribe([uri])
            assert [m.value() for m in await read(again, 2)] == [b"m4", b"m5"]

    asyncio.run(asyncio.wait_for(scenario(), 90))


def test_async_transaction(base: dict[str, Any], services: Services, new_topic: Callable[..., str]) -> None:
    uri = services.cluster_prefix + new_topic()
    config = {**base, "psc.producer.transactional.id": f"txn-{uuid.uuid4().hex[:8]}"}

    async def scenario() -> None:
        async with AIOProducer(config) as producer:
            await producer.init_transactions(TIMEOUT)
            await producer.begin_transaction()
            aborted = await producer.produce(uri, b"aborted")
            await producer.abort_transaction(TIMEOUT)
            await asyncio.wait_for(aborted, TIMEOUT)
            await producer.begin_transaction()
            kept = await producer.produce(uri, b"kept")
            await producer.commit_transaction(TIMEOUT)
            assert (await kept).value() == b"kept"
        read_committed = consumer_config(base, **{"psc.consumer.isolation.level": "read_committed"})
        async with AIOConsumer(read_committed) as consumer:
            await consumer.assign([psc.TopicUriPartition(uri, 0, psc.OFFSET_BEGINNING)])
            got = []
            for _ in range(6):
                got += await consumer.consume(10, 0.5)
            assert [m.value() for m in got] == [b"kept"]

    asyncio.run(asyncio.wait_for(scenario(), 90))
