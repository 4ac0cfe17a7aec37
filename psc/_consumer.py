"""The PSC consumer: confluent-kafka's ``Consumer`` API over topic URIs and any registered backend.

Topics on different clusters are read by one backend consumer per cluster (a *member*). With a single
member, ``poll``/``consume`` call the backend directly and wrap each record in a two-slot
:class:`~psc._message.Message`. With several, every member is polled without waiting first, then in short
slices that together last at most ``_SLICE_S``, so a record on any cluster is returned within about one
slice whatever the number of clusters (confluent-kafka 2.x offers no shared wakeup across consumers).

Buffering: on the single-cluster plain path, ``poll`` takes records from the backend in batches (a
non-blocking ``consume``; when it finds nothing, one blocking ``poll`` for the first record) and serves
them from a per-member buffer, saving a backend call per record. librdkafka counts every fetched record as
consumed, so PSC keeps the application's view: ``commit()`` without arguments and ``position()`` report the
first record not yet returned; seek, pause, resume, (un)assign, (un)subscribe, close and resets first give
buffered records back (seeking their partitions to the first unreturned offset); a revocation lets the
application's callback see those positions, then drops the revoked partitions' records. Each batch is sized
to be served in about ``_BUFFER_S`` at the rate the previous one was, at most
``psc.consumer.poll.messages.max``, so the backend is still called often enough for
``max.poll.interval.ms``. Automatic commits (on by default, as in librdkafka) with automatic offset store
would commit buffered records, so PSC turns librdkafka's automatic store off and stores the offsets of the
records it returned itself: at every refill (when all fetched records were returned), before a revocation,
a commit and close. Serde and interceptors read one record per call.

Errors: as in confluent-kafka, an error reaches the application as a message from ``poll``/``consume``
whose ``error()`` is the ``KafkaError``, but only once remediation (swallow, retry, reset the backend
consumer restoring subscription, assignment and positions) could not solve it; what remediation solved
the application never sees. End-of-partition messages come only when ``enable.partition.eof`` is set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MethodType
from typing import Any, cast, overload

from confluent_kafka import KafkaError

from psc._accel import FastPoll, MemberBase, wrap_batch
from psc._callbacks import merge_config, split_callbacks
from psc._client_settings import CERT_CHECK_EVERY_S, ERROR_RESET_INTERVAL_S, METRICS_EVERY_S, ClientSettings
from psc._config import PscConfig
from psc._configlog import report_config
from psc._message import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    PARTITION_EOF,
    DecodedMessage,
    Message,
    MessageId,
    Source,
    TopicUriPartition,
)
from psc._metrics import ClientMetrics, client_metrics
from psc._producer import Producer
from psc._remediation import Action, Remedy, backend_error
from psc._uri import TopicUri
from psc.backends import Cluster, resolve_cluster
from psc.backends.base import BackendConsumer, BackendPartition, ClusterMetadata
from psc.common import LogThrottle, get_logger
from psc.errors import BackendError, ClientClosedError, ConfigError, ConsumerError, InvalidUriError, PscError
from psc.interceptors import (
    PRODUCE_TS_HEADER,
    InterceptorRecord,
    RawInterceptor,
    TypedInterceptor,
    decode_produce_ts,
)
from psc.serde import Deserializer, SerdeContext, get_deserializer

_log = get_logger("psc.consumer")

RebalanceCallback = Callable[["Consumer", list[TopicUriPartition]], None]
CommitCallback = Callable[[KafkaError | None, list[TopicUriPartition]], None]

_SLICE_S = 0.01  # one round of waiting across all clusters
_BUFFER_S = 0.1  # a poll buffer should be served in about this long, so the backend is called often
_HOUSEKEEPING_EVERY = 1024  # records between housekeeping checks on the fast path, when not sampling
_REJOIN_WAIT_S = 10.0  # how long a commit after a reset waits for the new backend consumer's assignment
_Key = tuple[str, int]
_REPORTED_AT_ONCE = frozenset({"UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC", "_UNKNOWN_PARTITION"})


class _Settings(ClientSettings):
    """A consumer's configuration resolved once: native settings, serde, interceptors, remediation."""

    def __init__(
        self,
        config: PscConfig,
        key_deserializer: Deserializer[Any] | None,
        value_deserializer: Deserializer[Any] | None,
        interceptors: Iterable[TypedInterceptor | RawInterceptor],
        metrics: ClientMetrics,
    ) -> None:
        super().__init__(config, interceptors, metrics, "consumer", bool(key_deserializer or value_deserializer))
        self.key_deserializer = key_deserializer or get_deserializer(config.key_serde)
        self.value_deserializer = value_deserializer or get_deserializer(config.value_serde)
        strategy = str(self.native.get("partition.assignment.strategy", ""))
        self.cooperative = "cooperative" in strategy
        native = self.native
        auto_commit = _flag(native.get("enable.auto.commit", native.get("auto.commit.enable")), True)
        self.auto_store = _flag(native.get("enable.auto.offset.store"), True)
        # Automatic commits of offsets librdkafka stores by itself would commit records still in PSC's buffer:
        # with a backend that can store offsets, PSC stores those of the records it returned instead.
        self.managed_store = self.plain and auto_commit and self.auto_store
        if self.managed_store:
            native["enable.auto.offset.store"] = "false"
        self.poll_messages_max = config.poll_messages_max

    def buffer_max(self, consumer: BackendConsumer) -> int:
        """How many records one refill of a member over ``consumer`` may buffer."""
        if not self.plain or (self.managed_store and not stores_offsets(consumer)):
            return 1
        return self.poll_messages_max


def stores_offsets(consumer: BackendConsumer) -> bool:
    return type(consumer).store_offsets is not BackendConsumer.store_offsets


