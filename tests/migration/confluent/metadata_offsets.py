"""Topic metadata, watermarks and offsets looked up by timestamp, from clients configured with a broker only."""

import os
import time

from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

BOOTSTRAP = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
PREFIX = os.environ["MIGRATION_PREFIX"]
METRICS = PREFIX + "metrics"
LABELS = {METRICS: "metrics"}
BASE_MS = (int(time.time()) - 3600) * 1000


def main() -> None:
    producer = Producer({"bootstrap.servers": BOOTSTRAP})
    for i in range(10):
        producer.produce(METRICS, value=f"sample-{i}".encode(), partition=i % 2, timestamp=BASE_MS + i * 1000)
    producer.flush(30)

    metadata = producer.list_topics(topic=METRICS, timeout=10)
    topic = metadata.topics[METRICS]
    print("producer sees", LABELS[topic.topic], "partitions", sorted(topic.partitions), "error", topic.error)

    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": PREFIX + "m"})
    metadata = consumer.list_topics(METRICS, timeout=10)
    for partition in sorted(metadata.topics[METRICS].partitions.values(), key=lambda p: p.id):
        print("partition", partition.id, "replicas", len(partition.replicas), "in sync", len(partition.isrs))

    for p in range(2):
        low, high = consumer.get_watermark_offsets(TopicPartition(METRICS, p), timeout=10)
        print("watermarks", p, low, high)

    for after_ms in (4500, 60_000):
        lookups = [TopicPartition(METRICS, p, BASE_MS + after_ms) for p in range(2)]
        for tp in consumer.offsets_for_times(lookups, timeout=10):
            print("offset after", after_ms, LABELS[tp.topic], tp.partition, tp.offset, tp.offset == OFFSET_END)

    first = consumer.offsets_for_times([TopicPartition(METRICS, 1, BASE_MS + 6000)], timeout=10)[0]
    consumer.assign([first])
    msg = None
    while msg is None:
        msg = consumer.poll(1.0)
    print("first at or after 6 s", msg.partition(), msg.offset(), msg.value().decode(), msg.timestamp()[1] - BASE_MS)
    consumer.close()


if __name__ == "__main__":
    main()
