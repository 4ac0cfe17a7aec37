"""Store offsets after processing and commit them by hand; committing nothing new is an error."""

import os

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

BOOTSTRAP = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
PREFIX = os.environ["MIGRATION_PREFIX"]
JOBS = PREFIX + "jobs"
GROUP = PREFIX + "workers"
LABELS = {JOBS: "jobs"}


def commit_and_print(consumer: Consumer, what: str) -> None:
    try:
        committed = consumer.commit(asynchronous=False)
    except KafkaException as exc:
        error = exc.args[0]
        print(what, "commit refused:", error.name(), error.code() == KafkaError._NO_OFFSET)
        return
    for tp in committed:
        print(what, "committed", LABELS[tp.topic], tp.partition, tp.offset, tp.error)


def main() -> None:
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "client.id": "jobs-producer"})
    for i in range(6):
        producer.produce(JOBS, value=f"job-{i}".encode())
    producer.flush(30)

    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "client.id": "jobs-worker",
            "group.id": GROUP,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
    )
    consumer.subscribe([JOBS])
    done = 0
    while done < 4:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        print("processed", msg.offset(), msg.value().decode())
        consumer.store_offsets(message=msg)
        done += 1
    commit_and_print(consumer, "after four")
    commit_and_print(consumer, "again")
    consumer.store_offsets(offsets=[TopicPartition(JOBS, 0, 5)])
    commit_and_print(consumer, "after storing 5")
    position = consumer.position([TopicPartition(JOBS, 0)])[0]
    print("position", LABELS[position.topic], position.partition, position.offset)
    consumer.close()

    auditor = Consumer({"bootstrap.servers": BOOTSTRAP, "client.id": "jobs-auditor", "group.id": GROUP})
    for tp in auditor.committed([TopicPartition(JOBS, 0)], timeout=10):
        print("committed in group", LABELS[tp.topic], tp.partition, tp.offset)
    auditor.close()


if __name__ == "__main__":
    main()
