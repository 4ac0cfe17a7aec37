"""Serializers and deserializers for record keys and values.

A serializer turns an application value into the bytes sent to the backend; a deserializer does the
reverse. Built-ins: bytes (identity), string, JSON, and Avro in the Confluent Schema Registry wire format
(magic byte 0, 4-byte big-endian schema id, schemaless Avro body) so records interoperate with every other
client of the same registry. ``None`` always maps to ``None`` (a tombstone), whatever the format.
"""

from __future__ import annotations

import importlib
import io
import json
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from psc.errors import ConfigError, SerializationError

T_contra = TypeVar("T_contra", contravariant=True)
T_co = TypeVar("T_co", covariant=True)

SerdeField = Literal["key", "value"]
Headers = Sequence[tuple[str, bytes | None]]

# Confluent wire format header: magic byte 0, then the schema id as a big-endian unsigned int32.
_MAGIC_BYTE = 0
_WIRE_HEADER = struct.Struct(">bI")


@dataclass(slots=True, frozen=True)
class SerdeContext:
    """Where a key or value is going to or coming from."""

    topic_uri: str
    field: SerdeField
    headers: Headers | None = None

    @property
    def topic(self) -> str:
        """The backend topic name: the last ``:``-separated field of the topic URI."""
        return self.topic_uri.rsplit(":", 1)[-1]


class Serializer(Protocol[T_contra]):
    def serialize(self, value: T_contra, ctx: SerdeContext) -> bytes | None: ...


class Deserializer(Protocol[T_co]):
    def deserialize(self, data: bytes | None, ctx: SerdeContext) -> T_co: ...


def _error(ctx: SerdeContext, verb: str, cause: BaseException | str) -> SerializationError:
    return SerializationError(
        f"cannot {verb} {ctx.field} for topic URI {ctx.topic_uri!r}: {cause}",
        topic_uri=ctx.topic_uri,
        field=ctx.field,
    )


class BytesSerializer:
    """Identity: bytes pass through; bytearray and memoryview are copied to bytes."""

    def serialize(self, value: bytes | bytearray | memoryview | None, ctx: SerdeContext) -> bytes | None:
        if value is None or type(value) is bytes:
            return value
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        raise _error(ctx, "serialize", f"expected bytes, bytearray or memoryview, got {type(value).__name__}")


class BytesDeserializer:
    def deserialize(self, data: bytes | None, ctx: SerdeContext) -> bytes | None:
        return data


class StringSerializer:
    def __init__(self, encoding: str = "utf-8") -> None:
        "".encode(encoding)  # fail at construction on an unknown codec, not on the first record
        self.encoding = encoding

    def serialize(self, value: str | None, ctx: SerdeContext) -> bytes | None:
        if value is None:
            return None
        try:
            return value.encode(self.encoding)
        except (AttributeError, UnicodeError) as exc:
            raise _error(ctx, "serialize", exc) from exc


class StringDeserializer:
    def __init__(self, encoding: str = "utf-8") -> None:
        b"".decode(encoding)
        self.encoding = encoding

    def deserialize(self, data: bytes | None, ctx: SerdeContext) -> str | None:
        if data is None:
            return None
        try:
            return data.decode(self.encoding)
        except UnicodeError as exc:
            raise _error(ctx, "deserialize", exc) from exc


class JsonSerializer:
    """Compact UTF-8 JSON (no spaces after separators, non-ASCII kept as UTF-8)."""

    def serialize(self, value: Any, ctx: SerdeContext) -> bytes | None:
        if value is None:
            return None
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise _error(ctx, "serialize", exc) from exc


class JsonDeserializer:
    def deserialize(self, data: bytes | None, ctx: SerdeContext) -> Any:
        if data is None:
            return None
        try:
            return json.loads(data)
        except (UnicodeError, ValueError) as exc:
            raise _error(ctx, "deserialize", exc) from exc


# --- Avro in the Schema Registry wire format -------------------------------------------------------

SubjectNameStrategy = Callable[[SerdeContext, str | None], str]


def topic_subject_name_strategy(ctx: SerdeContext, record_name: str | None) -> str:
    """``<topic>-key`` / ``<topic>-value``: the registry's default strategy."""
    return f"{ctx.topic}-{ctx.field}"


def record_subject_name_strategy(ctx: SerdeContext, record_name: str | None) -> str:
    """The fully qualified record name, shared by every topic carrying that record."""
    if not record_name:
        raise ValueError("the record subject name strategy needs a named record schema")
    return record_name


def topic_record_subject_name_strategy(ctx: SerdeContext, record_name: str | None) -> str:
    return f"{ctx.topic}-{record_subject_name_strategy(ctx, record_name)}"


