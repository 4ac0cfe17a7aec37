"""``confluent_kafka.schema_registry.protobuf`` for PSC: its (de)serializers see the bare topic of a topic URI.

Importing it needs the ``protobuf`` package, as confluent-kafka's module does.

Builders are confluent-kafka's own: the serializers they build see the topic as given.
"""

from __future__ import annotations

from confluent_kafka.schema_registry import protobuf as _confluent
from confluent_kafka.schema_registry.protobuf import (
    AsyncProtobufDeserializerBuilder,
    AsyncProtobufSerializerBuilder,
    ProtobufDeserializerBuilder,
    ProtobufSerializerBuilder,
    decimal_to_protobuf,
    get_inline_tags,
    get_type,
    is_map_field,
    protobuf_to_decimal,
    protobuf_to_variant,
    transform,
    validate_message,
    variant_to_protobuf,
)

from psc.serialization._topic import BareTopicSerde

__all__ = [
    "AsyncProtobufDeserializer",
    "AsyncProtobufDeserializerBuilder",
    "AsyncProtobufSerializer",
    "AsyncProtobufSerializerBuilder",
    "ProtobufDeserializer",
    "ProtobufDeserializerBuilder",
    "ProtobufSerializer",
    "ProtobufSerializerBuilder",
    "decimal_to_protobuf",
    "get_inline_tags",
    "get_type",
    "is_map_field",
    "protobuf_to_decimal",
    "protobuf_to_variant",
    "transform",
    "validate_message",
    "variant_to_protobuf",
]


class AsyncProtobufSerializer(BareTopicSerde, _confluent.AsyncProtobufSerializer):
    """confluent-kafka's ``AsyncProtobufSerializer``, naming subjects after the bare topic of a topic URI."""


class AsyncProtobufDeserializer(BareTopicSerde, _confluent.AsyncProtobufDeserializer):
    """confluent-kafka's ``AsyncProtobufDeserializer``, naming subjects after the bare topic of a topic URI."""


class ProtobufSerializer(BareTopicSerde, _confluent.ProtobufSerializer):
    """confluent-kafka's ``ProtobufSerializer``, naming subjects after the bare topic of a topic URI."""


class ProtobufDeserializer(BareTopicSerde, _confluent.ProtobufDeserializer):
    """confluent-kafka's ``ProtobufDeserializer``, naming subjects after the bare topic of a topic URI."""