class _Member(MemberBase):
    """The backend consumer of one cluster, with what a reset needs to rebuild it.

    ``buffer``, ``source``, ``countdown`` and ``slow`` live in :class:`MemberBase`, where the C fast path
    of :meth:`Consumer.poll` reads them.
    """

    __slots__ = (
        "buffer_max",
        "carry",
        "cert_schedule",
        "cluster",
        "consume",
        "consumer",
        "counts",
        "errors",
        "last_error_reset",
        "managed",
        "manual",
        "only_topic",
        "period",
        "plain",
        "poll",
        "positions",
        "refilled",
        "reset_reason",
        "restore",
        "rewound",
        "served",
        "size",
        "stored",
        "topics",
        "window",
    )

    def __init__(self, cluster: Cluster, consumer: BackendConsumer, settings: _Settings) -> None:
        self.cluster = cluster
        self.source = Source(cluster.cluster_uri, cluster.topic_uri)
        self.topics: list[str] = []  # subscription, as native topic names
        self.manual: list[BackendPartition] | None = None  # the assignment, when assigned by hand
        self.positions: dict[_Key, int] = {}  # positions of revoked partitions, for a reset
        self.restore: dict[_Key, int] | None = None  # positions to apply at the next assignment
        # After a reset, what the old backend consumer held for the application's next commit(), which must
        # commit it as it would have without the reset: offsets the application stored (stored again in the new
        # consumer once assigned) or, under librdkafka's automatic store, the positions it was given.
        self.carry: dict[_Key, int] | None = None
        self.stored: dict[_Key, int] = {}  # what store_offsets() stored, when the application stores offsets
        self.counts: dict[str, int] = {}  # records returned per native topic, not yet published
        self.only_topic: str | None = None  # the one topic read, when there is one: counts skip topic()
        # The fast path counts records down from ``window``; at zero it ticks: counts, sampling, housekeeping.
        self.plain = settings.plain
        self.period = settings.sample_every or _HOUSEKEEPING_EVERY
        self.window = self.countdown = self.period
        self.slow = True  # records go through the general path: not plain, or topic() needed per record
        self.errors: dict[str, int] = {}  # consecutive occurrences per error name, for bounded retries
        self.cert_schedule = settings.certificate_schedule(cluster)
        self.reset_reason: str | None = None  # set by the error callback, acted on outside librdkafka's poll
        self.last_error_reset = 0.0
        # Records fetched but not yet returned, the next one last; refilled in batches of ``size`` records.
        self.buffer: list[Any] = []
        self.buffer_max = settings.buffer_max(consumer)
        self.managed = settings.managed_store and stores_offsets(consumer)  # PSC stores the offsets it returned
        self.size = 1
        self.refilled = 0.0  # when the buffer was last refilled, with ``served`` records
        self.served = 0
        # Partitions given back by a seek: librdkafka reports no position (and keeps the stored offset
        # past the buffered records) until it returns a record of them again.
        self.rewound: dict[_Key, int] = {}
        self.bind(consumer)

    def set_topics(self, topics: Iterable[str] | None) -> None:
        """The topics read now (None: not known here); counts so far go to the topic read until now."""
        self.settle()
        unique = set(topics or ())
        self.only_topic = unique.pop() if len(unique) == 1 else None
        self.slow = not self.plain or self.only_topic is None

    def settle(self) -> None:
        """Count the records of the current window so far (the single-topic fast path counts no other way)."""
        done = self.window - self.countdown
        self.window = self.countdown
        only = self.only_topic
        if done and only is not None:
            self.counts[only] = self.counts.get(only, 0) + done

    def restart_window(self, length: int) -> None:
        self.settle()
        self.window = self.countdown = length

    def bind(self, consumer: BackendConsumer) -> None:
        self.consumer = consumer
        self.poll = consumer.poll
        self.consume = consumer.consume


