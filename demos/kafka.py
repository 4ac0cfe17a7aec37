"""Kafka through PSC: resolve a topic URI, produce JSON records, consume them back through a group, commit."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psc
from demos._common import KAFKA_CLUSTER, DemoFailure, Services, delete_topic, step

RECORDS = 20


def run(services: Services) -> None:
    step("kafka: resolve a topic URI")
    topic_uri = f"{KAFKA_CLUSTER}demo-orders-{uuid.uuid4().hex[:8]}"
    config: dict[str, Any] = {"psc.project": "toolkit-demo", "psc.discovery.file": str(services.discovery_file)}
    uri = psc.TopicUri.parse(topic_uri)
    endpoint = psc.discover(uri, psc.PscConfig.from_mapping(config))
    print(f"{uri} -> service={uri.service} cluster={uri.cluster} topic={uri.topic} bootstrap={endpoint.bootstrap}")

    try:
        step("kafka: produce with psc.Producer")
        delivered = produce(config, topic_uri)

        step("kafka: consume with psc.Consumer")
        received = consume(config, topic_uri, len(delivered))
    finally:
        delete_topic(services.kafka_bootstrap, uri.topic)

    sent_ids = sorted((m.partition, m.offset) for m in delivered)
    got_ids = sorted((m.partition(), m.offset()) for m in received)
    if sent_ids != got_ids:
        raise DemoFailure(f"sent {len(sent_ids)} records, received {len(got_ids)}")
    print(f"round trip complete: {len(received)} of {len(delivered)} records back, none lost, none duplicated")


def produce(config: dict[str, Any], topic_uri: str) -> list[psc.MessageId]:
    delivered: list[psc.MessageId] = []
    failures: list[str] = []

    def on_delivery(err: Any, msg: psc.Message) -> None:
        if err is not None:
            failures.append(str(err))
        else:
            delivered.append(msg.message_id)

    with psc.Producer({**config, "psc.producer.value.serializer": "json"}) as producer:
        started = time.perf_counter()
        for i in range(RECORDS):
            record = {"order": i, "item": f"widget-{i % 3}", "quantity": i % 5 + 1}
            producer.produce(topic_uri, record, key=f"customer-{i % 4}".encode(), on_delivery=on_delivery)
        left = producer.flush(30)
        elapsed = time.perf_counter() - started
    if failures or left:
        raise DemoFailure(f"{len(failures)} deliveries failed, {left} undelivered: {failures[:3]}")
    print(f"produced {len(delivered)} JSON records in {elapsed * 1000:.1f} ms (acks=all, idempotent)")
    for message_id in delivered[:3]:
        print(f"  delivered {message_id}")
    return delivered


def consume(config: dict[str, Any], topic_uri: str, expected: int) -> list[psc.Message]:
    group = f"demo-{uuid.uuid4().hex[:8]}"
    consumer_config = {
        **config,
        "psc.consumer.group.id": group,
        "psc.consumer.offset.auto.reset": "earliest",
        "psc.consumer.value.deserializer": "json",
    }
    received: list[psc.Message] = []
    with psc.Consumer(consumer_config) as consumer:
        consumer.subscribe([topic_uri])
        deadline = time.monotonic() + 30
        while len(received) < expected and time.monotonic() < deadline:
            received.extend(consumer.consume(num_messages=expected, timeout=1.0))
        consumer.commit(asynchronous=False)
    print(f"consumed {len(received)} records through consumer group {group!r} and committed")
    for message in received[:3]:
        print(f"  {message.message_id}: key={message.key()!r} value={message.value()}")
    return received
