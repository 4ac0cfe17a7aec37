"""psc.serialization and psc.schema_registry: subjects are named after the bare topic of a topic URI."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from confluent_kafka.schema_registry import avro as confluent_avro

import psc
from psc.schema_registry import (
    AsyncSchemaRegistryClient,
    SchemaRegistryClient,
    dual_schema_id_deserializer,
    header_schema_id_serializer,
    record_subject_name_strategy,
    topic_record_subject_name_strategy,
    topic_subject_name_strategy,
)
from psc.schema_registry.avro import AsyncAvroSerializer, AvroDeserializer, AvroSerializer
from psc.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from psc.serialization import MessageField, SerializationContext, StringSerializer, topic_name
from psc.serialization._topic import with_topic_name

URI = "plaintext:/rn:kafka:prod:aws_us-west-1::cluster01:orders"
ORDER = json.dumps({"type": "record", "name": "Order", "namespace": "shop", "fields": [{"name": "id", "type": "int"}]})

NOTE = json.dumps({"type": "record", "name": "Note", "fields": [{"name": "text", "type": "string"}]})


@pytest.fixture
def registry() -> Any:
    return SchemaRegistryClient.new_client({"url": f"mock://{uuid.uuid4().hex}"})


def value_of(uri: str = URI, headers: Any = None) -> SerializationContext:
    return SerializationContext(uri, MessageField.VALUE, headers)


def test_topic_name_of_uris_and_bare_names() -> None:
    assert topic_name(URI) == "orders"
    assert topic_name("rn:kafka:prod:aws_us-west-1::cluster01:orders") == "orders"
    assert topic_name("orders") == "orders"
    with pytest.raises(psc.InvalidUriError, match="too few ':'-separated segments"):
        topic_name("plaintext:/rn:kafka:orders")


def test_the_three_strategies_name_subjects_after_the_bare_topic() -> None:
    key = SerializationContext(URI, MessageField.KEY)
    assert topic_subject_name_strategy(value_of(), "shop.Order") == "orders-value"
    assert topic_subject_name_strategy(key, None) == "orders-key"
    assert topic_record_subject_name_strategy(value_of(), "shop.Order") == "orders-shop.Order"
    assert record_subject_name_strategy(value_of(), "shop.Order") == "shop.Order"
    assert topic_subject_name_strategy(value_of("orders"), None) == "orders-value"  # confluent-style names too


def test_the_context_keeps_what_the_application_passed() -> None:
    headers: list[tuple[str, bytes]] = []
    ctx = value_of(headers=headers)
    bare = with_topic_name(ctx)
    assert bare is not None
    assert (bare.topic, bare.field, bare.headers is headers) == ("orders", MessageField.VALUE, True)
    assert ctx.topic == URI
    plain = value_of("orders")
    assert with_topic_name(plain) is plain
    assert with_topic_name(None) is None


def test_avro_round_trip_registers_the_bare_topic_subject(registry: Any) -> None:
    data = AvroSerializer(registry, ORDER)({"id": 7}, value_of())
    assert registry.get_subjects() == ["orders-value"]
    assert AvroDeserializer(registry)(data, value_of()) == {"id": 7}


def test_confluents_own_serializer_would_fork_the_subject(registry: Any) -> None:
    confluent_avro.AvroSerializer(registry, ORDER)({"id": 7}, value_of())
    assert registry.get_subjects() == [URI + "-value"]  # the behaviour psc.schema_registry exists to avoid


def test_avro_with_each_strategy_in_config(registry: Any) -> None:
    for strategy in (topic_record_subject_name_strategy, record_subject_name_strategy):
        AvroSerializer(registry, ORDER, conf={"subject.name.strategy": strategy})({"id": 1}, value_of())
    assert sorted(registry.get_subjects()) == ["orders-shop.Order", "shop.Order"]


def test_a_custom_strategy_sees_the_bare_topic(registry: Any) -> None:
    seen: list[str] = []

    def strategy(ctx: SerializationContext | None, record_name: str | None) -> str:
        assert ctx is not None
        seen.append(ctx.topic)
        return f"team.{ctx.topic}"

    AvroSerializer(registry, ORDER, conf={"subject.name.strategy": strategy})({"id": 1}, value_of())
    assert seen == ["orders"]
    assert registry.get_subjects() == ["team.orders"]


def test_schema_id_in_headers_reaches_the_applications_headers(registry: Any) -> None:
    headers: list[tuple[str, bytes]] = []
    serializer = AvroSerializer(registry, NOTE, conf={"schema.id.serializer": header_schema_id_serializer})
    data = serializer({"text": "schema id in a header"}, value_of(headers=headers))
    assert [name for name, _ in headers] == ["__value_schema_id"]
    deserializer = AvroDeserializer(registry, conf={"schema.id.deserializer": dual_schema_id_deserializer})
    assert deserializer(data, value_of(headers=headers)) == {"text": "schema id in a header"}


def test_json_schema_round_trip(registry: Any) -> None:
    schema = json.dumps({"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]})
    key = SerializationContext(URI, MessageField.KEY)
    data = JSONSerializer(schema, registry)({"sku": "a-1"}, key)
    assert registry.get_subjects() == ["orders-key"]
    assert JSONDeserializer(None, schema_registry_client=registry)(data, key) == {"sku": "a-1"}


def test_async_avro_serializer_names_the_same_subject() -> None:
    async def run() -> list[str]:
        registry = AsyncSchemaRegistryClient.new_client({"url": f"mock://{uuid.uuid4().hex}"})
        serializer = await AsyncAvroSerializer(registry, ORDER)
        await serializer({"id": 1}, value_of())
        subjects: list[str] = await registry.get_subjects()
        return subjects

    assert asyncio.run(run()) == ["orders-value"]


def test_serializing_producer_reports_a_failing_serializer_before_queueing() -> None:
    producer = psc.SerializingProducer(
        {
            "psc.project": "unit-serde",
            "psc.discovery.connect": "127.0.0.1:9",
            "psc.producer.key.serializer": StringSerializer(),
        }
    )
    with pytest.raises(psc.serialization.SerializationError) as caught:
        producer.produce(URI, key=17)  # StringSerializer takes str only
    assert type(caught.value).__name__ == "KeySerializationError"
    assert len(producer) == 0


def test_a_serializer_that_is_not_callable_is_a_config_error() -> None:
    with pytest.raises(psc.ConfigError, match=r"psc\.producer\.value\.serializer=3"):
        psc.SerializingProducer({"psc.project": "p", "psc.producer.value.serializer": 3})
