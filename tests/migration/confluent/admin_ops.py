"""Admin operations: topics, partitions, configs, consumer groups, group offsets and records."""

import os

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

BOOTSTRAP = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
PREFIX = os.environ["MIGRATION_PREFIX"]
AUDIT = PREFIX + "audit"
GROUP = PREFIX + "auditors"
LABELS = {AUDIT: "audit"}


def wait_all(futures: dict) -> None:
    for future in futures.values():
        future.result()


def topics(admin: AdminClient) -> None:
    futures = admin.create_topics([NewTopic(AUDIT, num_partitions=2, replication_factor=1)], operation_timeout=30)
    for name, future in futures.items():
        print("created", LABELS[name], future.result())
    try:
        admin.create_topics([NewTopic(AUDIT, num_partitions=2, replication_factor=1)])[AUDIT].result()
    except KafkaException as exc:
        print("create again:", exc.args[0].name(), exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS)
    wait_all(admin.create_partitions([NewPartitions(AUDIT, 3)], operation_timeout=30))
    described = admin.describe_topics(TopicCollection([AUDIT]))[AUDIT].result()
    print("described", LABELS[described.name], "partitions", [p.id for p in described.partitions])


def configs(admin: AdminClient) -> None:
    resource = ConfigResource(ResourceType.TOPIC, AUDIT)
    change = ConfigResource(
        ResourceType.TOPIC,
        AUDIT,
        incremental_configs=[
            ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ],
    )
    wait_all(admin.incremental_alter_configs([change]))
    entries = admin.describe_configs([resource])[resource].result()
    print("retention.ms", entries["retention.ms"].value, "cleanup.policy", entries["cleanup.policy"].value)


def groups(admin: AdminClient) -> None:
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "client.id": "audit-producer"})
    for i in range(6):
        producer.produce(AUDIT, value=f"entry-{i}".encode(), partition=i % 3)
    producer.flush(30)
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "client.id": "auditor", "group.id": GROUP})
    consumer.assign([TopicPartition(AUDIT, p, 0) for p in range(3)])
    seen = 0
    while seen < 6:
        msg = consumer.poll(1.0)
        if msg is not None and not msg.error():
            seen += 1
    consumer.commit(asynchronous=False)
    consumer.close()

    listed = admin.list_consumer_groups().result()
    print("group listed", GROUP in {group.group_id for group in listed.valid})
    description = admin.describe_consumer_groups([GROUP])[GROUP].result()
    print("group state", description.state.name, "members", len(description.members))
    request = [ConsumerGroupTopicPartitions(GROUP)]
    offsets = admin.list_consumer_group_offsets(request)[GROUP].result()
    for tp in sorted(offsets.topic_partitions, key=lambda tp: tp.partition):
        print("group offset", LABELS[tp.topic], tp.partition, tp.offset)
    rewind = [ConsumerGroupTopicPartitions(GROUP, [TopicPartition(AUDIT, 0, 1)])]
    altered = admin.alter_consumer_group_offsets(rewind)[GROUP].result()
    for tp in altered.topic_partitions:
        print("altered", LABELS[tp.topic], tp.partition, tp.offset)
    deleted = admin.delete_records([TopicPartition(AUDIT, 1, 1)], operation_timeout=30)
    for tp, future in deleted.items():
        print("records deleted", LABELS[tp.topic], tp.partition, "low watermark", future.result().low_watermark)
    wait_all(admin.delete_consumer_groups([GROUP]))
    print("group deleted")


def main() -> None:
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP, "client.id": "audit-admin"})
    topics(admin)
    configs(admin)
    groups(admin)
    for name, future in admin.delete_topics([AUDIT], operation_timeout=30).items():
        print("deleted", LABELS[name], future.result())


if __name__ == "__main__":
    main()
