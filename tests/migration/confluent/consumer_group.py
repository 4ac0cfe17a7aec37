"""A consumer group with auto-commit and EOF events; a restarted member resumes; a missing topic is an error."""

import os

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

BOOTSTRAP = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
PREFIX = os.environ["MIGRATION_PREFIX"]
EVENTS = PREFIX + "events"
MISSING = PREFIX + "missing"
GROUP = PREFIX + "group"
LABELS = {EVENTS: "events", MISSING: "missing"}


def produce(first: int, count: int) -> None:
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "client.id": "events-producer"})
    for i in range(first, first + count):
        producer.produce(EVENTS, value=f"event-{i}".encode(), partition=i % 2)
    producer.flush(30)


def consume_to_end(name: str) -> None:
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "client.id": "events-consumer",
            "group.id": GROUP,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    consumer.subscribe([EVENTS])
    records = []
    at_end = set()
    while len(at_end) < 2:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                at_end.add((LABELS[msg.topic()], msg.partition(), msg.offset()))
                continue
            raise KafkaException(msg.error())
        records.append((msg.partition(), msg.offset(), msg.value().decode()))
        at_end.discard((LABELS[msg.topic()], msg.partition(), msg.offset()))
    consumer.close()
    for record in sorted(records):
        print(name, "read", *record)
    for topic, partition, offset in sorted(at_end):
        print(name, "reached end of", topic, partition, "at", offset)


def subscribe_to_missing() -> None:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "client.id": "typo-consumer", "group.id": GROUP + "-typo"})
    consumer.subscribe(topics=[MISSING])
    msg = None
    while msg is None:
        msg = consumer.poll(1.0)
    error = msg.error()
    print("subscribed to", LABELS[msg.topic()], error.name(), error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART)
    consumer.close()


def print_committed() -> None:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "client.id": "events-auditor", "group.id": GROUP})
    for tp in consumer.committed([TopicPartition(EVENTS, p) for p in range(2)], timeout=10):
        print("committed", LABELS[tp.topic], tp.partition, tp.offset)
    consumer.close()


if __name__ == "__main__":
    subscribe_to_missing()
    produce(0, 6)
    consume_to_end("first")
    print_committed()
    produce(6, 3)
    consume_to_end("restarted")
    print_committed()
