"""Pure-Python versions of :mod:`psc._speedups`, for builds without a C compiler.

They define the behaviour; the C versions answer the same calls faster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psc._source import MessageId, Source
    from psc.backends.base import NativeError, NativeRecord


class RouteBase:
    """The fields of a producer route that :class:`FastProduce` reads."""

    __slots__ = ("count", "keep_headers", "plain", "produce", "sample_at", "source", "topic")

    def __init__(self) -> None:
        self.produce: Any = None
        self.topic: Any = None
        self.source: Any = None
        self.count = 0
        self.sample_at = 0
        self.plain = False
        # Records with headers keep them in a Report until delivered, for remediation's re-produce: remediation
        # is on and the backend's failure reports lack headers.
        self.keep_headers = False


class DeliveryTally:
    """A delivery callback that counts its reports: ``pending`` goes down on each, ``acked`` up on each success,
    and a failure calls ``failed(err, msg)``. A :class:`Report` counts the successes of a tally that keeps this
    ``__call__`` without building a Message: one tally can serve a whole batch of records."""

    __slots__ = ("acked", "pending")

    def __init__(self, pending: int = 0) -> None:
        self.pending = pending
        self.acked = 0

    def __call__(self, err: Any, msg: Any) -> Any:
        self.pending -= 1
        if err is None:
            self.acked += 1
            return None
        return self.failed(err, msg)

    def failed(self, err: Any, msg: Any) -> Any:
        """One record's delivery failed; does nothing unless overridden."""
        return None


class Report:
    """The delivery report of a fast-path record with a callback or headers to keep: ``report(err, native)``.

    A success calls ``callback(None, Message(native, route.source))``; a failure goes to
    ``failed(route, callback, headers, err, native)``, the producer's remediation.
    """

    __slots__ = ("callback", "failed", "headers", "route")

    def __init__(self, route: RouteBase, callback: Any, headers: Any, failed: Callable[..., Any]) -> None:
        self.route = route
        self.callback = callback
        self.headers = headers
        self.failed = failed

    def __call__(self, err: Any, native: Any) -> Any:
        if err is not None:
            return self.failed(self.route, self.callback, self.headers, err, native)
        callback = self.callback
        if callback is None:
            return None
        if isinstance(callback, DeliveryTally) and type(callback).__call__ is DeliveryTally.__call__:
            callback.pending -= 1
            callback.acked += 1
            return None
        callback(None, Message(native, self.route.source))
        return None


# confluent-kafka's produce(topic, value=None, key=None, partition=-1, callback=None, on_delivery=None,
# timestamp=0, headers=None)
_PRODUCE_ARGS = ("topic", "value", "key", "partition", "callback", "on_delivery", "timestamp", "headers")


class FastProduce:
    """``Producer.produce`` for plain routes: one backend call, anything else to ``slow``."""

    __slots__ = ("failed", "on_error", "routes", "slow")

    def __init__(
        self,
        routes: Mapping[str, RouteBase],
        slow: Callable[..., None],
        on_error: Callable[..., None],
        failed: Callable[..., Any],
    ) -> None:
        self.routes = routes
        self.slow = slow
        self.on_error = on_error
        self.failed = failed

    def forget(self) -> None:
        """Routes changed. This path keeps no cached route, so there is nothing to drop."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        given = _parse_produce(args, kwargs)
        if given is None:
            return self.slow(*args, **kwargs)
        callback = _pick_callback(given)
        partition, timestamp = given.get("partition", -1), given.get("timestamp", 0)
        if callback is False or type(partition) is not int or type(timestamp) is not int:
            return self.slow(*args, **kwargs)
        headers = given.get("headers")
        try:
            route = self.routes.get(given["topic"])
        except TypeError:
            route = None
        if (
            route is None
            or not route.plain
            or route.count + 1 == route.sample_at
            or ((callback is not None or headers is not None) and route.source is None)
        ):
            return self.slow(*args, **kwargs)
        value, key = given.get("value"), given.get("key")
        report = None
        if callback is not None or (headers is not None and route.keep_headers):
            # Headers are kept only for remediation's re-produce: without it they would only hold memory.
            report = Report(route, callback, headers if route.keep_headers else None, self.failed)
        # (topic, value), and the key when there is one: the backend parses each argument again.
        call: tuple[Any, ...] = (route.topic, value) if key is None else (route.topic, value, key)
        names: dict[str, Any] = {}
        if report is not None or headers is not None or partition != -1 or timestamp:
            call = (route.topic, value, key, partition, report)
            if "timestamp" in given:
                names["timestamp"] = timestamp
            if headers is not None:
                names["headers"] = headers
        route.count += 1
        try:
            route.produce(*call, **names)
            return None
        except BaseException as exc:  # the handler re-raises what it does not handle
            return self.on_error(route, value, key, exc, partition, timestamp, callback, headers)


def _parse_produce(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """produce()'s arguments by name, or None when the call is not one it accepts (Python then raises)."""
    if len(args) > len(_PRODUCE_ARGS):
        return None
    given = dict(zip(_PRODUCE_ARGS, args, strict=False))
    for name, value in kwargs.items():
        if name not in _PRODUCE_ARGS or name in given:
            return None
        given[name] = value
    return given if "topic" in given else None


