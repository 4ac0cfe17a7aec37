"""``confluent_kafka.schema_registry.avro`` for PSC: its (de)serializers see the bare topic of a topic URI.

Builders are confluent-kafka's own: the serializers they build see the topic as given.
"""

from __future__ import annotations

from confluent_kafka.schema_registry import avro as _confluent
from confluent_kafka.schema_registry.avro import (
    AsyncAvroDeserializerBuilder,
    AsyncAvroSerializerBuilder,
    AvroDeserializerBuilder,
    AvroMessage,
    AvroSchema,
    AvroSerializerBuilder,
    LocalSchemaRepository,
    get_inline_tags,
    get_type,
    parse_schema_with_repo,
    transform,
    validate_message,
)

from psc.serialization._topic import BareTopicSerde

__all__ = [
    "AsyncAvroDeserializer",
    "AsyncAvroDeserializerBuilder",
    "AsyncAvroSerializer",
    "AsyncAvroSerializerBuilder",
    "AvroDeserializer",
    "AvroDeserializerBuilder",
    "AvroMessage",
    "AvroSchema",
    "AvroSerializer",
    "AvroSerializerBuilder",
    "LocalSchemaRepository",
    "get_inline_tags",
    "get_type",
    "parse_schema_with_repo",
    "transform",
    "validate_message",
]


class AsyncAvroSerializer(BareTopicSerde, _confluent.AsyncAvroSerializer):
    """confluent-kafka's ``AsyncAvroSerializer``, naming subjects after the bare topic of a topic URI."""


class AsyncAvroDeserializer(BareTopicSerde, _confluent.AsyncAvroDeserializer):
    """confluent-kafka's ``AsyncAvroDeserializer``, naming subjects after the bare topic of a topic URI."""


class AvroSerializer(BareTopicSerde, _confluent.AvroSerializer):
    """confluent-kafka's ``AvroSerializer``, naming subjects after the bare topic of a topic URI."""


class AvroDeserializer(BareTopicSerde, _confluent.AvroDeserializer):
    """confluent-kafka's ``AvroDeserializer``, naming subjects after the bare topic of a topic URI."""
