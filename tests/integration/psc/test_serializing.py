"""SerializingProducer and DeserializingConsumer against the real broker, with a mock:// Schema Registry."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.error import ValueDeserializationError

import psc
from psc.schema_registry import SchemaRegistryClient
from psc.schema_registry.avro import AvroDeserializer, AvroSerializer
from psc.serialization import StringDeserializer, StringSerializer
from tests.services import Services

TIMEOUT = 30.0
ORDER = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "namespace": "shop",
        "fields": [{"name": "id", "type": "int"}, {"name": "sku", "type": "string"}],
    }
)


def test_avro_records_round_trip_under_the_bare_topic_subject(
    services: Services, new_topic: Callable[..., str]
) -> None:
    topic = new_topic()
    uri = services.cluster_prefix + topic
    registry = SchemaRegistryClient.new_client({"url": f"mock://{uuid.uuid4().hex}"})
    base = {"psc.project": "it-serde", "psc.discovery.file": services.psc_discovery_file}
    delivered: list[Any] = []
    producer = psc.SerializingProducer(
        {
            **base,
            "psc.producer.key.serializer": StringSerializer("utf_8"),
            "psc.producer.value.serializer": AvroSerializer(registry, ORDER),
        }
    )
    with producer:
        for i in range(3):
            producer.produce(uri, key=f"k{i}", value={"id": i, "sku": f"sku-{i}"}, on_delivery=_collect(delivered))
        assert producer.flush(TIMEOUT) == 0
    assert [err for err, _ in delivered] == [None, None, None]
    assert registry.get_subjects() == [f"{topic}-value"]

    consumer = psc.DeserializingConsumer(
        {
            **base,
            "psc.consumer.group.id": f"g-{uuid.uuid4().hex[:8]}",
            "psc.consumer.offset.auto.reset": "earliest",
            "psc.consumer.key.deserializer": StringDeserializer("utf_8"),
            "psc.consumer.value.deserializer": AvroDeserializer(registry),
        }
    )
    with consumer:
        consumer.subscribe([uri])
        records = []
        deadline = time.monotonic() + TIMEOUT
        while len(records) < 3 and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None:
                records.append((message.topic(), message.key(), message.value()))
        with pytest.raises(NotImplementedError):
            consumer.consume(1, 0.1)
    assert records == [(uri, f"k{i}", {"id": i, "sku": f"sku-{i}"}) for i in range(3)]


def _collect(into: list[Any]) -> Callable[[Any, Any], None]:
    return lambda err, msg: into.append((err, msg))


def test_a_record_the_deserializer_cannot_read_raises_with_the_message(
    services: Services, new_topic: Callable[..., str]
) -> None:
    uri = services.cluster_prefix + new_topic()
    base = {"psc.project": "it-serde", "psc.discovery.file": services.psc_discovery_file}
    with psc.Producer(base) as producer:
        producer.produce(uri, b"not avro", b"k")
        assert producer.flush(TIMEOUT) == 0
    registry = SchemaRegistryClient.new_client({"url": f"mock://{uuid.uuid4().hex}"})
    consumer = psc.DeserializingConsumer(
        {
            **base,
            "psc.consumer.group.id": f"g-{uuid.uuid4().hex[:8]}",
            "psc.consumer.offset.auto.reset": "earliest",
            "psc.consumer.value.deserializer": AvroDeserializer(registry),
        }
    )
    with consumer:
        consumer.subscribe([uri])
        deadline = time.monotonic() + TIMEOUT
        with pytest.raises(ValueDeserializationError) as caught:
            while time.monotonic() < deadline:
                consumer.poll(0.5)
    assert caught.value.kafka_message.value() == b"not avro"
    assert caught.value.kafka_message.topic() == uri
    assert caught.value.args[0].code() == KafkaError._VALUE_DESERIALIZATION
