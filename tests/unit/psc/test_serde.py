from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from confluent_kafka.schema_registry.avro import AvroDeserializer as ConfluentAvroDeserializer
from confluent_kafka.schema_registry.avro import AvroSerializer as ConfluentAvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from psc.errors import ConfigError
from psc.serde import (
    AvroDeserializer,
    AvroSerializer,
    BytesDeserializer,
    BytesSerializer,
    JsonDeserializer,
    JsonSerializer,
    SerdeContext,
    SerializationError,
    StringDeserializer,
    StringSerializer,
    get_deserializer,
    get_serializer,
    record_subject_name_strategy,
    schema_registry_client,
)

URI = "plaintext:/rn:kafka:env:aws_us-west-1::cluster01:orders"
VALUE = SerdeContext(URI, "value")
KEY = SerdeContext(URI, "key")

ORDER_V1 = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "namespace": "com.example",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "item", "type": "string"},
            {"name": "amount", "type": "double"},
            {"name": "note", "type": ["null", "string"], "default": None},
        ],
    }
)
ORDER_V2 = json.dumps(
    {
        "type": "record",
        "name": "Order",
        "namespace": "com.example",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "item", "type": "string"},
            {"name": "amount", "type": "double"},
            {"name": "note", "type": ["null", "string"], "default": None},
            {"name": "currency", "type": "string", "default": "USD"},
        ],
    }
)
RECORD = {"id": 42, "item": "book", "amount": 12.5, "note": "gift ✓"}


@pytest.fixture
def registry() -> Any:
    return schema_registry_client("mock://psc-serde-test")


def test_context_topic_is_last_uri_field() -> None:
    assert VALUE.topic == "orders"
    assert SerdeContext("orders", "key").topic == "orders"


def test_bytes_serializer_passes_bytes_and_copies_buffers() -> None:
    data = b"\x00\x01"
    serializer = BytesSerializer()
    assert serializer.serialize(data, VALUE) is data
    assert serializer.serialize(bytearray(b"ab"), VALUE) == b"ab"
    assert serializer.serialize(memoryview(b"xyz")[1:], VALUE) == b"yz"
    assert serializer.serialize(None, VALUE) is None
    assert BytesDeserializer().deserialize(b"raw", VALUE) == b"raw"


def test_bytes_serializer_rejects_other_types_naming_uri_and_field() -> None:
    with pytest.raises(SerializationError) as info:
        BytesSerializer().serialize("text", KEY)  # type: ignore[arg-type]
    assert URI in str(info.value)
    assert "key" in str(info.value)
    assert "str" in str(info.value)
    assert info.value.context == {"topic_uri": URI, "field": "key"}


def test_string_round_trip_and_encoding() -> None:
    assert StringSerializer().serialize("héllo", VALUE) == "héllo".encode()
    assert StringDeserializer().deserialize("héllo".encode(), VALUE) == "héllo"
    assert StringSerializer("latin-1").serialize("é", VALUE) == b"\xe9"
    assert StringDeserializer("latin-1").deserialize(b"\xe9", VALUE) == "é"
    assert StringSerializer().serialize(None, VALUE) is None
    assert StringDeserializer().deserialize(None, VALUE) is None


def test_string_errors() -> None:
    with pytest.raises(SerializationError, match="cannot deserialize value for topic URI"):
        StringDeserializer().deserialize(b"\xff\xfe\xfa", VALUE)
    with pytest.raises(SerializationError):
        StringSerializer("ascii").serialize("é", VALUE)
    with pytest.raises(LookupError):
        StringSerializer("no-such-codec")


def test_json_is_compact_utf8() -> None:
    data = JsonSerializer().serialize({"a": 1, "b": [1, 2], "c": "ü"}, VALUE)
    assert data == '{"a":1,"b":[1,2],"c":"ü"}'.encode()
    assert JsonDeserializer().deserialize(data, VALUE) == {"a": 1, "b": [1, 2], "c": "ü"}
    assert JsonSerializer().serialize(None, VALUE) is None
    assert JsonDeserializer().deserialize(None, VALUE) is None


def test_json_errors_name_the_topic() -> None:
    with pytest.raises(SerializationError, match="orders"):
        JsonSerializer().serialize({"x": object()}, VALUE)
    with pytest.raises(SerializationError, match="cannot deserialize key"):
        JsonDeserializer().deserialize(b"{not json", KEY)


def test_registry_resolves_builtins_and_import_paths() -> None:
    assert isinstance(get_serializer("json"), JsonSerializer)
    assert isinstance(get_serializer("STRING"), StringSerializer)
    assert isinstance(get_deserializer("bytes"), BytesDeserializer)
    assert isinstance(get_serializer("psc.serde:JsonSerializer"), JsonSerializer)
    assert isinstance(get_deserializer("psc.serde.StringDeserializer"), StringDeserializer)
    latin = get_serializer("string", encoding="latin-1")
    assert latin.serialize("é", VALUE) == b"\xe9"


