"""``confluent_kafka.schema_registry`` for PSC: the same client and types; subjects named by bare topics.

The topic-derived subject name strategies take the topic from a topic URI: ``SerializationContext(uri,
MessageField.VALUE)`` for ``plaintext:/rn:kafka:prod:aws_us-west-1::cluster01:orders`` gives the subject
``orders-value``, the one every other client of the registry uses. The serializers of :mod:`.avro`,
:mod:`.json_schema` and :mod:`.protobuf` strip the URI before any strategy runs, custom strategies included.
"""

from __future__ import annotations

from confluent_kafka import schema_registry as _confluent
from confluent_kafka.schema_registry import (
    Association,
    AssociationCreateOrUpdateInfo,
    AssociationCreateOrUpdateRequest,
    AssociationInfo,
    AssociationResponse,
    AsyncSchemaRegistryClient,
    ConfigCompatibilityLevel,
    Metadata,
    MetadataProperties,
    MetadataTags,
    RegisteredSchema,
    Rule,
    RuleKind,
    RuleMode,
    RuleParams,
    RuleSet,
    Schema,
    SchemaReference,
    SchemaRegistryClient,
    SchemaRegistryError,
    ServerConfig,
    dual_schema_id_deserializer,
    header_schema_id_serializer,
    prefix_schema_id_deserializer,
    prefix_schema_id_serializer,
    record_subject_name_strategy,
)
from confluent_kafka.serialization import SerializationContext

from psc.serialization._topic import with_topic_name

__all__ = [
    "Association",
    "AssociationCreateOrUpdateInfo",
    "AssociationCreateOrUpdateRequest",
    "AssociationInfo",
    "AssociationResponse",
    "AsyncSchemaRegistryClient",
    "ConfigCompatibilityLevel",
    "Metadata",
    "MetadataProperties",
    "MetadataTags",
    "RegisteredSchema",
    "Rule",
    "RuleKind",
    "RuleMode",
    "RuleParams",
    "RuleSet",
    "Schema",
    "SchemaReference",
    "SchemaRegistryClient",
    "SchemaRegistryError",
    "ServerConfig",
    "dual_schema_id_deserializer",
    "header_schema_id_serializer",
    "prefix_schema_id_deserializer",
    "prefix_schema_id_serializer",
    "record_subject_name_strategy",
    "topic_record_subject_name_strategy",
    "topic_subject_name_strategy",
]


def topic_subject_name_strategy(ctx: SerializationContext | None, record_name: str | None) -> str | None:
    """``{topic}-key`` or ``{topic}-value``, with the bare topic of a topic URI."""
    return _confluent.topic_subject_name_strategy(with_topic_name(ctx), record_name)


def topic_record_subject_name_strategy(ctx: SerializationContext | None, record_name: str | None) -> str | None:
    """``{topic}-{record_name}``, with the bare topic of a topic URI."""
    return _confluent.topic_record_subject_name_strategy(with_topic_name(ctx), record_name)
