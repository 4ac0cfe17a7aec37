"""The asyncio clients: batched produce futures, async rebalance callbacks and a commit on revoke."""

import asyncio
import os

from psc import Consumer, KafkaException, TopicPartition
from psc.aio import AIOConsumer, AIOProducer

CLUSTER = "plaintext:/rn:kafka:local:local_dev::cluster01:"
PREFIX = os.environ["MIGRATION_PREFIX"]
TICKS = CLUSTER + PREFIX + "ticks"
GROUP = PREFIX + "tickers"
LABELS = {TICKS: "ticks"}


async def produce() -> None:
    producer = AIOProducer({"psc.project": "ticks-producer"})
    futures = [await producer.produce(TICKS, value=f"tick-{i}".encode(), key=b"k", partition=i % 2) for i in range(6)]
    await producer.flush()
    delivered = await asyncio.gather(*futures)
    for msg in sorted(delivered, key=lambda m: (m.partition(), m.offset())):
        print("delivered", LABELS[msg.topic()], msg.partition(), msg.offset(), msg.value().decode())
    await producer.close()


async def consume() -> None:
    consumer = AIOConsumer(
        {
            "psc.project": "ticks-consumer",
            "psc.consumer.group.id": GROUP,
            "psc.consumer.offset.auto.reset": "earliest",
            "psc.consumer.commit.auto.enabled": False,
            "psc.consumer.enable.auto.offset.store": False,
        }
    )

    async def on_assign(client, partitions):
        print("assigned", sorted(tp.partition for tp in partitions))

    async def on_revoke(client, partitions):
        committed = await client.commit(asynchronous=False)
        print("committed on revoke", sorted((tp.partition, tp.offset) for tp in committed))

    await consumer.subscribe([TICKS], on_assign=on_assign, on_revoke=on_revoke)
    seen = []
    while len(seen) < 6:
        msg = await consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        seen.append((msg.partition(), msg.offset(), msg.value().decode()))
        await consumer.store_offsets(msg)
    for record in sorted(seen):
        print("consumed", *record)
    await consumer.unsubscribe()
    await consumer.close()


def print_committed() -> None:
    auditor = Consumer({"psc.project": "ticks-auditor", "psc.consumer.group.id": GROUP})
    for tp in auditor.committed([TopicPartition(TICKS, p) for p in range(2)], timeout=10):
        print("committed", LABELS[tp.topic], tp.partition, tp.offset)
    auditor.close()


if __name__ == "__main__":
    asyncio.run(produce())
    asyncio.run(consume())
    print_committed()