def _pick_callback(given: dict[str, Any]) -> Any:
    """``on_delivery or callback`` as Python's produce() picks it; False when one is neither None nor callable."""
    callback = None
    for name in ("on_delivery", "callback"):
        candidate = given.get(name)
        if candidate is None:
            continue
        if not callable(candidate):
            return False
        if candidate and callback is None:
            callback = candidate
    return callback


class MemberBase:
    """The fields of a consumer member that :class:`FastPoll` reads."""

    __slots__ = ("buffer", "countdown", "slow", "source")

    def __init__(self) -> None:
        self.buffer: list[Any] = []
        self.source: Any = None
        self.countdown = 0
        self.slow = True


class FastPoll:
    """``Consumer.poll()`` for one cluster, served from the member's buffer; anything else to Python."""

    __slots__ = ("member", "rare", "slow", "tick")

    def __init__(
        self,
        slow: Callable[..., Any],
        rare: Callable[[Any, Any, Any], Any],
        tick: Callable[[Any, Any], None],
    ) -> None:
        self.member: MemberBase | None = None
        self.slow = slow
        self.rare = rare
        self.tick = tick

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        member = self.member
        if kwargs or len(args) > 1 or member is None or not member.buffer:
            return self.slow(*args, **kwargs)
        native = member.buffer.pop()
        if native.error() is not None or member.slow:
            return self.rare(args[0] if args else None, member, native)
        member.countdown -= 1
        if not member.countdown:
            try:
                self.tick(member, native)
            except BaseException:
                member.buffer.append(native)  # not returned, so not lost: the next poll returns it
                raise
        return Message(native, member.source)


class Message:
    """A consumed (or delivered) message; the accessors mirror ``confluent_kafka.Message``.

    ``key()``/``value()`` return the deserialized key and value; ``topic()`` returns the topic URI.
    Everything is read from the native record when asked for; the client's ``Source`` gives the rest.
    """

    __slots__ = ("_native", "_source")

    def __init__(self, native: NativeRecord, source: Source) -> None:
        self._native = native
        self._source = source

    def topic(self) -> str:
        """The topic URI."""
        return self._source.topic_uri(self._native.topic())

    @property
    def topic_uri(self) -> str:
        return self._source.topic_uri(self._native.topic())

    def partition(self) -> int | None:
        return self._native.partition()

    def offset(self) -> int | None:
        return self._native.offset()

    def timestamp(self) -> tuple[int, int]:
        """``(timestamp type, ms since the epoch)`` as in confluent-kafka."""
        return self._native.timestamp()

    def key(self) -> Any:
        return self._native.key()

    def value(self) -> Any:
        return self._native.value()

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return self._native.headers()

    def error(self) -> NativeError | None:
        """The ``KafkaError`` the record carries (``msg.error().code() == KafkaError._PARTITION_EOF``)."""
        return self._native.error()

    def leader_epoch(self) -> int | None:
        epoch: int | None = self._native.leader_epoch()  # type: ignore[attr-defined]
        return epoch

    def latency(self) -> float | None:
        """A produced record's delivery latency in seconds, as confluent-kafka's ``Message.latency()``."""
        latency: float | None = self._native.latency()  # type: ignore[attr-defined]
        return latency

    def is_eof(self) -> bool:
        """True for the end-of-partition marker returned when ``enable.partition.eof`` is set."""
        return self._source.is_eof(self._native)

    @property
    def message_id(self) -> MessageId:
        return self._source.message_id(self._native)

    @property
    def native(self) -> NativeRecord:
        """The backend's own record, for what PSC does not expose."""
        return self._native

    def __len__(self) -> int:
        value = self._native.value()
        return 0 if value is None else len(value)

    def __repr__(self) -> str:
        return f"Message(topic_uri={self.topic()!r}, partition={self.partition()}, offset={self.offset()})"


def wrap_batch(source: Source, batch: list[Any]) -> list[Message] | None:
    """A message per native record, or None when one carries an error."""
    for native in batch:
        if native.error() is not None:
            return None
    return [Message(native, source) for native in batch]
