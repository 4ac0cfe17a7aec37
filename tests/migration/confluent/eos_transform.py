"""Exactly-once consume-transform-produce: output and input offsets commit in one transaction."""

import os

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

BOOTSTRAP = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
PREFIX = os.environ["MIGRATION_PREFIX"]
SOURCE = PREFIX + "source"
SINK = PREFIX + "sink"
GROUP = PREFIX + "transformer"
LABELS = {SOURCE: "source", SINK: "sink"}


def fill_source() -> None:
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "client.id": "source-producer"})
    for i in range(8):
        producer.produce(SOURCE, key=str(i).encode(), value=f"word-{i}".encode(), partition=i % 2)
    producer.flush(30)


def transform() -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "client.id": "transformer",
            "group.id": GROUP,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    producer = Producer(
        {"bootstrap.servers": BOOTSTRAP, "client.id": "transformer", "transactional.id": PREFIX + "transformer"}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(SINK, key=b"aborted", value=b"never visible", partition=0)
    producer.abort_transaction(30)

    consumer.subscribe([SOURCE])
    at_end = set()
    while len(at_end) < 2:
        batch = consumer.consume(num_messages=5, timeout=1.0)
        records = []
        for msg in batch:
            if msg.error() and msg.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(msg.partition())
            elif msg.error():
                raise KafkaException(msg.error())
            else:
                at_end.discard(msg.partition())
                records.append(msg)
        if not records:
            continue
        producer.begin_transaction()
        for msg in records:
            producer.produce(SINK, key=msg.key(), value=msg.value().upper(), partition=msg.partition())
        positions = consumer.position(consumer.assignment())
        producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
    consumer.close()
    for tp in sorted(positions, key=lambda tp: tp.partition):
        print("sent offsets", LABELS[tp.topic], tp.partition, tp.offset)


def read_sink() -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "client.id": "sink-reader",
            "group.id": PREFIX + "sink-reader",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    consumer.subscribe([SINK])
    records = []
    at_end = set()
    while len(at_end) < 2:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error() and msg.error().code() == KafkaError._PARTITION_EOF:
            at_end.add(msg.partition())
            continue
        if msg.error():
            raise KafkaException(msg.error())
        records.append((msg.partition(), msg.key().decode(), msg.value().decode()))
    consumer.close()
    for record in sorted(records):
        print("sink", *record)

    auditor = Consumer({"bootstrap.servers": BOOTSTRAP, "client.id": "transform-auditor", "group.id": GROUP})
    for tp in auditor.committed([TopicPartition(SOURCE, p) for p in range(2)], timeout=10):
        print("committed", LABELS[tp.topic], tp.partition, tp.offset)
    auditor.close()


if __name__ == "__main__":
    fill_source()
    transform()
    read_sink()
