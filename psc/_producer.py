"""The PSC producer: confluent-kafka's ``Producer`` API over topic URIs and any registered backend.

Routing: the first send to a topic URI string resolves it once (parse, backend validation, discovery of
its cluster, serde) into a :class:`_Route` cached under that very string, so later sends cost one dict
lookup. Each cluster prefix gets one backend producer, created lazily; all of them report deliveries to
one dispatch here.

Hot path: with bytes serde and no interceptors, ``produce`` is a dict lookup, an integer increment and the
backend's own ``produce``, in C (``psc/_speedups.c``), with confluent-kafka's arguments. A record with a
callback, or with headers while remediation is on, is given a ``Report`` as its ``on_delivery``: a success
calls the callback with a ``Message`` in C (a ``DeliveryTally`` callback is only counted, so one tally can
serve a batch of records), a failure goes to the remediation below. Records without a
callback report to one delivery handler configured on the backend producer, which only acts on failures
(a ``FailureReports``): the Kafka backend then asks confluent-kafka for no report of their successes, and a
librdkafka plugin keeps their failures (``psc/_failure_trap.c``), so such a success costs no Python call.
Where the plugin is not built, a success costs confluent-kafka a message object and one Python call.
``psc.producer.delivery.report.only.error=true`` removes that cost: confluent-kafka then calls Python for
failed deliveries only, so failures are still remediated, but application callbacks hear only of failures,
``send()`` is refused (its future needs the success report) and produce latency is not sampled. It is off
by default because a callback passed to ``produce`` asks for its success report. Sent counts are
accumulated in plain ints and published to Prometheus at most once a second from ``poll``/``flush``;
produce latency is sampled.

Remediation: a failed delivery is classified by the remediation catalogue. RETRY re-produces the record
(bounded, with backoff) before the application hears of it; RESET replaces the cluster's backend
producer, retiring the old one once its in-flight records are done, and re-produces what failed.
confluent-kafka's delivery reports do not carry headers, so while remediation is on, records with headers
keep them in their callback until delivered, unless the backend producer's failure reports carry them
(``reports_headers``: the Kafka backend's failure trap copies them).

Fatal errors: confluent-kafka raises a client's fatal error (an idempotent producer that lost its
guarantees) from ``poll``/``flush`` rather than passing it to ``error_cb``; ``produce`` then fails with
``_FATAL``. PSC swallows it, marks the backend producer fatal and resets it, and re-produces every record
that producer fails afterwards (the rejected batch, the queue it purged), whatever its own error code,
with backoff and within the retry budget. A transactional producer still raises: the transaction is lost
and only the application can redo it.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from functools import partial
from types import MethodType
from typing import Any, overload

from confluent_kafka import KafkaError

from psc._accel import FastProduce, RouteBase
from psc._callbacks import merge_config, split_callbacks
from psc._client_settings import CERT_CHECK_EVERY_S, ERROR_RESET_INTERVAL_S, METRICS_EVERY_S, ClientSettings
from psc._config import PscConfig
from psc._configlog import report_config
from psc._message import Message, MessageId, Source, TopicUriPartition
from psc._metrics import ClientMetrics, client_metrics
from psc._remediation import Action, ErrorInfo, ProactiveResetSchedule, Remedy, backend_error, is_fatal
from psc._uri import TopicUri
from psc.backends import Cluster, resolve_cluster
from psc.backends.base import BackendPartition, BackendProducer, ClusterMetadata, FailureReports
from psc.common import LogThrottle, get_logger
from psc.errors import (
    BackendError,
    ClientClosedError,
    InvalidUriError,
    ProducerError,
    PscError,
    TransactionError,
)
from psc.interceptors import InterceptorRecord, RawInterceptor, TypedInterceptor
from psc.serde import SerdeContext, Serializer, get_serializer

_log = get_logger("psc.producer")

DeliveryCallback = Callable[[KafkaError | None, Message], None]

_PURGED = frozenset({"_PURGE_QUEUE", "_PURGE_INFLIGHT"})
_BUFFER_FULL_WAIT_S = 0.005
MAX_SAMPLES_PER_S = 100  # latency samples per route and second, at most (about: the step adapts at each sample)


class _Settings(ClientSettings):
    """A producer's configuration resolved once: native settings, serde, interceptors, remediation."""

    def __init__(
        self,
        config: PscConfig,
        key_serializer: Serializer[Any] | None,
        value_serializer: Serializer[Any] | None,
        interceptors: Iterable[TypedInterceptor | RawInterceptor],
        metrics: ClientMetrics,
    ) -> None:
        transactional = bool(config.native.get("transactional.id"))
        client_type = "transactional_producer" if transactional else "producer"
        super().__init__(config, interceptors, metrics, client_type, bool(key_serializer or value_serializer))
        self.transactional = transactional
        if transactional and "transaction.timeout.ms" not in self.native:
            # librdkafka requires message.timeout.ms <= transaction.timeout.ms (60 s by default).
            timeout = self.native.get("delivery.timeout.ms") or self.native.get("message.timeout.ms")
            self.native["transaction.timeout.ms"] = timeout or "60000"
        self.key_serializer = key_serializer or get_serializer(config.key_serde)
        self.value_serializer = value_serializer or get_serializer(config.value_serde)
        # confluent-kafka implements this setting in its own delivery trampoline and wants a bool there.
        self.native.pop("delivery.report.only.error", None)
        self.only_errors = bool(config.delivery_report_only_error)
        if self.only_errors:
            self.sample_every = 0  # a latency sample needs the success report
        # How long produce() keeps serving deliveries while the local queue is full before raising.
        self.buffer_full_timeout_s = 1.0


