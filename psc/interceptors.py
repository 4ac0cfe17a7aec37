"""Interceptors: hooks that observe, transform or drop records on their way through a client.

Typed interceptors see application values (before serialization on produce, after deserialization on
consume); raw interceptors see bytes (after serialization on produce, before deserialization on consume).
Returning ``None`` from ``on_send``/``on_consume`` drops the record. As in Kafka's own interceptors, an
interceptor that raises is logged and skipped so that a faulty hook never breaks produce or consume.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from psc.common import get_logger

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")

_log = get_logger("psc.interceptors")

RecordHeaders = list[tuple[str, bytes | None]]


@dataclass(slots=True)
class InterceptorRecord(Generic[K, V]):
    """A record as interceptors see it; partition, offset and timestamp are known only on consume."""

    topic_uri: str
    key: K
    value: V
    headers: RecordHeaders = field(default_factory=list)
    partition: int | None = None
    offset: int | None = None
    timestamp_ms: int | None = None


TypedRecord = InterceptorRecord[Any, Any]
RawRecord = InterceptorRecord[bytes | None, bytes | None]


class Interceptor(Protocol[R]):
    def on_send(self, record: R) -> R | None: ...

    def on_consume(self, record: R) -> R | None: ...

    def on_acknowledgement(
        self, topic_uri: str, partition: int | None, offset: int | None, error: BaseException | None
    ) -> None: ...

    def close(self) -> None: ...


class _NoOpInterceptor(Generic[R]):
    """Every hook a no-op: subclasses override the ones they need."""

    def on_send(self, record: R) -> R | None:
        return record

    def on_consume(self, record: R) -> R | None:
        return record

    def on_acknowledgement(
        self, topic_uri: str, partition: int | None, offset: int | None, error: BaseException | None
    ) -> None:
        """Called from the delivery report: ``error`` is ``None`` when the record was written."""

    def close(self) -> None:
        pass


class TypedInterceptor(_NoOpInterceptor[TypedRecord]):
    """Base for interceptors of application-level records; every hook defaults to a no-op."""


class RawInterceptor(_NoOpInterceptor[RawRecord]):
    """Base for interceptors of serialized records; every hook defaults to a no-op."""


class InterceptorChain(Generic[R]):
    """Applies interceptors in order; ``empty`` lets the client skip the chain entirely per message."""

    __slots__ = ("empty", "interceptors")

    def __init__(self, interceptors: Iterable[Interceptor[R]] = ()) -> None:
        self.interceptors: tuple[Interceptor[R], ...] = tuple(interceptors)
        self.empty = not self.interceptors

    def on_send(self, record: R) -> R | None:
        return self._apply("on_send", record)

    def on_consume(self, record: R) -> R | None:
        return self._apply("on_consume", record)

    def on_acknowledgement(
        self, topic_uri: str, partition: int | None, offset: int | None, error: BaseException | None
    ) -> None:
        for interceptor in self.interceptors:
            try:
                interceptor.on_acknowledgement(topic_uri, partition, offset, error)
            except Exception:
                _log.warning("interceptor failed", hook="on_acknowledgement", interceptor=_name(interceptor))

    def close(self) -> None:
        for interceptor in self.interceptors:
            try:
                interceptor.close()
            except Exception:
                _log.warning("interceptor failed", hook="close", interceptor=_name(interceptor))

    def _apply(self, hook: str, record: R) -> R | None:
        current: R | None = record
        for interceptor in self.interceptors:
            try:
                current = getattr(interceptor, hook)(current)
            except Exception:
                # Keep the record as it was before the failing hook: a broken interceptor must not lose data.
                _log.warning("interceptor failed", hook=hook, interceptor=_name(interceptor), exc_info=True)
            if current is None:
                return None
        return current


def _name(interceptor: object) -> str:
    return type(interceptor).__qualname__


# --- Produce timestamp for end-to-end latency ------------------------------------------------------

PRODUCE_TS_HEADER = "psc.produce.ts"
_TS = struct.Struct(">q")


def encode_produce_ts(epoch_ms: int) -> bytes:
    """The header value: milliseconds since the Unix epoch as a big-endian signed 64-bit integer."""
    return _TS.pack(epoch_ms)


def decode_produce_ts(value: bytes | None) -> int | None:
    """Milliseconds since the epoch, or ``None`` when the header value is not 8 bytes."""
    if value is None or len(value) != _TS.size:
        return None
    return int(_TS.unpack(value)[0])


class ProduceTimestampInterceptor(RawInterceptor):
    """Stamps each produced record with header ``psc.produce.ts`` and reports end-to-end latency on consume.

    The header holds the producer's wall clock in ms since the epoch as an 8-byte big-endian int64, so
    any client can read it. On consume ``observe(topic_uri, seconds)`` receives now minus that stamp,
    floored at zero because producer and consumer clocks may disagree slightly.
    """

    def __init__(
        self,
        observe: Callable[[str, float], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._observe = observe
        self._clock = clock

    def on_send(self, record: RawRecord) -> RawRecord | None:
        stamp = encode_produce_ts(int(self._clock() * 1000))
        # A new list: the caller may reuse its headers list; an earlier stamp (a re-produced record) goes.
        headers = [h for h in record.headers if h[0] != PRODUCE_TS_HEADER]
        headers.append((PRODUCE_TS_HEADER, stamp))
        record.headers = headers
        return record

    def on_consume(self, record: RawRecord) -> RawRecord | None:
        if self._observe is None:
            return record
        produced_ms = _last_stamp(record.headers)
        if produced_ms is not None:
            self._observe(record.topic_uri, max(0.0, self._clock() - produced_ms / 1000))
        return record


def _last_stamp(headers: RecordHeaders) -> int | None:
    for name, value in reversed(headers):
        if name == PRODUCE_TS_HEADER:
            return decode_produce_ts(value)
    return None
