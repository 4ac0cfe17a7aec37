"""``DeserializingConsumer``: confluent-kafka's consumer with key and value deserializers, over topic URIs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka.error import ConsumeError, KeyDeserializationError, ValueDeserializationError
from confluent_kafka.serialization import MessageField, SerializationContext

from psc._consumer import Consumer
from psc._serializing_producer import pop_serde


class DeserializedMessage:
    """A consumed message whose key and value are the deserialized objects; everything else is the message's."""

    __slots__ = ("_key", "_message", "_value")

    def __init__(self, message: Any, key: Any, value: Any) -> None:
        self._message = message
        self._key = key
        self._value = value

    def key(self) -> Any:
        return self._key

    def value(self) -> Any:
        return self._value

    def deserialized_key(self) -> Any:
        return self._key

    def deserialized_value(self) -> Any:
        return self._value

    def set_key(self, key: Any) -> None:
        self._key = key

    def set_value(self, value: Any) -> None:
        self._value = value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._message, name)

    def __len__(self) -> int:
        return len(self._message)

    def __repr__(self) -> str:
        return f"Deserialized{self._message!r}"


class DeserializingConsumer(Consumer):
    """A :class:`~psc.Consumer` that deserializes as ``confluent_kafka.DeserializingConsumer`` does.

    ``psc.consumer.key.deserializer`` and ``psc.consumer.value.deserializer`` may hold confluent-style
    deserializers (``callable(bytes, SerializationContext)``); a serde name there keeps PSC's meaning. The
    context's topic is the message's topic URI; :mod:`psc.schema_registry` deserializers use its bare topic.
    """

    def __init__(self, conf: Mapping[str, Any]) -> None:
        settings = dict(conf)
        self._key_deserializer = pop_serde(settings, "psc.consumer.key.deserializer")
        self._value_deserializer = pop_serde(settings, "psc.consumer.value.deserializer")
        super().__init__(settings)

    def poll(self, timeout: float | None = -1) -> Any:
        """The next message, deserialized, or None after ``timeout`` seconds (negative or None: wait forever).

        Raises ``ConsumeError`` for an error message, ``KeyDeserializationError`` or
        ``ValueDeserializationError`` when a deserializer fails.
        """
        message: Any = super().poll(None if timeout is None or timeout < 0 else timeout)
        if message is None:
            return None
        error: Any = message.error()
        if error is not None:
            raise ConsumeError(error, kafka_message=message)
        return self._deserialize(message)

    def _deserialize(self, message: Any) -> DeserializedMessage:
        ctx = SerializationContext(message.topic(), MessageField.KEY, message.headers())
        key, value = message.key(), message.value()
        if self._key_deserializer is not None:
            try:
                key = self._key_deserializer(key, ctx)
            except Exception as exc:
                raise KeyDeserializationError(exception=exc, kafka_message=message) from exc
        if self._value_deserializer is not None:
            ctx.field = MessageField.VALUE
            try:
                value = self._value_deserializer(value, ctx)
            except Exception as exc:
                raise ValueDeserializationError(exception=exc, kafka_message=message) from exc
        return DeserializedMessage(message, key, value)

    def consume(self, num_messages: int = 1, timeout: float | None = -1) -> list[Any]:
        """Not offered, as in confluent-kafka: use :meth:`poll`."""
        raise NotImplementedError
