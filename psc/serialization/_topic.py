"""The topic a ``SerializationContext`` names, for code that derives names from it (subjects, rules)."""

from __future__ import annotations

from typing import Any

from confluent_kafka.serialization import SerializationContext

from psc._uri import TopicUri


def topic_name(topic: str) -> str:
    """The bare topic of ``topic``: a topic URI's last segment; a bare name (no ``:``) is returned as is.

    Kafka topic names cannot hold ``:``, so a name with one must be a URI; a malformed one raises
    :class:`~psc.InvalidUriError` naming what is wrong, rather than becoming a subject name.
    """
    if ":" not in topic:
        return topic
    return TopicUri.parse(topic).topic


def with_topic_name(ctx: SerializationContext | None) -> SerializationContext | None:
    """``ctx`` with its topic URI replaced by the bare topic; the same headers list, so headers written
    through it (schema ids) reach the record. A context that already names a bare topic is returned as is."""
    if ctx is None or ctx.topic is None:
        return ctx
    name = topic_name(ctx.topic)
    return ctx if name == ctx.topic else SerializationContext(name, ctx.field, ctx.headers)


class BareTopicSerde:
    """Mixin for confluent-kafka's Schema Registry (de)serializers: they see the bare topic name.

    Everything they derive from the topic (subject names through any strategy, rule contexts) then names
    the topic as every other client of the registry does: ``orders-value``, never a URI.
    """

    def __call__(self, data: Any, ctx: SerializationContext | None = None) -> Any:
        return super().__call__(data, with_topic_name(ctx))  # type: ignore[misc]