def schema_registry_client(conf: str | Mapping[str, Any]) -> Any:
    """A confluent-kafka Schema Registry client; a ``mock://`` URL gives the in-memory mock client."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    settings = {"url": conf} if isinstance(conf, str) else dict(conf)
    return SchemaRegistryClient.new_client(settings)


def _parse_avro(schema_str: str) -> Any:
    import fastavro

    return fastavro.parse_schema(json.loads(schema_str))


def _record_name(parsed: Any) -> str | None:
    return parsed.get("name") if isinstance(parsed, dict) else None


class AvroSerializer:
    """Avro body prefixed with the registry schema id; the id is resolved once per subject and cached."""

    def __init__(
        self,
        registry_client: Any,
        schema_str: str,
        subject_name_strategy: SubjectNameStrategy = topic_subject_name_strategy,
        auto_register: bool = True,
    ) -> None:
        self._registry = registry_client
        self._schema_str = schema_str
        self._parsed = _parse_avro(schema_str)
        self._record_name = _record_name(self._parsed)
        self._strategy = subject_name_strategy
        self._auto_register = auto_register
        self._ids: dict[str, int] = {}

    def serialize(self, value: Any, ctx: SerdeContext) -> bytes | None:
        if value is None:
            return None
        import fastavro

        try:
            schema_id = self._schema_id(ctx)
            out = io.BytesIO()
            out.write(_WIRE_HEADER.pack(_MAGIC_BYTE, schema_id))
            fastavro.schemaless_writer(out, self._parsed, value)
            return out.getvalue()
        except SerializationError:
            raise
        except Exception as exc:  # fastavro and the registry raise many unrelated types
            raise _error(ctx, "serialize", exc) from exc

    def _schema_id(self, ctx: SerdeContext) -> int:
        subject = self._strategy(ctx, self._record_name)
        schema_id = self._ids.get(subject)
        if schema_id is None:
            schema_id = self._ids[subject] = self._resolve(subject)
        return schema_id

    def _resolve(self, subject: str) -> int:
        from confluent_kafka.schema_registry import Schema

        schema = Schema(self._schema_str, "AVRO")
        if self._auto_register:
            return int(self._registry.register_schema(subject, schema))
        return int(self._registry.lookup_schema(subject, schema).schema_id)


class AvroDeserializer:
    """Reads the writer schema id from the wire header; writer schemas are fetched once per id."""

    def __init__(self, registry_client: Any, reader_schema: str | None = None) -> None:
        self._registry = registry_client
        self._reader = _parse_avro(reader_schema) if reader_schema is not None else None
        self._writers: dict[int, Any] = {}

    def deserialize(self, data: bytes | None, ctx: SerdeContext) -> Any:
        if data is None:
            return None
        import fastavro

        if len(data) < _WIRE_HEADER.size:
            raise _error(ctx, "deserialize", f"{len(data)} bytes is shorter than the 5-byte wire header")
        magic, schema_id = _WIRE_HEADER.unpack_from(data)
        if magic != _MAGIC_BYTE:
            raise _error(ctx, "deserialize", f"unknown magic byte {magic}; expected {_MAGIC_BYTE}")
        try:
            writer = self._writer_schema(schema_id)
            body = io.BytesIO(data)
            body.seek(_WIRE_HEADER.size)
            return fastavro.schemaless_reader(body, writer, self._reader)
        except Exception as exc:
            raise _error(ctx, "deserialize", f"schema id {schema_id}: {exc}") from exc

    def _writer_schema(self, schema_id: int) -> Any:
        writer = self._writers.get(schema_id)
        if writer is None:
            schema = self._registry.get_schema(schema_id)
            writer = self._writers[schema_id] = _parse_avro(schema.schema_str)
        return writer


# --- Resolution by name ----------------------------------------------------------------------------

_SERIALIZERS: dict[str, Callable[..., Any]] = {
    "bytes": BytesSerializer,
    "string": StringSerializer,
    "json": JsonSerializer,
    "avro": AvroSerializer,
}
_DESERIALIZERS: dict[str, Callable[..., Any]] = {
    "bytes": BytesDeserializer,
    "string": StringDeserializer,
    "json": JsonDeserializer,
    "avro": AvroDeserializer,
}


def get_serializer(name_or_path: str, **kwargs: Any) -> Serializer[Any]:
    """A serializer by built-in name or import path (``pkg.mod:Class`` or ``pkg.mod.Class``).

    A class found by path is instantiated with ``kwargs``; a ready object is returned as is.
    """
    found = _resolve(name_or_path, _SERIALIZERS, "serializer", kwargs)
    _require_method(found, "serialize", name_or_path)
    return found  # type: ignore[no-any-return]


def get_deserializer(name_or_path: str, **kwargs: Any) -> Deserializer[Any]:
    """A deserializer by built-in name or import path, resolved like :func:`get_serializer`."""
    found = _resolve(name_or_path, _DESERIALIZERS, "deserializer", kwargs)
    _require_method(found, "deserialize", name_or_path)
    return found  # type: ignore[no-any-return]


def _resolve(name: str, builtins: Mapping[str, Callable[..., Any]], kind: str, kwargs: dict[str, Any]) -> Any:
    factory = builtins.get(name.lower())
    if factory is None:
        factory = _import(name, kind, sorted(builtins))
    if not isinstance(factory, type):
        return factory
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"cannot create {kind} {name!r}: {exc}") from exc


def _import(path: str, kind: str, names: list[str]) -> Any:
    module_name, sep, attr = path.partition(":") if ":" in path else path.rpartition(".")
    if not sep or not module_name or not attr:
        raise ConfigError(
            f"unknown {kind} {path!r}: expected one of {', '.join(names)} or an import path 'package.module:ClassName'"
        )
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"unknown {kind} {path!r}: {exc}") from exc


def _require_method(found: Any, method: str, name: str) -> None:
    if not callable(getattr(found, method, None)):
        raise ConfigError(f"{name!r} is not a {method[:-1]}er: it has no {method}() method")


__all__ = [
    "AvroDeserializer",
    "AvroSerializer",
    "BytesDeserializer",
    "BytesSerializer",
    "Deserializer",
    "Headers",
    "JsonDeserializer",
    "JsonSerializer",
    "SerdeContext",
    "SerdeField",
    "SerializationError",
    "Serializer",
    "StringDeserializer",
    "StringSerializer",
    "get_deserializer",
    "get_serializer",
    "record_subject_name_strategy",
    "schema_registry_client",
    "topic_record_subject_name_strategy",
    "topic_subject_name_strategy",
]
