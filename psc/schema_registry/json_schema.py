"""``confluent_kafka.schema_registry.json_schema`` for PSC: its (de)serializers see the bare topic of a topic URI.

Builders are confluent-kafka's own: the serializers they build see the topic as given.
"""

from __future__ import annotations

from confluent_kafka.schema_registry import json_schema as _confluent
from confluent_kafka.schema_registry.json_schema import (
    DEFAULT_SPEC,
    AsyncJSONDeserializerBuilder,
    AsyncJSONSerializerBuilder,
    JSONDeserializerBuilder,
    JsonMessage,
    JsonSchema,
    JSONSerializerBuilder,
    get_inline_tags,
    get_type,
    transform,
    validate_message,
)

from psc.serialization._topic import BareTopicSerde

__all__ = [
    "DEFAULT_SPEC",
    "AsyncJSONDeserializer",
    "AsyncJSONDeserializerBuilder",
    "AsyncJSONSerializer",
    "AsyncJSONSerializerBuilder",
    "JSONDeserializer",
    "JSONDeserializerBuilder",
    "JSONSerializer",
    "JSONSerializerBuilder",
    "JsonMessage",
    "JsonSchema",
    "get_inline_tags",
    "get_type",
    "transform",
    "validate_message",
]


class AsyncJSONSerializer(BareTopicSerde, _confluent.AsyncJSONSerializer):
    """confluent-kafka's ``AsyncJSONSerializer``, naming subjects after the bare topic of a topic URI."""


class AsyncJSONDeserializer(BareTopicSerde, _confluent.AsyncJSONDeserializer):
    """confluent-kafka's ``AsyncJSONDeserializer``, naming subjects after the bare topic of a topic URI."""


class JSONSerializer(BareTopicSerde, _confluent.JSONSerializer):
    """confluent-kafka's ``JSONSerializer``, naming subjects after the bare topic of a topic URI."""


class JSONDeserializer(BareTopicSerde, _confluent.JSONDeserializer):
    """confluent-kafka's ``JSONDeserializer``, naming subjects after the bare topic of a topic URI."""
