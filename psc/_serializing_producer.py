"""``SerializingProducer``: confluent-kafka's producer with key and value serializers, over topic URIs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka.error import KeySerializationError, ValueSerializationError
from confluent_kafka.serialization import MessageField, SerializationContext

from psc._producer import Producer
from psc.errors import ConfigError

SerdeFunction = Callable[[Any, SerializationContext | None], Any]


class SerializingProducer(Producer):
    """A :class:`~psc.Producer` that serializes keys and values as ``confluent_kafka.SerializingProducer`` does.

    ``psc.producer.key.serializer`` and ``psc.producer.value.serializer`` may hold confluent-style serializers
    (``callable(obj, SerializationContext) -> bytes``); a serde name there keeps PSC's meaning. The context's
    topic is the topic URI the application passed; :mod:`psc.schema_registry` serializers name subjects after
    its bare topic.
    """

    def __init__(self, conf: Mapping[str, Any]) -> None:
        settings = dict(conf)
        self._key_serializer = pop_serde(settings, "psc.producer.key.serializer")
        self._value_serializer = pop_serde(settings, "psc.producer.value.serializer")
        super().__init__(settings)

    def produce(  # type: ignore[override]
        self,
        topic: str,
        key: Any = None,
        value: Any = None,
        partition: int = -1,
        on_delivery: Callable[[Any, Any], None] | None = None,
        timestamp: int = 0,
        headers: Any = None,
    ) -> None:
        """Serialize ``key`` and ``value`` for ``topic`` (a topic URI) and queue the record.

        Raises ``KeySerializationError`` or ``ValueSerializationError`` (with the serializer's exception)
        when a serializer fails; nothing is queued then.
        """
        ctx = SerializationContext(topic, MessageField.KEY, headers)
        if self._key_serializer is not None:
            try:
                key = self._key_serializer(key, ctx)
            except Exception as exc:
                raise KeySerializationError(exc) from exc
        ctx.field = MessageField.VALUE
        if self._value_serializer is not None:
            try:
                value = self._value_serializer(value, ctx)
            except Exception as exc:
                raise ValueSerializationError(exc) from exc
        super().produce(
            topic, value, key, partition=partition, on_delivery=on_delivery, timestamp=timestamp, headers=headers
        )


def pop_serde(settings: dict[str, Any], key: str) -> SerdeFunction | None:
    """Remove and return a confluent-style (de)serializer set under ``key``; leave a PSC serde name in place."""
    found = settings.get(key)
    if found is None or isinstance(found, str):
        return None
    if not callable(found):
        raise ConfigError(f"{key}={found!r}: expected a serde name or a callable(obj, SerializationContext)")
    del settings[key]
    serde: SerdeFunction = found
    return serde