class Consumer:
    """A consumer addressed by topic URIs, with ``confluent_kafka.Consumer``'s API.

    ``config`` holds PSC keys (``psc.consumer.*``, ``psc.*``); connection settings come from discovery. As
    in confluent-kafka it may be given as a dict, as keyword arguments (``Consumer(**conf)``) or both, and
    may hold callbacks (``error_cb``, ``stats_cb``, ``throttle_cb``, ``oauth_cb``, ``logger``,
    ``on_commit``), plain or as ``psc.consumer.<name>``. The keyword-only arguments are PSC's own.
    Rebalance callbacks are called as ``callback(consumer, partitions)`` with :class:`TopicPartition`.
    ``on_commit(error, partitions)`` reports the result of every commit, synchronous or not, as
    confluent-kafka's; per-partition failures are in each partition's ``error``.
    """

    @overload
    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        /,
        *,
        key_deserializer: Deserializer[Any] | None = None,
        value_deserializer: Deserializer[Any] | None = None,
        interceptors: Iterable[TypedInterceptor | RawInterceptor] = (),
        metrics: ClientMetrics | None = None,
        **more_config: Any,
    ) -> None: ...

    @overload  # confluent-kafka's Client(**conf), whatever the value type of conf
    def __init__(self, config: Mapping[str, Any] | None = None, /, **more_config: Any) -> None: ...

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        /,
        *,
        key_deserializer: Deserializer[Any] | None = None,
        value_deserializer: Deserializer[Any] | None = None,
        interceptors: Iterable[TypedInterceptor | RawInterceptor] = (),
        metrics: ClientMetrics | None = None,
        **more_config: Any,
    ) -> None:
        raw, self._app_callbacks = split_callbacks(merge_config(config, more_config), "consumer")
        on_commit: CommitCallback | None = self._app_callbacks.own
        psc_config = PscConfig.from_mapping(raw, client_type="consumer")
        if not psc_config.native.get("group.id"):
            # As confluent-kafka, at construction: librdkafka's own message would name its key, not PSC's.
            raise ConfigError("psc.consumer.group.id must be set: every consumer belongs to a consumer group")
        self._metrics = metrics if metrics is not None else client_metrics()
        self._settings = _Settings(psc_config, key_deserializer, value_deserializer, interceptors, self._metrics)
        self._repeats = LogThrottle(_log)  # a broker down reports on every reconnect: a line each would flood
        self._on_commit = on_commit
        self._clusters: dict[str, Cluster] = {}
        self._members: dict[str, _Member] = {}
        self._order: list[_Member] = []
        self._one: _Member | None = None  # the fast path: exactly one cluster (set with _set_one)
        self._fast_poll = FastPoll(MethodType(Consumer.poll, self), self._poll_rare, self._tick)
        if type(self).poll is Consumer.poll:
            # Buffered records skip the Python method: the C fast path returns them and hands the rest to it.
            vars(self)["poll"] = self._fast_poll
        self._rr = 0
        self._callbacks: tuple[RebalanceCallback | None, ...] = (None, None, None)
        self._lock = threading.RLock()
        self._closed = False
        self._closing = False
        self._config_logged = False
        self._next_publish = 0.0
        self._next_cert_check = 0.0
        self._deferred: PscError | None = None  # an error held back so that earlier messages are returned
        self._eof = str(self._settings.native.get("enable.partition.eof", "false")).lower() == "true"

    # --- subscription and assignment ----------------------------------------------------------------

    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        """Subscribe to the topic URIs ``topics`` (replacing any earlier subscription), possibly across clusters."""
        self._check_open()
        if isinstance(topics, str) or not topics:
            raise ConsumerError(f"subscribe() takes a non-empty list of topic URIs, got {topics!r}")
        grouped = self._group_topics(topics)
        self._log_config(list(topics))
        self._callbacks = (on_assign, on_revoke, on_lost)
        self._give_back_all()
        for prefix, member in list(self._members.items()):
            if prefix not in grouped and member.topics:
                member.topics = []
                member.consumer.unsubscribe()
        for prefix, topics in grouped.items():
            member = self._member(prefix)
            member.topics, member.manual = topics, None
            member.set_topics(topics)
            self._subscribe_member(member)

    def _group_topics(self, topic_uris: Iterable[str]) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for uri in topic_uris:
            parsed = self._parse(uri)  # the only parse: typed values from here on
            if parsed.is_cluster:
                raise ConsumerError(f"cannot subscribe to cluster URI {uri!r}: it names no topic", topic_uri=uri)
            cluster = self._cluster(parsed)
            grouped.setdefault(cluster.cluster_uri, []).append(cluster.topic_name(parsed))
        return grouped

    def _subscribe_member(self, member: _Member) -> None:
        member.consumer.subscribe(
            member.topics,
            lambda parts: self._on_assign(member, parts),
            lambda parts: self._on_revoke(member, parts, lost=False),
            lambda parts: self._on_revoke(member, parts, lost=True),
        )

    def unsubscribe(self) -> None:
        self._check_open()
        self._give_back_all()
        for member in self._order:
            if member.topics:
                member.topics = []
                member.consumer.unsubscribe()

    def assign(self, partitions: Sequence[TopicUriPartition]) -> None:
        """Assign partitions by hand (replacing the assignment), with optional start offsets."""
        self._check_open()
        grouped = self._to_backend(partitions)
        self._log_config(sorted({tp.topic_uri for tp in partitions}))
        for member in self._order:
            self._give_back(member)
            member.rewound.clear()
            parts = grouped.get(member.cluster.cluster_uri, [])
            member.manual = list(parts)
            member.set_topics(p.topic for p in parts)
            member.consumer.assign(parts)

    def unassign(self) -> None:
        self._check_open()
        for member in self._order:
            self._give_back(member)
            member.rewound.clear()
            member.manual = None
            member.consumer.unassign()

    def incremental_assign(self, partitions: Sequence[TopicUriPartition]) -> None:
        self._check_open()
        for member, parts in self._by_member(partitions):
            self._give_back(member, parts)
            if member.manual is not None:
                member.manual = [p for p in member.manual if p[:2] not in {q[:2] for q in parts}] + parts
                member.set_topics(p.topic for p in member.manual)
            else:
                member.set_topics(None)  # the assignment is no longer known here
            member.consumer.incremental_assign(parts)

    def incremental_unassign(self, partitions: Sequence[TopicUriPartition]) -> None:
        self._check_open()
        for member, parts in self._by_member(partitions):
            self._give_back(member, parts)
            if member.manual is not None:
                gone = {p[:2] for p in parts}
                member.manual = [p for p in member.manual if p[:2] not in gone]
            member.consumer.incremental_unassign(parts)

    def assignment(self) -> list[TopicUriPartition]:
        self._check_open()
        return [tp for member in self._order for tp in self._to_psc(member, member.consumer.assignment())]

    def _on_assign(self, member: _Member, parts: list[BackendPartition]) -> None:
        restore, member.restore = member.restore, None
        if restore:
            # After a reset: continue exactly where the old backend consumer stopped.
            parts = [p._replace(offset=restore.get((p.topic, p.partition), p.offset)) for p in parts]
            if self._settings.cooperative:
                member.consumer.incremental_assign(parts)
            else:
                member.consumer.assign(parts)
            if not self._settings.auto_store:
                self._store_carried(member, parts)
        callback = self._callbacks[0]
        if callback is not None:
            callback(self, self._to_psc(member, parts))

    def _on_revoke(self, member: _Member, parts: list[BackendPartition], *, lost: bool) -> None:
        if not lost:
            self._remember_positions(member, parts)
            if member.managed:
                self._store_returned(member)  # librdkafka commits the stored offsets of revoked partitions
        callback = self._callbacks[2] if lost and self._callbacks[2] is not None else self._callbacks[1]
        try:
            if callback is not None:
                callback(self, self._to_psc(member, parts))  # its commit() sees the buffered records unreturned
        finally:
            # Buffered records of partitions no longer owned are dropped: the callback's commit did not count them.
            gone = {p[:2] for p in parts}
            member.buffer = [n for n in member.buffer if (n.topic(), n.partition()) not in gone]
            for key in gone:
                member.rewound.pop(key, None)
                member.stored.pop(key, None)
                if member.carry:
                    member.carry.pop(key, None)

    def _remember_positions(self, member: _Member, parts: list[BackendPartition]) -> None:
        try:
            for p in self._positions(member, parts):
                if p.offset >= 0:
                    member.positions[(p.topic, p.partition)] = p.offset
        except Exception:  # positions are a best effort for a later reset
            _log.debug("cannot read positions", cluster_uri=member.cluster.cluster_uri, exc_info=True)

    # --- consuming -----------------------------------------------------------------------------------

    def poll(self, timeout: float | None = None) -> Message | None:
        """The next message, or None after ``timeout`` seconds (None or negative: wait forever).

        An instance's ``poll`` is ``_fast_poll``, which serves the only member's buffered records and calls
        this method when there is no such member or its buffer is empty.
        """
        member = self._one
        if member is None:
            return self._poll_slow(timeout, None)
        if not member.buffer:
            native = self._refill(member, -1 if timeout is None else timeout)
            if native is None:
                self._housekeeping()
                return None
            member.buffer.append(native)  # served next, by the one fast path
        return self._fast_poll(timeout)

    def _refill(self, member: _Member, timeout: float) -> Any:
        """The next record from the backend; when buffering, the rest of its batch goes to the buffer."""
        if member.buffer_max == 1:
            return member.poll(timeout)
        if member.managed and member.served:
            self._store_returned(member)  # every record fetched so far was returned: auto-commit may have them
        now = time.monotonic()
        elapsed = now - member.refilled
        # Size the batch to be served in about _BUFFER_S at the rate the last one was; grow gradually.
        target = int(member.served * _BUFFER_S / elapsed) if elapsed > 0 else member.buffer_max
        size = member.size = max(1, min(member.buffer_max, member.size * 2, target))
        if size > 1:
            # Never wait here: librdkafka's batch waits for the whole batch or the timeout.
            batch = member.consume(size, 0)
            # Records librdkafka fetched in this very call before a revocation are kept, as confluent-kafka
            # returns them: their offsets were stored, so a commit in on_revoke already counted them.
            if batch:
                member.refilled, member.served = now, len(batch)
                batch.reverse()
                native = batch.pop()
                member.buffer = batch
                return native
        native = member.poll(timeout)
        if native is not None:
            member.refilled, member.served = now, 1
        return native

    def _poll_rare(self, timeout: float | None, member: _Member, native: Any) -> Message | None:
        """A record the fast path does not take: an error, serde or interceptors, or several topics read."""
        if native.error() is not None or not member.plain:
            # It may wait up to ``timeout`` again after a swallowed error: the common path reads no clock.
            return self._poll_slow(timeout, None, (member, native))
        member.countdown -= 1
        if member.countdown <= 0:
            try:
                self._tick(member, native)
            except BaseException:
                member.buffer.append(native)  # not returned, so not lost: the next poll returns it
                raise
        topic = native.topic()
        member.counts[topic] = member.counts.get(topic, 0) + 1
        return Message(native, member.source)

    def _tick(self, member: _Member, native: Any) -> None:
        """Every ``period`` records on the fast paths: count them, sample latency, housekeeping."""
        member.restart_window(member.period)
        if member.errors:
            member.errors.clear()  # records flow again: errors are no longer consecutive
        if self._settings.sample_every:
            self._sample(member, native)
        self._housekeeping()

    def _poll_slow(
        self, timeout: float | None, started: float | None, fetched: tuple[_Member, Any] | None = None
    ) -> Message | None:
        """Poll the general way; ``fetched`` is a record the fast path already took from a member."""
        self._check_open()
        self._raise_deferred()
        self._housekeeping()
        if timeout is not None and timeout < 0:
            timeout = None  # confluent-kafka's -1: wait forever
        start = time.monotonic() if started is None else started
        deadline = None if timeout is None else start + timeout
        first = True
        while True:
            batch = [fetched] if fetched is not None else self._fetch(1, deadline, first)
            fetched, first = None, False
            for member, native in batch:
                message = self._handle(member, native)
                if message is not None:
                    return message
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def consume(self, num_messages: int = 1, timeout: float | None = None) -> list[Message]:
        """Up to ``num_messages`` messages, waiting at most ``timeout`` seconds for the first."""
        if num_messages < 1:
            raise ValueError(f"num_messages must be at least 1, got {num_messages}")
        if timeout is not None and timeout < 0:
            timeout = None  # confluent-kafka's -1: wait forever
        member = self._one
        if member is not None and member.plain:
            if member.buffer:
                return self._wrap_plain(member, _take(member.buffer, num_messages))
            batch = member.consume(num_messages, -1 if timeout is None else timeout)
            return self._wrap_plain(member, batch)
        self._check_open()
        self._raise_deferred()
        self._housekeeping()
        deadline = None if timeout is None else time.monotonic() + timeout
        first = True
        while True:
            out = self._handle_batch(self._fetch(num_messages, deadline, first))
            first = False
            if out or (deadline is not None and time.monotonic() >= deadline):
                return out

    def _wrap_plain(self, member: _Member, batch: list[Any]) -> list[Message]:
        """Wrap a batch cheaply; from the first record carrying an error on, the slow way."""
        out = wrap_batch(member.source, batch)
        if out is None:  # rare: a record carries an error; from there on, the slow way
            index = next(i for i, native in enumerate(batch) if native.error() is not None)
            self._count(member, batch[:index])
            out = [Message(native, member.source) for native in batch[:index]]
            return self._handle_batch([(member, rest) for rest in batch[index:]], out)
        if not out:
            self._housekeeping()
            return out
        self._count(member, batch)
        if member.errors:
            member.errors.clear()
        if member.countdown <= 0:
            self._tick(member, batch[-1])
        else:
            self._housekeeping()
        return out

    @staticmethod
    def _count(member: _Member, batch: list[Any]) -> None:
        if member.only_topic is None:
            counts = member.counts
            for native in batch:
                topic = native.topic()
                counts[topic] = counts.get(topic, 0) + 1
        member.countdown -= len(batch)

    def _handle_batch(self, batch: list[tuple[_Member, Any]], out: list[Message] | None = None) -> list[Message]:
        """Handle every record; an error is raised only once the messages before it have been returned."""
        out = [] if out is None else out
        failure: PscError | None = None
        for member, native in batch:
            try:
                message = self._handle(member, native)
            except PscError as exc:
                failure = failure or exc
                continue
            if message is not None:
                out.append(message)
        if failure is not None:
            if not out:
                raise failure
            self._deferred = failure
            self._set_one(None)  # route the next call through the slow path, which raises it
        return out

    def _raise_deferred(self) -> None:
        failure, self._deferred = self._deferred, None
        if failure is not None:
            self._set_one(self._order[0] if len(self._order) == 1 else None)
            raise failure

    def _fetch(self, count: int, deadline: float | None, first: bool) -> list[tuple[_Member, Any]]:
        """Records from the members: without waiting first, then in slices shared by all members."""
        members = self._order
        for member in members:
            if member.buffer:  # records fetched earlier come first
                return [(member, native) for native in _take(member.buffer, count)]
        if not members:
            if deadline is not None:
                time.sleep(max(0.0, min(deadline - time.monotonic(), _SLICE_S)))
            return []
        if len(members) == 1:
            remaining = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            return [(members[0], native) for native in members[0].consume(count, remaining)]
        found: list[tuple[_Member, Any]] = []
        self._rr = (self._rr + 1) % len(members)
        rotated = members[self._rr :] + members[: self._rr]
        wait = 0.0 if first else _SLICE_S / len(members)
        for member in rotated:
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            found.extend((member, native) for native in member.consume(count - len(found), wait))
            if len(found) >= count:
                break
            if found:
                wait = 0.0  # something to return: do not wait on the others
        return found

    def _handle(self, member: _Member, native: Any) -> Message | None:
        """A record as a PSC message: errors remediated or raised, serde and interceptors applied."""
        error = native.error()
        if error is not None:
            return self._on_error(member, native, error)
        member.errors.clear()
        topic = native.topic()
        count = member.counts[topic] = member.counts.get(topic, 0) + 1
        if self._settings.sample_every and count % self._settings.sample_every == 0:
            self._sample(member, native)
        if self._settings.plain:
            return Message(native, member.source)
        return self._decode(member, native)

    def _decode(self, member: _Member, native: Any) -> Message | None:
        settings = self._settings
        uri = member.source.topic_uri(native.topic())
        key, value, headers = native.key(), native.value(), native.headers()
        if not settings.raw_chain.empty:
            raw = settings.raw_chain.on_consume(self._record(uri, native, key, value, headers))
            if raw is None:
                return None
            key, value, headers = raw.key, raw.value, raw.headers
        key = settings.key_deserializer.deserialize(key, SerdeContext(uri, "key", headers))
        value = settings.value_deserializer.deserialize(value, SerdeContext(uri, "value", headers))
        if not settings.typed_chain.empty:
            typed = settings.typed_chain.on_consume(self._record(uri, native, key, value, headers))
            if typed is None:
                return None
            key, value, headers = typed.key, typed.value, typed.headers
        return DecodedMessage.of(native, member.source, (key, value, headers))

    @staticmethod
    def _record(uri: str, native: Any, key: Any, value: Any, headers: Any) -> InterceptorRecord[Any, Any]:
        return InterceptorRecord(
            uri, key, value, list(headers or ()), native.partition(), native.offset(), native.timestamp()[1]
        )

    def _sample(self, member: _Member, native: Any) -> None:
        """End-to-end latency of a sampled record, from the producer's timestamp header when present."""
        for name, value in reversed(native.headers() or ()):
            if name == PRODUCE_TS_HEADER:
                stamp = decode_produce_ts(value)
                if stamp is not None:
                    uri = member.source.topic_uri(native.topic())
                    self._metrics.observe_e2e_latency(uri, max(0.0, time.time() - stamp / 1000))
                return

    # --- errors and remediation ----------------------------------------------------------------------

    def _on_error(self, member: _Member, native: Any, error: Any) -> Message | None:
        name = error.name()
        if name == PARTITION_EOF:
            return Message(native, member.source) if self._eof else None
        if name in _REPORTED_AT_ONCE:
            # A subscribed topic that does not exist: librdkafka keeps the subscription and reads the topic
            # once it appears; confluent-kafka tells the application at once, and so does PSC.
            return Message(native, member.source)
        uri = member.source.topic_uri(native.topic()) if native.topic() else member.cluster.cluster_uri
        remediator = self._settings.remediator
        remedy = remediator.remedy_for(error, uri)
        seen = member.errors[name] = member.errors.get(name, 0) + 1
        member.restart_window(1)  # the next record on the fast path clears the errors
        step = _consumer_step(remedy, seen, self._settings.retries)
        if step is Action.NONE or step is Action.RETRY:
            if step is Action.RETRY:
                self._metrics.retry(uri)
            return None
        if step is Action.RESET:
            member.errors[name] = self._settings.retries + 1  # a second reset for the same error throws
            self._reset(member, f"{name}: {error.str()}")
            return None
        member.errors.pop(name, None)
        return Message(native, member.source)  # as confluent-kafka delivers it: a message whose error() is set

    def _reset(self, member: _Member, reason: str) -> None:
        """Recreate a member's backend consumer, restoring subscription, assignment and positions."""
        with self._lock:
            old = member.consumer
            restore = dict(member.positions)
            owned: set[_Key] = set()
            try:
                current = old.assignment()
                self._remember_positions(member, current)  # the first unreturned records, buffered or not
                restore.update(member.positions)
                owned = {(p.topic, p.partition) for p in current}
            except Exception:
                _log.debug("cannot read the assignment before reset", exc_info=True)
            managed, member.managed = member.managed, False  # the old consumer's revocation must store nothing
            carry: dict[_Key, int] | None = None
            if managed:
                self._store_returned(member)  # before the buffer goes: only what the application was given
            else:  # librdkafka stored the returned records' offsets (the positions), or the application did
                stored = restore if self._settings.auto_store else member.stored
                carry = {key: stored[key] for key in owned if key in stored}
            member.buffer = []
            member.rewound.clear()
            try:
                old.close()
            except Exception:
                _log.debug("closing the old consumer failed", exc_info=True)
            member.bind(self._new_backend(member.cluster))
            member.managed, member.carry = managed, carry  # set after the old consumer's revocation on close
            self._metrics.reset(member.cluster.cluster_uri)
            _log.warning("reset backend consumer", cluster_uri=member.cluster.cluster_uri, reason=reason)
            if member.topics:
                member.restore = restore
                self._subscribe_member(member)
            elif member.manual is not None:
                parts = [p._replace(offset=restore.get((p.topic, p.partition), p.offset)) for p in member.manual]
                member.consumer.assign(parts)
                if not self._settings.auto_store:
                    self._store_carried(member, parts)

    def _store_carried(self, member: _Member, assigned: Sequence[BackendPartition]) -> None:
        """Store again, in a new backend consumer, the offsets its predecessor held for a commit to come."""
        carry, member.carry = member.carry, None
        if not carry:
            return
        parts = [p._replace(offset=carry[key]) for p in assigned if carry.get(key := (p.topic, p.partition), -1) >= 0]
        try:
            if parts:
                member.consumer.store_offsets(parts)
        except Exception:  # the application's next commit then finds less stored: never more than it was given
            _log.debug("cannot store carried offsets", cluster_uri=member.cluster.cluster_uri, exc_info=True)

    def _call(
        self, member: _Member, method: str, *args: Any, check: Callable[[Exception, int], None] | None = None
    ) -> Any:
        """Run a backend consumer method under remediation (retry with backoff, reset, typed error).

        The method is looked up on every attempt: after a reset it runs on the new backend consumer.
        ``check(exc, attempt)`` may raise instead for a failure that must reach the application as it is.
        """
        attempts = 0

        def attempt() -> Any:
            nonlocal attempts
            attempts += 1
            try:
                return getattr(member.consumer, method)(*args)
            except Exception as exc:
                if check is not None:
                    check(exc, attempts)
                raise

        try:
            return self._settings.remediator.run(
                attempt, lambda: self._reset(member, "remediation"), member.cluster.cluster_uri
            )
        except PscError:
            raise
        except Exception as exc:
            raise BackendError.from_native(exc, cluster_uri=member.cluster.cluster_uri) from exc

    # --- offsets -------------------------------------------------------------------------------------

    def commit(
        self,
        message: Message | MessageId | None = None,
        offsets: Sequence[TopicUriPartition] | None = None,
        asynchronous: bool = True,
    ) -> list[TopicUriPartition] | None:
        """Commit a message's offset + 1, explicit ``offsets`` (next to read), or current positions."""
        self._check_open()
        if message is not None and offsets is not None:
            raise ValueError("commit() takes either message or offsets, not both")
        if message is not None:
            offsets = [_next_offset(message)]
        committed: list[TopicUriPartition] = []
        if offsets is None:
            targets: list[tuple[_Member, list[BackendPartition] | None]] = [(m, None) for m in self._order]
        else:
            targets = list(self._by_member(offsets))
        nothing: list[ConsumerError] = []
        for member, parts in targets:
            if parts is None and member.carry and member.topics:
                self._await_assignment(member)  # a reset's new backend consumer is still joining the group
            carried = member.carry if parts is None and self._settings.auto_store else None
            if parts is None and (
                member.managed or carried or (self._settings.auto_store and (member.buffer or member.rewound))
            ):
                # librdkafka's stored offsets are past the buffered records, or (when PSC stores them) behind the
                # returned ones, or (after a reset) miss what the old backend consumer returned: commit what the
                # application was given.
                assigned = self._positions(member, member.consumer.assignment())
                if carried:
                    assigned = [p if p.offset >= 0 else p._replace(offset=carried.get(p[:2], -1)) for p in assigned]
                parts = [p for p in assigned if p.offset >= 0] or None
                if member.managed and parts:
                    member.consumer.store_offsets(parts)  # so that the next automatic commit agrees
            try:
                result = self._call(member, "commit", parts, asynchronous, check=_no_offset_raises)
            except _NothingStored as exc:
                nothing.append(exc)
                continue
            if carried:
                member.carry = None
            committed.extend(self._to_psc(member, result or []))
        if not asynchronous and not targets:
            nothing.append(_NothingStored.of(KafkaError(KafkaError._NO_OFFSET, "Local: No offset stored")))
        if nothing and len(nothing) >= len(targets):
            raise nothing[0]  # as confluent-kafka: a synchronous commit of nothing raises _NO_OFFSET
        return None if asynchronous else committed

    def _await_assignment(self, member: _Member) -> None:
        """Serve the rebalance of a member's new backend consumer until it is assigned (bounded), so that a commit
        right after a reset commits what the application was given; records it returns meanwhile are kept."""
        deadline = time.monotonic() + _REJOIN_WAIT_S
        while not member.consumer.assignment() and time.monotonic() < deadline:
            native = member.poll(0.1)
            if native is not None:
                member.buffer.insert(0, native)  # returned after the records already buffered (none, after a reset)

    def store_offsets(
        self, message: Message | MessageId | None = None, offsets: Sequence[TopicUriPartition] | None = None
    ) -> None:
        """Store offsets for auto-commit (``enable.auto.offset.store=false``): as in confluent-kafka."""
        self._check_open()
        chosen = [_next_offset(message)] if message is not None else list(offsets or ())
        for member, parts in self._by_member(chosen):
            member.consumer.store_offsets(parts)
            if not self._settings.auto_store:
                member.stored.update(((p.topic, p.partition), p.offset) for p in parts)

    def committed(self, partitions: Sequence[TopicUriPartition], timeout: float = -1) -> list[TopicUriPartition]:
        return self._call_per_member("committed", partitions, timeout)

    def position(self, partitions: Sequence[TopicUriPartition]) -> list[TopicUriPartition]:
        self._check_open()
        out: list[TopicUriPartition] = []
        for member, parts in self._by_member(partitions):
            out.extend(self._to_psc(member, self._positions(member, parts)))
        return out

    def _positions(self, member: _Member, parts: Sequence[BackendPartition]) -> list[BackendPartition]:
        """The backend's positions, as the application sees them: its first record not yet returned."""
        found = member.consumer.position(parts)
        if not member.buffer and not member.rewound:
            return found
        first = _first_unreturned(member.buffer)
        out: list[BackendPartition] = []
        for p in found:
            key = (p.topic, p.partition)
            offset = first.get(key)
            if offset is None and p.offset < 0:
                offset = member.rewound.get(key)
            out.append(p if offset is None else p._replace(offset=offset, leader_epoch=None))
        return out

    def _store_returned(self, member: _Member) -> None:
        """Store the offsets after the records returned to the application, for librdkafka's auto-commit."""
        try:
            parts = [p for p in self._positions(member, member.consumer.assignment()) if p.offset >= 0]
            if parts:
                member.consumer.store_offsets(parts)
        except Exception:  # e.g. partitions revoked meanwhile: their records are read again, never skipped
            _log.debug("cannot store offsets", cluster_uri=member.cluster.cluster_uri, exc_info=True)

    def _give_back(self, member: _Member, parts: Sequence[BackendPartition] = ()) -> None:
        """Return buffered records to the backend, seeking to the first unreturned, before what is read changes.

        The positions of ``parts`` are about to be set anew: what was given back no longer applies to them.
        """
        buffer, member.buffer = member.buffer, []
        for (topic, partition), offset in _first_unreturned(buffer).items():
            try:
                member.consumer.seek(BackendPartition(topic, partition, offset))
                member.rewound[(topic, partition)] = offset
            except Exception:  # e.g. no longer assigned: it will start from its committed offset
                _log.debug("cannot give records back", cluster_uri=member.cluster.cluster_uri, exc_info=True)
        for p in parts:
            member.rewound.pop(p[:2], None)

    def _give_back_all(self) -> None:
        for member in self._order:
            self._give_back(member)

    def seek(self, partition: TopicUriPartition) -> None:
        """Move an assigned partition's position to ``partition.offset`` (may be a logical offset)."""
        self._check_open()
        for member, parts in self._by_member([partition]):
            self._give_back(member, parts)
            self._call(member, "seek", parts[0])

    def seek_to_beginning(self, partitions: Sequence[TopicUriPartition] | None = None) -> None:
        """Seek partitions (default: the whole assignment) to their first offset."""
        self._seek_all(partitions, OFFSET_BEGINNING)

    def seek_to_end(self, partitions: Sequence[TopicUriPartition] | None = None) -> None:
        """Seek partitions (default: the whole assignment) past their last offset."""
        self._seek_all(partitions, OFFSET_END)

    def seek_to_timestamp(
        self, timestamp_ms: int, partitions: Sequence[TopicUriPartition] | None = None, timeout: float = -1
    ) -> None:
        """Seek partitions (default: the assignment) to the first offset at or after ``timestamp_ms``."""
        chosen = self.assignment() if partitions is None else list(partitions)
        wanted = [TopicUriPartition(tp.topic_uri, tp.partition, timestamp_ms) for tp in chosen]
        for found in self.offsets_for_times(wanted, timeout):
            offset = found.offset if found.offset >= 0 else OFFSET_END
            self.seek(TopicUriPartition(found.topic_uri, found.partition, offset))

    def _seek_all(self, partitions: Sequence[TopicUriPartition] | None, offset: int) -> None:
        chosen = self.assignment() if partitions is None else list(partitions)
        for tp in chosen:
            self.seek(TopicUriPartition(tp.topic_uri, tp.partition, offset))

    def pause(self, partitions: Sequence[TopicUriPartition]) -> None:
        self._check_open()
        for member, parts in self._by_member(partitions):
            self._give_back(member)  # else librdkafka would resume after the buffered records
            member.consumer.pause(parts)

    def resume(self, partitions: Sequence[TopicUriPartition]) -> None:
        self._check_open()
        for member, parts in self._by_member(partitions):
            self._give_back(member)
            member.consumer.resume(parts)

    def get_watermark_offsets(
        self, partition: TopicUriPartition, timeout: float = -1, cached: bool = False
    ) -> tuple[int, int] | None:
        """``(low, high)`` offsets of a partition; with ``cached`` from the last fetch (None if unknown)."""
        self._check_open()
        for member, parts in self._by_member([partition]):
            found: tuple[int, int] | None = self._call(member, "get_watermark_offsets", parts[0], timeout, cached)
            return found
        return None

    def offsets_for_times(
        self, partitions: Sequence[TopicUriPartition], timeout: float = -1
    ) -> list[TopicUriPartition]:
        """For each partition (``offset`` = a timestamp in ms), the earliest offset at or after it."""
        return self._call_per_member("offsets_for_times", partitions, timeout)

    def _call_per_member(
        self, method: str, partitions: Sequence[TopicUriPartition], *args: Any
    ) -> list[TopicUriPartition]:
        """``method`` on each member for its share of ``partitions``, under remediation, in topic-URI terms."""
        self._check_open()
        out: list[TopicUriPartition] = []
        for member, parts in self._by_member(partitions):
            out.extend(self._to_psc(member, self._call(member, method, parts, *args)))
        return out

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        """Metadata of the cluster of ``topic`` (topic or cluster URI); topics keyed by topic URI."""
        self._check_open()
        uri = None if topic is None else self._parse(topic)
        member = self._member_of(uri)
        name = None if uri is None or uri.is_cluster else member.cluster.topic_name(uri)
        result: ClusterMetadata = self._call(member, "list_topics", name, timeout)
        return result

    def consumer_group_metadata(self, topic_uri: str | None = None) -> Any:
        """Group metadata for ``Producer.send_offsets_to_transaction`` (of ``topic_uri``'s cluster)."""
        self._check_open()
        return self._member_of(None if topic_uri is None else self._parse(topic_uri)).consumer.consumer_group_metadata()

    def cluster_id(self, timeout: float = -1, topic: str | None = None) -> str | None:
        """The id of the cluster (of ``topic``, a topic or cluster URI, when the consumer reads several)."""
        self._check_open()
        return self._member_of(None if topic is None else self._parse(topic)).consumer.cluster_id(timeout)

    def memberid(self, topic: str | None = None) -> str | None:
        """The member id in the group (on the cluster of ``topic`` when the consumer reads several)."""
        self._check_open()
        return self._member_of(None if topic is None else self._parse(topic)).consumer.memberid()

    # --- plumbing ------------------------------------------------------------------------------------

    def _parse(self, topic_uri: str) -> TopicUri:
        if not isinstance(topic_uri, str):
            raise InvalidUriError(repr(topic_uri), f"expected a topic URI string, got {type(topic_uri).__name__}")
        return TopicUri.parse(topic_uri)

    def _cluster(self, uri: TopicUri) -> Cluster:
        cluster = self._clusters.get(uri.cluster_prefix)
        if cluster is None:
            cluster = self._clusters[uri.cluster_prefix] = resolve_cluster(uri, self._settings.config)
        return cluster

    def _member(self, prefix: str) -> _Member:
        member = self._members.get(prefix)
        if member is None:
            cluster = self._clusters[prefix]
            member = self._members[prefix] = _Member(cluster, self._new_backend(cluster), self._settings)
            self._order.append(member)
            self._set_one(member if len(self._order) == 1 else None)
        return member

    def _set_one(self, member: _Member | None) -> None:
        self._one = self._fast_poll.member = member

    def _member_of(self, uri: TopicUri | None) -> _Member:
        if uri is not None:
            return self._member(self._cluster(uri).cluster_uri)
        if len(self._order) == 1:
            return self._order[0]
        raise ConsumerError("name a topic or cluster URI: this consumer uses several clusters (or none yet)")

    def _new_backend(self, cluster: Cluster) -> BackendConsumer:
        native = dict(self._settings.native)
        native["error_cb"] = lambda err: self._on_client_error(cluster, err)
        native.update(self._app_callbacks.native)
        if self._on_commit is not None:
            native["on_commit"] = lambda err, parts: self._report_commit(cluster, err, parts)
        try:
            return cluster.backend.create_consumer(cluster.endpoint, native, cluster.cluster_uri)
        except Exception as exc:
            raise ConsumerError(
                f"cannot create a consumer for {cluster.cluster_uri!r}: {exc}", cluster_uri=cluster.cluster_uri
            ) from exc

    def _report_commit(self, cluster: Cluster, err: Any, parts: list[Any]) -> None:
        """A backend's commit result, handed to ``on_commit`` in topic-URI terms (runs inside poll/commit)."""
        member = self._members.get(cluster.cluster_uri)
        if member is None or self._on_commit is None:
            return
        if err is not None:
            self._metrics.error(cluster.cluster_uri, err.name())
        self._on_commit(err, self._to_psc(member, parts))

    def _on_client_error(self, cluster: Cluster, err: Any) -> None:
        """librdkafka's error callback: errors the catalogue resets for (e.g. a rotated CA) schedule a reset.

        The callback runs inside the backend's poll, so the reset itself happens at the next housekeeping.
        """
        self._metrics.error(cluster.cluster_uri, err.name())
        self._repeats.log(
            "warning", (cluster.cluster_uri, err.name()), "consumer client error",
            cluster_uri=cluster.cluster_uri, error=err.str(), fatal=err.fatal(),
        )  # fmt: skip
        remediator = self._settings.remediator
        if remediator.enabled and remediator.catalogue.lookup(err, "consumer").action is Action.RESET:
            member = self._members.get(cluster.cluster_uri)
            if member is not None and time.monotonic() - member.last_error_reset >= ERROR_RESET_INTERVAL_S:
                member.reset_reason = f"{err.name()}: {err.str()}"
        if self._app_callbacks.error_cb is not None:
            self._app_callbacks.error_cb(err)  # after PSC acted on it, as confluent-kafka's error_cb

    def _to_backend(self, partitions: Iterable[TopicUriPartition]) -> dict[str, list[BackendPartition]]:
        """Partitions grouped by cluster, as backend partitions; members are created for new clusters."""
        grouped: dict[str, list[BackendPartition]] = {}
        for tp in partitions:
            if not isinstance(tp, TopicUriPartition):
                raise TypeError(f"expected TopicUriPartition, got {type(tp).__name__}")
            uri = self._parse(tp.topic)
            cluster = self._cluster(uri)
            self._member(cluster.cluster_uri)
            grouped.setdefault(cluster.cluster_uri, []).append(
                BackendPartition(cluster.topic_name(uri), tp.partition, tp.offset, None, tp.metadata, tp.leader_epoch)
            )
        return grouped

    def _by_member(self, partitions: Iterable[TopicUriPartition]) -> list[tuple[_Member, list[BackendPartition]]]:
        return [(self._members[prefix], parts) for prefix, parts in self._to_backend(partitions).items()]

    def _to_psc(self, member: _Member, parts: Iterable[BackendPartition]) -> list[TopicUriPartition]:
        uri = member.source.topic_uri
        # The backend's own error object: a KafkaError for Kafka, as confluent-kafka reports it.
        return [
            TopicUriPartition(uri(p.topic), p.partition, p.offset, p.metadata, p.leader_epoch, cast(Any, p.error))
            for p in parts
        ]

    def _log_config(self, topic_uris: list[str]) -> None:
        if not self._config_logged:
            self._config_logged = True
            report_config(self._settings.config, "consumer", topic_uris, Producer)

    def _housekeeping(self) -> None:
        """Publish counts (at most once a second) and reset clients whose certificate is about to expire."""
        now = time.monotonic()
        for member in self._order:
            if member.reset_reason is not None:
                reason, member.reset_reason, member.last_error_reset = member.reset_reason, None, now
                self._reset(member, reason)
        if now < self._next_publish:
            return
        self._next_publish = now + METRICS_EVERY_S
        self._publish_counts()
        if now >= self._next_cert_check:
            self._next_cert_check = now + CERT_CHECK_EVERY_S
            for member in self._order:
                schedule = member.cert_schedule
                if schedule is not None and schedule.due():
                    schedule.mark_reset()
                    self._reset(member, "certificate about to expire")

    def _publish_counts(self) -> None:
        for member in self._order:
            member.settle()
            counts, member.counts = member.counts, {}
            for topic, n in counts.items():
                self._metrics.received(member.source.topic_uri(topic), n)

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("the consumer is closed")

    # --- lifecycle -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Leave the group (committing if auto-commit is on) and release every backend consumer."""
        if self._closed or self._closing:
            return
        self._closing = True  # still open meanwhile: on_revoke callbacks run by the close may commit
        try:
            self._publish_counts()
            self._set_one(None)
            for member in self._order:
                if member.managed:
                    self._store_returned(member)  # the commit on close has every record returned
                    member.managed = False  # and no more: the buffer is dropped before the revocation runs
                member.buffer = []  # never returned; auto-commit, when on, commits only stored offsets here
                try:
                    member.consumer.close()
                except Exception:
                    _log.warning(
                        "closing a backend consumer failed", cluster_uri=member.cluster.cluster_uri, exc_info=True
                    )
        finally:
            self._closed = True
        self._settings.close()
        self._repeats.flush()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Consumer:
        return self

    def __next__(self) -> Message:
        """Iterate messages forever (until the consumer is closed)."""
        while True:
            if self._closed:
                raise StopIteration
            message = self.poll(1.0)
            if message is not None:
                return message


