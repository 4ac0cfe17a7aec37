"""Callbacks given in the configuration: errors, statistics, throttling, commits and a logger."""

import json
import logging
import os

from psc import Consumer, KafkaException, Producer

CLUSTER = "plaintext:/rn:kafka:local:local_dev::cluster01:"
PREFIX = os.environ["MIGRATION_PREFIX"]
CLICKS = CLUSTER + PREFIX + "clicks"
GROUP = PREFIX + "click-counters"
LABELS = {CLICKS: "clicks"}


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


errors: list[str] = []
stats: list[dict] = []
throttles: list[str] = []
commits: list[str] = []


def on_error(err):
    errors.append(err.name())


def on_stats(text):
    stats.append(json.loads(text))


def on_throttle(event):
    throttles.append(event.broker_name)


def on_commit(err, partitions):
    for tp in partitions:
        commits.append(f"{err} {LABELS[tp.topic]} {tp.partition} {tp.offset}")


def main() -> None:
    handler = Collect()
    logger = logging.getLogger("clicks")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    logger.propagate = False

    producer = Producer(
        {
            "psc.project": "clicks-producer",
            "psc.producer.error_cb": on_error,
            "psc.producer.stats_cb": on_stats,
            "psc.producer.throttle_cb": on_throttle,
            "psc.producer.statistics.interval.ms": 100,
            "psc.producer.debug": "msg",
        },
        logger=logger,
    )
    for i in range(5):
        producer.produce(CLICKS, value=f"click-{i}".encode())
    producer.flush(30)
    while not stats:
        producer.poll(0.1)
    print("producer stats type", stats[0]["type"], "has brokers", bool(stats[0]["brokers"]))
    print("producer logger got debug lines", any(r.levelno == logging.DEBUG for r in handler.records))

    stats.clear()
    consumer = Consumer(
        {
            "psc.project": "clicks-counter",
            "psc.consumer.group.id": GROUP,
            "psc.consumer.offset.auto.reset": "earliest",
            "psc.consumer.commit.auto.enabled": False,
            "psc.consumer.on_commit": on_commit,
            "psc.consumer.error_cb": on_error,
            "psc.consumer.stats_cb": on_stats,
            "psc.consumer.statistics.interval.ms": 100,
            "psc.consumer.logger": logger,
        }
    )
    consumer.subscribe([CLICKS])
    seen = 0
    while seen < 5:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        seen += 1
    consumer.commit(asynchronous=True)
    while not commits or not stats:
        consumer.poll(0.1)
    consumer.close()
    print("consumer stats type", stats[0]["type"])
    for line in commits:
        print("on_commit", line)
    print("errors", errors, "throttle events", throttles)


if __name__ == "__main__":
    main()
