"""``confluent_kafka.schema_registry.error`` for PSC: the same exceptions."""

from confluent_kafka.schema_registry.error import (
    OAuthTokenError,
    SchemaParseException,
    SchemaRegistryError,
    UnknownType,
)

__all__ = ["OAuthTokenError", "SchemaParseException", "SchemaRegistryError", "UnknownType"]