def _next_offset(message: Message | MessageId) -> TopicUriPartition:
    """The position after ``message``: what committing it means."""
    if isinstance(message, MessageId):
        return TopicUriPartition(message.topic_uri, message.partition, message.offset + 1)
    offset = message.offset()
    partition = message.partition()
    if offset is None or partition is None or offset < 0:
        raise ConsumerError(f"cannot commit {message!r}: it has no offset")
    return TopicUriPartition(message.topic(), partition, offset + 1)


class _NothingStored(ConsumerError):
    """A synchronous commit found no offset to commit: ``args[0]`` is librdkafka's ``_NO_OFFSET`` error."""

    @classmethod
    def of(cls, native: Any) -> _NothingStored:
        error = cls(f"commit failed: {native.str()}")
        error.args = (native,)
        return error


def _no_offset_raises(exc: Exception, attempt: int) -> None:
    """A first commit attempt with nothing stored raises ``_NO_OFFSET`` as confluent-kafka does.

    On a retry it means the partitions went away meanwhile (a rebalance): nothing is left to do, so the
    catalogue's remedy (swallow) applies.
    """
    info = backend_error(exc)
    if attempt == 1 and info is not None and info.name == "_NO_OFFSET":
        raise _NothingStored.of(info.native) from exc


def _take(buffer: list[Any], count: int) -> list[Any]:
    """Up to ``count`` records from the end of a buffer, in order."""
    taken = buffer[-count:]
    del buffer[-count:]
    taken.reverse()
    return taken


def _first_unreturned(buffer: list[Any]) -> dict[_Key, int]:
    """The offset of the first buffered record per partition (records carrying an error set none)."""
    first: dict[_Key, int] = {}
    for native in reversed(buffer):
        if native.error() is None:
            first.setdefault((native.topic(), native.partition()), native.offset())
    return first


def _flag(value: Any, default: bool) -> bool:
    return default if value is None else str(value).strip().lower() == "true"


def _consumer_step(remedy: Remedy, seen: int, retries: int) -> Action:
    """What to do about the ``seen``-th consecutive occurrence of a consumer error."""
    action = remedy.action
    if action is Action.RETRY_THEN_RESET:
        action = Action.RETRY if seen <= retries else Action.RESET
    if action is Action.RETRY and seen > retries:
        action = remedy.on_exhausted if remedy.on_exhausted is not Action.RETRY else Action.THROW
    if action is Action.RESET and seen > retries + 1:
        return Action.THROW
    return action


__all__ = ["OFFSET_INVALID", "CommitCallback", "Consumer", "RebalanceCallback"]