def test_registry_returns_ready_objects_as_is() -> None:
    assert get_serializer("tests.unit.psc.test_serde:READY") is READY


READY = JsonSerializer()


def test_registry_names_unknown_serde() -> None:
    with pytest.raises(ConfigError, match="unknown serializer 'protobuf'"):
        get_serializer("protobuf")
    with pytest.raises(ConfigError, match="no_such_module"):
        get_deserializer("no_such_module:Thing")
    with pytest.raises(ConfigError, match="has no serialize"):
        get_serializer("psc.serde:JsonDeserializer")
    with pytest.raises(ConfigError, match="cannot create serializer"):
        get_serializer("json", unexpected=1)


def test_avro_wire_format_and_subject(registry: Any) -> None:
    data = AvroSerializer(registry, ORDER_V1).serialize(RECORD, VALUE)
    assert data is not None
    magic, schema_id = struct.unpack(">bI", data[:5])
    assert magic == 0
    assert schema_id == registry.get_latest_version("orders-value").schema_id
    assert AvroDeserializer(registry).deserialize(data, VALUE) == RECORD


def test_avro_key_subject_and_record_strategy(registry: Any) -> None:
    AvroSerializer(registry, ORDER_V1).serialize(RECORD, KEY)
    assert "orders-key" in registry.get_subjects()
    AvroSerializer(registry, ORDER_V1, subject_name_strategy=record_subject_name_strategy).serialize(RECORD, VALUE)
    assert "com.example.Order" in registry.get_subjects()


def test_avro_ours_to_confluent(registry: Any) -> None:
    data = AvroSerializer(registry, ORDER_V1).serialize(RECORD, VALUE)
    theirs = ConfluentAvroDeserializer(registry)
    assert theirs(data, SerializationContext("orders", MessageField.VALUE)) == RECORD


def test_avro_confluent_to_ours(registry: Any) -> None:
    theirs = ConfluentAvroSerializer(registry, ORDER_V1)
    data = theirs(RECORD, SerializationContext("orders", MessageField.VALUE))
    assert AvroDeserializer(registry).deserialize(data, VALUE) == RECORD
    # Both resolve the same subject to the same id, so the bytes are identical.
    assert AvroSerializer(registry, ORDER_V1).serialize(RECORD, VALUE) == data


def test_avro_reader_schema_evolution(registry: Any) -> None:
    data = AvroSerializer(registry, ORDER_V1).serialize(RECORD, VALUE)
    decoded = AvroDeserializer(registry, reader_schema=ORDER_V2).deserialize(data, VALUE)
    assert decoded == {**RECORD, "currency": "USD"}


class CountingRegistry:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.get_schema_calls = 0
        self.register_calls = 0

    def get_schema(self, schema_id: int) -> Any:
        self.get_schema_calls += 1
        return self.inner.get_schema(schema_id)

    def register_schema(self, subject: str, schema: Any) -> int:
        self.register_calls += 1
        return int(self.inner.register_schema(subject, schema))


def test_avro_caches_schema_ids_and_writer_schemas(registry: Any) -> None:
    counting = CountingRegistry(registry)
    serializer = AvroSerializer(counting, ORDER_V1)
    deserializer = AvroDeserializer(counting)
    for _ in range(3):
        deserializer.deserialize(serializer.serialize(RECORD, VALUE), VALUE)
    assert counting.register_calls == 1
    assert counting.get_schema_calls == 1


def test_avro_without_auto_register_needs_registered_schema(registry: Any) -> None:
    with pytest.raises(SerializationError, match="cannot serialize value"):
        AvroSerializer(registry, ORDER_V1, auto_register=False).serialize(RECORD, VALUE)
    AvroSerializer(registry, ORDER_V1).serialize(RECORD, VALUE)
    assert AvroSerializer(registry, ORDER_V1, auto_register=False).serialize(RECORD, VALUE) is not None


def test_avro_errors(registry: Any) -> None:
    with pytest.raises(SerializationError, match=URI):
        AvroSerializer(registry, ORDER_V1).serialize({"id": "not a long"}, VALUE)
    deserializer = AvroDeserializer(registry)
    with pytest.raises(SerializationError, match="magic byte 1"):
        deserializer.deserialize(b"\x01\x00\x00\x00\x01\x02", VALUE)
    with pytest.raises(SerializationError, match="shorter than the 5-byte"):
        deserializer.deserialize(b"\x00\x00", VALUE)
    with pytest.raises(SerializationError, match="schema id 999"):
        deserializer.deserialize(b"\x00\x00\x00\x03\xe7\x02", VALUE)
    assert deserializer.deserialize(None, VALUE) is None
    assert AvroSerializer(registry, ORDER_V1).serialize(None, VALUE) is None
