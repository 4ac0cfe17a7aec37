"""Produce with keyword arguments and delivery callbacks, then read the records back."""

import os

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

BOOTSTRAP = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
PREFIX = os.environ["MIGRATION_PREFIX"]
ORDERS = PREFIX + "orders"
LABELS = {ORDERS: "orders"}

reports: list[str] = []


def on_delivery(err, msg):
    if err is not None:
        reports.append(f"failed {err.name()}")
    else:
        reports.append(f"delivered {LABELS[msg.topic()]} [{msg.partition()}] @{msg.offset()} key={msg.key()!r}")


def produce_orders() -> None:
    conf = {
        "bootstrap.servers": BOOTSTRAP,
        "client.id": "orders-producer",
        "linger.ms": 5,
        "acks": "all",
    }
    producer = Producer(**conf)
    for i in range(6):
        producer.produce(
            topic=ORDERS,
            value=f"order-{i}".encode(),
            key=f"customer-{i % 2}".encode(),
            partition=i % 3,
            headers=[("seq", str(i).encode())],
            on_delivery=on_delivery,
        )
        producer.poll(0)
    producer.produce(ORDERS, b"positional", b"customer-9", 2, callback=on_delivery)
    try:
        producer.produce(topic=ORDERS, value=b"x" * 2_000_000, on_delivery=on_delivery)
    except KafkaException as exc:
        error = exc.args[0]
        print("oversized record refused:", error.name(), error.code() == KafkaError.MSG_SIZE_TOO_LARGE)
    print("left after flush:", producer.flush(30))
    print("queue length:", len(producer))
    for line in sorted(reports):
        print(line)


def read_back() -> None:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "client.id": "orders-reader", "group.id": PREFIX + "reader"})
    consumer.assign([TopicPartition(ORDERS, p, OFFSET_BEGINNING) for p in range(3)])
    records = []
    while len(records) < 7:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        headers = msg.headers() or []
        records.append((msg.partition(), msg.offset(), msg.key(), msg.value(), headers))
    consumer.close()
    for record in sorted(records):
        print("read", *record)


if __name__ == "__main__":
    produce_orders()
    read_back()
