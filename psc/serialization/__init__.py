"""``confluent_kafka.serialization`` for PSC: the same serializers, context and errors.

Applications pass a topic URI where confluent-kafka takes a topic, so ``SerializationContext.topic`` holds
what the application passed, as it does in confluent-kafka. Serializers that derive names from the topic
use the bare topic: those of :mod:`psc.schema_registry` do so themselves, and :func:`topic_name` gives it
to an application's own serializer.
"""

from confluent_kafka.serialization import (
    Deserializer,
    DeserializerBuilder,
    DoubleDeserializer,
    DoubleSerializer,
    IntegerDeserializer,
    IntegerSerializer,
    MessageField,
    SerializationContext,
    SerializationError,
    Serializer,
    SerializerBuilder,
    StringDeserializer,
    StringSerializer,
)

from psc.serialization._topic import topic_name

__all__ = [
    "Deserializer",
    "DeserializerBuilder",
    "DoubleDeserializer",
    "DoubleSerializer",
    "IntegerDeserializer",
    "IntegerSerializer",
    "MessageField",
    "SerializationContext",
    "SerializationError",
    "Serializer",
    "SerializerBuilder",
    "StringDeserializer",
    "StringSerializer",
    "topic_name",
]