def _next_step(remedy: Remedy, retry: _Retry, retries: int) -> Action:
    """RETRY, RESET (then re-produce) or THROW (surface to the application) for one failed record."""
    action = remedy.action
    if action is Action.RETRY_THEN_RESET:
        action = Action.RETRY if retry.attempts < retries else Action.RESET
    if action is Action.RETRY and retry.attempts < retries:
        return Action.RETRY
    if action is Action.RESET and not retry.reset:
        return Action.RESET
    if action in (Action.RETRY, Action.RESET) and remedy.on_exhausted is Action.RESET and not retry.reset:
        return Action.RESET
    return Action.THROW


def _next_sample_step(route: _Route, every: int) -> int:
    """Records until the route's next latency sample: ``every``, or more while samples come faster than
    :data:`MAX_SAMPLES_PER_S`. A sample takes the Python path and a Python delivery report, so at a million
    records a second one in a hundred would cost PSC's hot path a seventh of its throughput; the step doubles
    while samples come too fast and halves back towards ``every`` once they come slowly, so a quiet topic is
    still sampled at the configured rate."""
    now = time.monotonic()
    elapsed, route.last_sample = now - route.last_sample, now
    if elapsed < 1 / MAX_SAMPLES_PER_S:
        route.sample_step = min(route.sample_step * 2, 1 << 30)
    elif elapsed > 4 / MAX_SAMPLES_PER_S:
        route.sample_step = max(route.sample_step // 2, every)
    return route.sample_step


class _Generation:
    """One backend producer of a cluster; a RESET replaces it with a new generation."""

    __slots__ = (
        "cert_schedule",
        "cluster",
        "created",
        "fatal",
        "producer",
        "purged_by_app",
        "purged_by_reset",
        "reset_due",
        "retired",
        "source",
    )

    def __init__(self, cluster: Cluster, producer: BackendProducer, cert: ProactiveResetSchedule | None) -> None:
        self.cluster = cluster
        self.producer = producer
        self.cert_schedule = cert
        self.source = Source(cluster.cluster_uri, cluster.topic_uri)
        self.retired = False
        self.purged_by_reset = False
        self.purged_by_app = False  # consulted only once fatal, when librdkafka has purged the queue too
        # The client hit a fatal error: every record it fails is collateral and goes to the next generation.
        self.fatal = False
        self.reset_due = False  # set from callbacks and fatal errors, acted on by the next poll/flush
        self.created = time.monotonic()


class _Route(RouteBase):
    """Everything a send to one topic URI string needs, resolved once.

    ``produce``, ``topic``, ``source``, ``count``, ``sample_at``, ``plain`` and ``keep_headers`` live in
    :class:`RouteBase`, where the C fast path of :meth:`Producer.produce` reads them.
    """

    __slots__ = ("gen", "key_ctx", "key_ser", "last_sample", "reported", "sample_step", "uri", "value_ctx", "value_ser")

    def __init__(self, uri: str, topic: str, gen: _Generation, settings: _Settings) -> None:
        self.uri = uri
        self.topic = topic
        self.gen = gen
        self.produce = gen.producer.produce
        self.source = gen.source
        self.key_ser = settings.key_serializer
        self.value_ser = settings.value_serializer
        self.key_ctx = SerdeContext(uri, "key")
        self.value_ctx = SerdeContext(uri, "value")
        self.plain = settings.plain
        self.keep_headers = settings.auto_resolution and not gen.producer.reports_headers
        self.count = 0
        self.reported = 0
        self.sample_at = settings.sample_every  # 0: never sampled (count starts at 1)
        self.sample_step = settings.sample_every
        self.last_sample = 0.0


class _Retry:
    """The retry envelope of one record whose delivery failed: created only on failure."""

    __slots__ = (
        "attempts",
        "callback",
        "future",
        "headers",
        "key",
        "partition",
        "reset",
        "timestamp",
        "uri",
        "value",
    )

    def __init__(
        self,
        uri: str,
        native: Any,
        callback: DeliveryCallback | None,
        future: Future[MessageId] | None,
        headers: Any,
    ) -> None:
        self.uri = uri
        self.key = native.key()
        self.value = native.value()
        self.partition = -1 if native.partition() is None else native.partition()
        self.timestamp = 0
        self.headers = headers if headers is not None else native.headers()  # a backend's report may carry them
        self.callback = callback
        self.future = future
        self.attempts = 0
        self.reset = False


class Producer:
    """A producer addressed by topic URIs, with ``confluent_kafka.Producer``'s API.

    ``config`` holds PSC keys (``psc.producer.*``, ``psc.*``); connection settings come from discovery. As
    in confluent-kafka it may be given as a dict, as keyword arguments (``Producer(**conf)``) or both, and
    may hold callbacks (``error_cb``, ``stats_cb``, ``throttle_cb``, ``oauth_cb``, ``logger``,
    ``on_delivery``), plain or as ``psc.producer.<name>``. The keyword-only arguments are PSC's own.
    """

    @overload
    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        /,
        *,
        key_serializer: Serializer[Any] | None = None,
        value_serializer: Serializer[Any] | None = None,
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
        key_serializer: Serializer[Any] | None = None,
        value_serializer: Serializer[Any] | None = None,
        interceptors: Iterable[TypedInterceptor | RawInterceptor] = (),
        metrics: ClientMetrics | None = None,
        **more_config: Any,
    ) -> None:
        raw, self._app_callbacks = split_callbacks(merge_config(config, more_config), "producer")
        psc_config = PscConfig.from_mapping(raw, client_type="producer")
        self._metrics = metrics if metrics is not None else client_metrics()
        self._settings = _Settings(psc_config, key_serializer, value_serializer, interceptors, self._metrics)
        self._repeats = LogThrottle(_log)  # failures repeat per record or per reconnect: a line each would flood
        self._clusters: dict[str, Cluster] = {}
        self._config_logged = False
        self._routes: dict[str, _Route] = {}
        self._gens: dict[str, _Generation] = {}  # current generation per cluster prefix
        self._retiring: list[_Generation] = []
        self._pending: list[tuple[float, int, _Retry]] = []  # heap of records waiting for their backoff
        self._seq = 0
        self._lock = threading.RLock()
        self._closed = False
        self._next_metrics = 0.0
        self._next_cert_check = 0.0
        self._next_chore = 0.0  # the earlier of the two: poll skips housekeeping until then, when nothing else is due
        self._txn_cluster: str | None = None
        self._txn_state = "none"  # none | init_pending | ready | begin_pending | in_txn
        self._txn_timeout = -1.0
        self._txn_ok = not self._settings.transactional
        self._fast: FastProduce | None = None
        if type(self).produce is Producer.produce:
            # Plain records skip the Python method: the C fast path sends them and hands the rest to it.
            self._fast = FastProduce(
                self._routes,
                MethodType(Producer.produce, self),
                self._produce_failed,
                self._report_failed,
            )
            vars(self)["produce"] = self._fast

    # --- producing -----------------------------------------------------------------------------------

    def produce(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int = -1,
        callback: DeliveryCallback | None = None,
        on_delivery: DeliveryCallback | None = None,
        timestamp: int = 0,
        headers: Any = None,
    ) -> None:
        """Queue a record for the topic URI ``topic``; ``on_delivery(err, msg)`` (alias ``callback``) is
        served by ``poll``/``flush``, as in confluent-kafka."""
        route = self._routes.get(topic)
        if route is None:
            route = self._route(topic)
        count = route.count = route.count + 1
        if on_delivery is None and callback is None and headers is None and route.plain and count != route.sample_at:
            try:
                if partition == -1 and not timestamp:
                    route.produce(route.topic, value, key)  # positional only: keyword parsing costs ~0.25 us
                else:
                    route.produce(route.topic, value, key, partition, timestamp=timestamp)
            except Exception as exc:
                self._produce_failed(route, value, key, exc, partition, timestamp)
            return
        report = on_delivery or callback or self._app_callbacks.own
        self._produce_slow(route, value, key, partition, report, None, timestamp, headers)

    def send(
        self,
        topic_uri: str,
        value: Any = None,
        key: Any = None,
        partition: int = -1,
        timestamp: int = 0,
        headers: Any = None,
    ) -> Future[MessageId]:
        """Queue a record and return a future of its :class:`MessageId`, resolved by ``poll``/``flush``."""
        if self._settings.only_errors:
            raise ProducerError(
                "send() needs the success report of its record: it is unavailable with "
                "psc.producer.delivery.report.only.error=true; use produce()",
                topic_uri=topic_uri,
            )
        route = self._routes.get(topic_uri)
        if route is None:
            route = self._route(topic_uri)
        route.count += 1
        future: Future[MessageId] = Future()
        self._produce_slow(route, value, key, partition, None, future, timestamp, headers)
        return future

    def _produce_slow(
        self,
        route: _Route,
        value: Any,
        key: Any,
        partition: int,
        callback: DeliveryCallback | None,
        future: Future[MessageId] | None,
        timestamp: int,
        headers: Any,
    ) -> None:
        settings = self._settings
        if not route.plain:
            prepared = self._prepare(route, key, value, headers)
            if prepared is None:
                if future is not None:
                    future.cancel()
                return  # an interceptor dropped the record
            key, value, headers = prepared
        sampled = route.count == route.sample_at
        if sampled:
            route.sample_at += _next_sample_step(route, settings.sample_every)
        needs_report = (
            callback is not None
            or future is not None
            or sampled
            or not settings.typed_chain.empty
            or not settings.raw_chain.empty
            or (headers is not None and route.keep_headers)
        )
        report = None
        if needs_report:
            report = partial(self._report, route, callback, future, headers, time.monotonic() if sampled else 0.0)
        self._produce_when_room(route, value, key, partition, report, timestamp, headers)

    def _prepare(self, route: _Route, key: Any, value: Any, headers: Any) -> tuple[Any, Any, Any] | None:
        settings = self._settings
        if not settings.typed_chain.empty:
            typed = settings.typed_chain.on_send(InterceptorRecord(route.uri, key, value, list(headers or ())))
            if typed is None:
                return None
            key, value, headers = typed.key, typed.value, typed.headers
        if headers:
            key = route.key_ser.serialize(key, SerdeContext(route.uri, "key", headers))
            value = route.value_ser.serialize(value, SerdeContext(route.uri, "value", headers))
        else:
            key = route.key_ser.serialize(key, route.key_ctx)
            value = route.value_ser.serialize(value, route.value_ctx)
        if not settings.raw_chain.empty:
            raw = settings.raw_chain.on_send(InterceptorRecord(route.uri, key, value, list(headers or ())))
            if raw is None:
                return None
            key, value, headers = raw.key, raw.value, raw.headers
        return key, value, headers or None

    def _produce_failed(
        self,
        route: _Route,
        value: Any,
        key: Any,
        exc: BaseException,
        partition: int = -1,
        timestamp: int = 0,
        callback: DeliveryCallback | None = None,
        headers: Any = None,
    ) -> None:
        """The backend refused a plain record: wait for room in a full queue, or reset a failed client."""
        if isinstance(exc, Exception) and not isinstance(exc, BufferError):
            route = self._after_produce_error(route, exc)  # a fatally failed client: reset, send on the new one
        elif not isinstance(exc, Exception):
            raise exc
        report = None
        if callback is not None or (headers is not None and route.keep_headers):
            report = partial(self._report, route, callback, None, headers, 0.0)
        self._produce_when_room(route, value, key, partition, report, timestamp, headers)

    def _produce_when_room(
        self,
        route: _Route,
        value: Any,
        key: Any,
        partition: int,
        report: Any,
        timestamp: int,
        headers: Any = None,
    ) -> None:
        """Produce, serving delivery reports while the local queue is full, as a well-behaved app would."""
        deadline = 0.0
        while True:
            try:
                if headers is None:
                    route.produce(route.topic, value, key, partition, report, timestamp=timestamp)
                else:
                    route.produce(route.topic, value, key, partition, report, timestamp=timestamp, headers=headers)
                return
            except BufferError:
                now = time.monotonic()
                deadline = deadline or now + self._settings.buffer_full_timeout_s
                if now >= deadline:
                    raise
                self._poll_gen(route.gen, _BUFFER_FULL_WAIT_S)
            except Exception as exc:
                stale, route = route, self._after_produce_error(route, exc)
                if isinstance(report, partial) and report.args and report.args[0] is stale:
                    # Reports judge a failure by the generation that sent the record: point it at the new one.
                    report = partial(report.func, route, *report.args[1:], **report.keywords)

    def _after_produce_error(self, route: _Route, exc: Exception) -> _Route:
        """A produce call raised: reset a fatally failed producer once, else raise a typed error."""
        if isinstance(exc, PscError):
            raise exc
        native = exc.args[0] if exc.args and hasattr(exc.args[0], "code") else None
        if native is None:
            raise ProducerError(f"produce to {route.uri!r} failed: {exc}", topic_uri=route.uri) from exc
        remediator = self._settings.remediator
        remedy = remediator.remedy_for(native, route.uri)
        self._metrics.error(route.uri, native.name())
        if remedy.action in (Action.RESET, Action.RETRY_THEN_RESET) and not route.gen.retired:
            route.gen.fatal = route.gen.fatal or is_fatal(ErrorInfo.of(native))
            self._reset(route.gen, purge=True)
            return self._routes.get(route.uri) or self._route(route.uri)
        raise remediator.to_psc_error(native, remedy) from exc

    # --- delivery reports ----------------------------------------------------------------------------

    def _on_report(self, gen: _Generation, err: Any, native: Any) -> None:
        """Delivery report of records produced without a callback: only failures need work."""
        if err is not None:
            self._failed(gen, err, native, None, None, None)

    def _report_failed(
        self, route: _Route, callback: DeliveryCallback | None, headers: Any, err: Any, native: Any
    ) -> None:
        """A failed delivery of a record the fast path sent with a callback or headers (its ``Report``)."""
        self._failed(route.gen, err, native, callback, None, headers)

    def _report(
        self,
        route: _Route,
        callback: DeliveryCallback | None,
        future: Future[MessageId] | None,
        headers: Any,
        started: float,
        err: Any,
        native: Any,
    ) -> None:
        if err is not None:
            self._failed(route.gen, err, native, callback, future, headers)
            return
        if started:
            self._metrics.observe_produce_latency(route.uri, time.monotonic() - started)
        self._delivered(route.gen, native, callback, future)

    def _delivered(
        self,
        gen: _Generation,
        native: Any,
        callback: DeliveryCallback | None,
        future: Future[MessageId] | None,
    ) -> None:
        self._acknowledge(gen, native, None)
        if future is not None:
            future.set_result(Message(native, gen.source).message_id)
        if callback is not None:
            callback(None, Message(native, gen.source))

    def _acknowledge(self, gen: _Generation, native: Any, error: BackendError | None) -> None:
        """Tell the interceptors how a record ended: written (``error`` None) or failed for good."""
        settings = self._settings
        if not (settings.typed_chain.empty and settings.raw_chain.empty):
            uri = gen.source.topic_uri(native.topic())
            settings.raw_chain.on_acknowledgement(uri, native.partition(), native.offset(), error)
            settings.typed_chain.on_acknowledgement(uri, native.partition(), native.offset(), error)

    def _failed(
        self,
        gen: _Generation,
        err: Any,
        native: Any,
        callback: DeliveryCallback | None,
        future: Future[MessageId] | None,
        headers: Any,
        retry: _Retry | None = None,
    ) -> None:
        uri = gen.source.topic_uri(native.topic())
        error = BackendError.from_native(err, topic_uri=uri, partition=native.partition())
        self._metrics.error(uri, error.name)
        if retry is None and self._settings.auto_resolution and self._txn_ok:
            retry = _Retry(uri, native, callback, future, headers)
        if retry is not None and self._remediate(gen, error, retry):
            return
        self._surface(gen, error, native, callback, future)

    def _remediate(self, gen: _Generation, error: BackendError, retry: _Retry) -> bool:
        """Schedule a re-produce of a failed record when the catalogue says so; False to surface it."""
        delay = 0.0
        if not gen.fatal and is_fatal(ErrorInfo.of(error)) and not self._fatal_remedied(gen, error, retry.uri):
            return False
        # A fatal client purges its own queue: on one, only a purge() of the application is the application's.
        if error.name in _PURGED and (gen.purged_by_app if gen.fatal else not gen.purged_by_reset):
            return False  # the application purged it
        if gen.fatal:
            # The client failed, not the record (the batch that tripped a fatal error, the queue purged with
            # it): re-produce on the next generation, with backoff in case the cause outlives one client.
            # Bounded by the retry count, so a record that breaks every client still surfaces.
            step = Action.RETRY if retry.attempts < self._settings.retries else Action.THROW
            delay = self._settings.backoff.delay(retry.attempts)
        elif error.name in _PURGED:
            step = Action.RETRY if retry.attempts < self._settings.retries else Action.THROW
        else:
            remedy = self._settings.remediator.remedy_for(error, retry.uri)
            step = _next_step(remedy, retry, self._settings.retries)
            delay = self._settings.backoff.delay(retry.attempts)
        if step is Action.THROW:
            return False
        if step is Action.RESET:
            retry.reset = True
            if not gen.retired:
                gen.reset_due = True  # a producer cannot be replaced from inside its own callback
        retry.attempts += 1
        self._metrics.retry(retry.uri)
        self._seq += 1
        heapq.heappush(self._pending, (time.monotonic() + delay, self._seq, retry))
        return True

    def _surface(
        self,
        gen: _Generation,
        error: BackendError,
        native: Any,
        callback: DeliveryCallback | None,
        future: Future[MessageId] | None,
    ) -> None:
        self._acknowledge(gen, native, error)
        if future is not None:
            future.set_exception(error)
        if callback is not None:
            callback(error.args[0], Message(native, gen.source))  # the KafkaError, as confluent-kafka passes it
        elif future is None and not (error.name in _PURGED and gen.purged_by_app):
            # Nobody else hears of this failure, so it is logged; the application's own purge() is no news.
            uri = error.context.get("topic_uri")
            kind = ("delivery", uri, error.name)
            self._repeats.log("warning", kind, "delivery failed", topic_uri=uri, error=str(error))

    def _retry_report(self, route: _Route, retry: _Retry, err: Any, native: Any) -> None:
        if err is not None:
            self._failed(route.gen, err, native, retry.callback, retry.future, retry.headers, retry)
        else:
            self._delivered(route.gen, native, retry.callback, retry.future)

    def _drain_pending(self) -> None:
        """Re-produce records whose retry backoff has elapsed, on the cluster's current producer."""
        now = time.monotonic()
        while self._pending and self._pending[0][0] <= now:
            _, _, retry = heapq.heappop(self._pending)
            route = self._routes.get(retry.uri) or self._route(retry.uri)
            report = partial(self._retry_report, route, retry)
            try:
                self._produce_when_room(
                    route, retry.value, retry.key, retry.partition, report, retry.timestamp, retry.headers
                )
            except PscError as exc:
                self._fail_retry(retry, exc)

    def _fail_retry(self, retry: _Retry, exc: PscError) -> None:
        if retry.future is not None:
            retry.future.set_exception(exc)
        if retry.callback is not None:
            retry.callback(exc.args[0], None)  # type: ignore[arg-type]

    # --- polling, flushing, resets ------------------------------------------------------------------

    def poll(self, timeout: float | None = None) -> int:
        """Serve delivery reports; waits up to ``timeout`` seconds (None or negative: forever) for one."""
        if timeout is not None and timeout < 0:
            timeout = None
        gens_by_prefix = self._gens
        if (
            len(gens_by_prefix) == 1
            and not (self._closed or self._retiring or self._pending)
            and time.monotonic() < self._next_chore
        ):
            # One cluster and no housekeeping due (all that _housekeeping would check): applications that
            # call poll(0) after every produce(), as confluent-kafka's examples do, take this path each record.
            (gen,) = gens_by_prefix.values()
            if not gen.reset_due:
                served = self._poll_gen(gen, -1 if timeout is None else timeout)
                return served + self._housekeeping() if gen.reset_due else served
        self._check_open()
        served = self._housekeeping()
        gens = list(self._gens.values())
        if len(gens) == 1:
            served += self._poll_gen(gens[0], -1 if timeout is None else timeout)
            if gens[0].reset_due:
                served += self._housekeeping()
            return served
        served += self._poll_many(gens, timeout)
        if any(gen.reset_due for gen in gens):
            served += self._housekeeping()
        return served

    def _poll_gen(self, gen: _Generation, timeout: float) -> int:
        """Serve one backend producer's reports; a fatal error it raises schedules a reset instead."""
        try:
            return gen.producer.poll(timeout)
        except Exception as exc:
            if not self._fatal_raised(gen, exc):
                raise
            return 0

    def _flush_gen(self, gen: _Generation, timeout: float) -> None:
        try:
            gen.producer.flush(timeout)
        except Exception as exc:
            if not self._fatal_raised(gen, exc):
                raise

    def _fatal_raised(self, gen: _Generation, exc: Exception) -> bool:
        """True when ``exc`` is a fatal client error that PSC remediates (the caller swallows it).

        confluent-kafka never hands fatal errors to ``error_cb``: poll and flush raise them instead.
        """
        info = backend_error(exc)
        if info is None or not is_fatal(info):
            return False
        if gen.retired:
            return True  # already replaced; its reports are still served
        return self._fatal_remedied(gen, info, gen.cluster.cluster_uri)

    def _fatal_remedied(self, gen: _Generation, error: Any, uri: str) -> bool:
        """Mark ``gen`` fatal and due for reset when the catalogue resets for ``error``; False to surface it."""
        if not self._settings.auto_resolution or self._settings.transactional:
            return False  # a fatal error in a transaction loses it: the application must restart from its commit
        remedy = self._settings.remediator.remedy_for(error, uri)
        if remedy.action not in (Action.RESET, Action.RETRY_THEN_RESET):
            return False
        gen.fatal = True
        if not gen.retired:
            gen.reset_due = True
        return True

    def _poll_many(self, gens: list[_Generation], timeout: float | None) -> int:
        """Poll several clusters without giving any of them the full timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            served = sum(self._poll_gen(gen, 0) for gen in gens)
            if served or not gens:
                return served
            remaining = 0.01 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                return 0
            time.sleep(min(remaining, 0.001 * len(gens), 0.01))

    def _housekeeping(self) -> int:
        """Work done on every poll/flush: retries due, resets due, retiring producers, metrics."""
        served = 0
        for gen in self._retiring[:]:
            served += self._poll_gen(gen, 0)
            if len(gen.producer) == 0:
                self._retiring.remove(gen)
                gen.producer.close()
        for gen in list(self._gens.values()):
            if gen.reset_due:
                self._reset(gen, purge=True)
        if self._pending:
            self._drain_pending()
        now = time.monotonic()
        if now >= self._next_metrics:
            self._next_metrics = now + METRICS_EVERY_S
            self._publish_counts()
        if now >= self._next_cert_check:
            self._next_cert_check = now + CERT_CHECK_EVERY_S
            self._check_certificates()
        self._next_chore = min(self._next_metrics, self._next_cert_check)
        return served

    def _publish_counts(self) -> None:
        for route in list(self._routes.values()):
            if route.count != route.reported:
                self._metrics.sent(route.uri, route.count - route.reported)
                route.reported = route.count

    def _check_certificates(self) -> None:
        for gen in list(self._gens.values()):
            schedule = gen.cert_schedule
            if schedule is not None and not self._settings.transactional and schedule.due():
                _log.info("resetting producer before certificate expiry", cluster_uri=gen.cluster.cluster_uri)
                schedule.mark_reset()
                self._reset(gen, purge=False)

    def _reset(self, gen: _Generation, *, purge: bool) -> None:
        """Replace ``gen``'s backend producer; the old one finishes (or hands back) its in-flight records."""
        with self._lock:
            if gen.retired:
                return
            prefix = gen.cluster.cluster_uri
            gen.retired = True
            self._gens[prefix] = self._new_generation(gen.cluster, gen.cert_schedule)
            for uri in [uri for uri, route in self._routes.items() if route.gen is gen]:
                self._publish_route(self._routes.pop(uri))
            self._routes_changed()
            self._retiring.append(gen)
        self._metrics.reset(prefix)
        _log.warning("reset backend producer", cluster_uri=prefix, purge=purge)
        if purge:
            # Records of a broken producer come back as purge reports and are re-produced on the new one.
            # A fatally failed one already purged its queue; its in-flight requests may still be acknowledged,
            # so they are left to finish rather than purged and sent twice.
            gen.purged_by_reset = True
            gen.producer.purge(True, not gen.fatal, False)

    def _routes_changed(self) -> None:
        """The fast path caches its last route: after any change to ``_routes`` it must look again."""
        if self._fast is not None:
            self._fast.forget()

    def _publish_route(self, route: _Route) -> None:
        if route.count != route.reported:
            self._metrics.sent(route.uri, route.count - route.reported)
            route.reported = route.count

    def flush(self, timeout: float | None = None) -> int:
        """Wait until every record (including ones being retried) is delivered; returns how many remain.

        ``timeout`` None or negative: no limit, as confluent-kafka's ``flush(-1)``."""
        self._check_open()
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        while True:
            self._housekeeping()
            for gen in [*self._gens.values(), *self._retiring]:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                wait = 0.1 if self._pending else (-1 if left is None else left)
                self._flush_gen(gen, wait if left is None else min(wait if wait >= 0 else left, left))
            self._housekeeping()
            remaining = len(self)
            if remaining == 0 or (deadline is not None and time.monotonic() >= deadline):
                self._publish_counts()
                return remaining
            if not self._gens and self._pending:
                time.sleep(0.005)

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        """Drop queued/in-flight records; their reports fail with ``_PURGE_QUEUE``/``_PURGE_INFLIGHT``."""
        self._check_open()
        for gen in [*self._gens.values(), *self._retiring]:
            gen.purged_by_app = True
            gen.producer.purge(in_queue, in_flight, blocking)
        if in_queue:
            pending, self._pending = self._pending, []
            for _, _, retry in pending:
                self._fail_retry(retry, ProducerError("purged while waiting to be retried", topic_uri=retry.uri))

    def __len__(self) -> int:
        return sum(len(gen.producer) for gen in [*self._gens.values(), *self._retiring]) + len(self._pending)

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        """Metadata of the cluster of ``topic`` (a topic or cluster URI), topics keyed by topic URI."""
        self._check_open()
        uri = None if topic is None else TopicUri.parse(topic)
        gen = self._generation_for(uri)
        name = None if uri is None or uri.is_cluster else gen.cluster.topic_name(uri)
        return gen.producer.list_topics(name, timeout)

    def cluster_id(self, timeout: float = -1, topic: str | None = None) -> str | None:
        """The id of the cluster (of ``topic``, a topic or cluster URI, when the producer uses several)."""
        self._check_open()
        return self._generation_for(None if topic is None else TopicUri.parse(topic)).producer.cluster_id(timeout)

    # --- transactions --------------------------------------------------------------------------------

    def init_transactions(self, timeout: float = -1) -> None:
        """Initialise transactions; deferred to the first send when no cluster is bound yet."""
        self._require_transactional()
        self._txn_timeout = timeout
        if self._txn_cluster is None:
            self._txn_state = "init_pending"
            return
        self._txn_call(lambda p: p.init_transactions(timeout))
        self._txn_state = "ready"

    def begin_transaction(self) -> None:
        self._require_transactional()
        if self._txn_state == "init_pending":
            self._txn_state = "begin_pending"
            return
        if self._txn_state == "none":
            raise TransactionError("init_transactions() must be called before begin_transaction()")
        self._txn_call(lambda p: p.begin_transaction())
        self._txn_state = "in_txn"

    def commit_transaction(self, timeout: float = -1) -> None:
        self._require_transactional()
        if self._txn_state == "begin_pending":
            self._txn_state = "init_pending"  # nothing was sent: an empty transaction commits trivially
            return
        self._txn_call(lambda p: p.commit_transaction(timeout))
        self._txn_state = "ready"

    def abort_transaction(self, timeout: float = -1) -> None:
        self._require_transactional()
        if self._txn_state == "begin_pending":
            self._txn_state = "init_pending"
            return
        self._txn_call(lambda p: p.abort_transaction(timeout))
        self._txn_state = "ready"

    def send_offsets_to_transaction(
        self, positions: Iterable[TopicUriPartition], group_metadata: Any, timeout: float = -1
    ) -> None:
        """Add consumer ``positions`` (next offsets to read) to the current transaction."""
        self._require_transactional()
        offsets = [(TopicUri.parse(tp.topic), tp) for tp in positions]
        if self._txn_cluster is None and offsets:
            self._generation_for(offsets[0][0])
        native = [
            BackendPartition(
                self._cluster(uri).topic_name(uri),
                tp.partition,
                tp.offset,
                metadata=tp.metadata,
                leader_epoch=tp.leader_epoch,
            )
            for uri, tp in offsets
        ]
        self._txn_call(lambda p: p.send_offsets_to_transaction(native, group_metadata, timeout))

    def _require_transactional(self) -> None:
        self._check_open()
        if not self._settings.transactional:
            raise TransactionError("this producer is not transactional: set a transactional id in its config")

    def _txn_call(self, call: Callable[[BackendProducer], None]) -> None:
        if self._txn_cluster is None:
            raise TransactionError("no cluster is bound to this transactional producer yet")
        producer = self._gens[self._txn_cluster].producer
        try:
            call(producer)
        except Exception as exc:
            raise transaction_error(exc) from exc

    def _bind_transactional(self, gen: _Generation) -> None:
        """The first cluster of a transactional producer: run the deferred transaction calls on it."""
        self._txn_cluster = gen.cluster.cluster_uri
        if self._txn_state in ("init_pending", "begin_pending"):
            begin = self._txn_state == "begin_pending"
            self._txn_call(lambda p: p.init_transactions(self._txn_timeout))
            self._txn_state = "ready"
            if begin:
                self._txn_call(lambda p: p.begin_transaction())
                self._txn_state = "in_txn"

    # --- routing -------------------------------------------------------------------------------------

    def _route(self, topic_uri: str) -> _Route:
        """Resolve a topic URI string into a cached route (the only slow step of a first send)."""
        self._check_open()
        if not isinstance(topic_uri, str):
            raise InvalidUriError(repr(topic_uri), f"expected a topic URI string, got {type(topic_uri).__name__}")
        uri = TopicUri.parse(topic_uri)  # the only parse of a new route: typed values from here on
        gen = self._generation_for(uri)
        if uri.is_cluster:
            raise ProducerError(f"cannot produce to cluster URI {topic_uri!r}: it names no topic", topic_uri=topic_uri)
        route = _Route(topic_uri, gen.cluster.topic_name(uri), gen, self._settings)
        route.plain = route.plain and self._app_callbacks.own is None  # a default on_delivery needs every report
        self._routes[topic_uri] = route
        self._routes_changed()
        return route

    def _cluster(self, uri: TopicUri) -> Cluster:
        """The cluster of a topic URI: resolved (validated, discovered) once per cluster prefix."""
        cluster = self._clusters.get(uri.cluster_prefix)
        if cluster is None:
            cluster = self._clusters[uri.cluster_prefix] = resolve_cluster(uri, self._settings.config)
        return cluster

    def _generation_for(self, uri: TopicUri | None) -> _Generation:
        if uri is None:
            if len(self._gens) == 1:
                return next(iter(self._gens.values()))
            raise ProducerError("list_topics needs a topic or cluster URI when the producer uses several clusters")
        cluster = self._cluster(uri)
        gen = self._gens.get(cluster.cluster_uri)
        if gen is not None:
            return gen
        with self._lock:
            gen = self._gens.get(cluster.cluster_uri)
            if gen is None:
                gen = self._add_cluster(cluster)
        return gen

    def _add_cluster(self, cluster: Cluster) -> _Generation:
        if self._settings.transactional and self._txn_cluster not in (None, cluster.cluster_uri):
            raise TransactionError(
                f"a transactional producer is bound to one cluster: {self._txn_cluster!r}; "
                f"cannot use {cluster.cluster_uri!r}",
                cluster_uri=cluster.cluster_uri,
            )
        gen = self._gens[cluster.cluster_uri] = self._new_generation(
            cluster, self._settings.certificate_schedule(cluster)
        )
        if not self._config_logged:
            self._config_logged = True
            report_config(self._settings.config, "producer", [cluster.cluster_uri], Producer)
        if self._settings.transactional:
            try:
                self._bind_transactional(gen)
            except Exception:
                del self._gens[cluster.cluster_uri]
                self._txn_cluster = None
                gen.producer.close()
                raise
        return gen

    def _new_generation(self, cluster: Cluster, cert: ProactiveResetSchedule | None) -> _Generation:
        holder: list[_Generation] = []
        native: dict[str, Any] = dict(self._settings.native)
        on_report = self._on_report

        def report(err: Any, msg: Any) -> None:  # runs for every record sent without a callback: one frame
            if err is not None:
                on_report(holder[0], err, msg)

        native["on_delivery"] = FailureReports(report)  # the Kafka backend then hears of failures only
        if self._settings.only_errors:
            native["delivery.report.only.error"] = True
        native["error_cb"] = lambda err: self._on_client_error(holder[0], err)
        native.update(self._app_callbacks.native)
        try:
            backend_producer = cluster.backend.create_producer(cluster.endpoint, native, cluster.cluster_uri)
        except Exception as exc:
            raise ProducerError(
                f"cannot create a producer for {cluster.cluster_uri!r}: {exc}", cluster_uri=cluster.cluster_uri
            ) from exc
        gen = _Generation(cluster, backend_producer, cert)
        holder.append(gen)
        return gen

    def _on_client_error(self, gen: _Generation, err: Any) -> None:
        """librdkafka's error callback: fatal errors make the producer unusable, so schedule a reset."""
        error = BackendError.from_native(err, cluster_uri=gen.cluster.cluster_uri)
        self._metrics.error(gen.cluster.cluster_uri, error.name)
        if self._settings.auto_resolution and not self._settings.transactional and not gen.retired:
            # Fatal errors, and errors the catalogue resets for (a rotated CA), need a new client.
            catalogue = self._settings.remediator.catalogue
            if is_fatal(ErrorInfo.of(error)):
                self._fatal_remedied(gen, error, gen.cluster.cluster_uri)
            elif (
                catalogue.lookup(err, "producer").action is Action.RESET
                and time.monotonic() - gen.created >= ERROR_RESET_INTERVAL_S
            ):
                gen.reset_due = True
        self._repeats.log(
            "warning", ("client", gen.cluster.cluster_uri, error.name), "producer client error",
            cluster_uri=gen.cluster.cluster_uri, error=str(error), fatal=error.fatal,
        )  # fmt: skip
        if self._app_callbacks.error_cb is not None:
            self._app_callbacks.error_cb(err)  # after PSC acted on it, as confluent-kafka's error_cb

    # --- lifecycle -----------------------------------------------------------------------------------

    def close(self, timeout: float | None = None) -> None:
        """Flush (up to ``timeout``), then release every backend producer; idempotent."""
        if self._closed:
            return
        try:
            self.flush(timeout)
        finally:
            self._closed = True
            for gen in [*self._gens.values(), *self._retiring]:
                gen.producer.close(0)
            self._gens.clear()
            self._retiring.clear()
            self._routes.clear()
            self._routes_changed()
            self._settings.close()
            self._repeats.flush()

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("the producer is closed")

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def transaction_error(exc: BaseException) -> TransactionError:
    """A confluent-kafka ``KafkaException`` from a transactional call as a typed :class:`TransactionError`."""
    if isinstance(exc, TransactionError):
        return exc
    native = exc.args[0] if exc.args and hasattr(exc.args[0], "code") else None

    def flag(name: str) -> bool:
        method = getattr(native, name, None)
        return bool(method()) if callable(method) else False

    text = native.str() if native is not None else str(exc)
    return TransactionError(
        f"transaction operation failed: {text}",
        retriable=flag("retriable"),
        txn_requires_abort=flag("txn_requires_abort"),
        fatal=flag("fatal"),
        native=exc,
    )
