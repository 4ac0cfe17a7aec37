"""PSC clients over fake backends: routing, message wrapping, remediation and multi-cluster polling."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import psc
from psc._message import DecodedMessage, Message, MessageId, Source, TopicUriPartition
from psc._metrics import ClientMetrics
from psc.backends import register_backend, unregister_backend
from psc.backends.base import (
    Backend,
    BackendConsumer,
    BackendPartition,
    BackendProducer,
    BrokerMetadata,
    ClusterMetadata,
)
from psc.common import MetricsRegistry

A = "plaintext:/rn:fake:env:cloud_region::clusterA:"
B = "plaintext:/rn:fake:env:cloud_region::clusterB:"


class FakeError:
    def __init__(
        self, name: str, code: int = -1, fatal: bool = False, retriable: bool = False, message: str = ""
    ) -> None:
        self._name, self._code, self._fatal, self._retriable = name, code, fatal, retriable
        self._message = message or f"fake {name}"

    def code(self) -> int:
        return self._code

    def name(self) -> str:
        return self._name

    def str(self) -> str:
        return self._message

    def retriable(self) -> bool:
        return self._retriable

    def fatal(self) -> bool:
        return self._fatal

    def txn_requires_abort(self) -> bool:
        return False


class FakeRecord:
    def __init__(
        self, topic: str, value: bytes | None, partition: int = 0, offset: int = 0, error: FakeError | None = None
    ) -> None:
        self._topic, self._value, self._partition, self._offset, self._error = topic, value, partition, offset, error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, 1000 + self._offset)

    def key(self) -> bytes | None:
        return b"k"

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return None

    def error(self) -> FakeError | None:
        return self._error


class FakeProducer(BackendProducer):
    def __init__(self, cluster_uri: str, config: Mapping[str, Any], failures: list[FakeError]) -> None:
        super().__init__(cluster_uri)
        self.config = config
        self.failures = failures  # errors the next deliveries fail with, in order
        self.queue: list[tuple[FakeRecord, Any]] = []
        self.produced: list[tuple[str, Any]] = []
        self.closed = False
        self.produce = self._produce

    def _produce(
        self, topic: str, value: Any, key: Any = None, partition: int = -1, on_delivery: Any = None, **kw: Any
    ) -> None:
        self.produced.append((topic, value))
        self.queue.append((FakeRecord(topic, value, max(partition, 0), len(self.produced) - 1), on_delivery))

    def poll(self, timeout: float) -> int:
        served, self.queue = self.queue, []
        for record, report in served:
            error = self.failures.pop(0) if self.failures else None
            (report or self.config["on_delivery"])(error, record)
        return len(served)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return len(self.queue)

    def purge(self, in_queue: bool, in_flight: bool, blocking: bool) -> None:
        self.failures[:0] = [FakeError("_PURGE_QUEUE", code=-152)] * len(self.queue)

    def __len__(self) -> int:
        return len(self.queue)

    def list_topics(self, topic: str | None, timeout: float) -> ClusterMetadata:
        return ClusterMetadata(self.cluster_uri, "fake", 1, {1: BrokerMetadata(1, "fake", 1)}, {})

    def close(self, timeout: float = 0.0) -> None:
        self.closed = True


class FakeConsumer(BackendConsumer):
    def __init__(self, cluster_uri: str) -> None:
        super().__init__(cluster_uri)
        self.records: list[FakeRecord] = []
        self.calls: list[tuple[str, float]] = []
        self.subscribed: list[str] = []
        self.callbacks: tuple[Any, Any, Any] = (None, None, None)
        self.poll = self._poll
        self.consume = self._consume
        self.config: dict[str, Any] = {}
        # As librdkafka: a record handed out is consumed (position past it); seek forgets the position.
        self.delivered: list[FakeRecord] = []
        self.positions: dict[tuple[str, int], int] = {}
        self.seeks: list[BackendPartition] = []
        self.commits: list[list[BackendPartition] | None] = []
        self.stored: dict[tuple[str, int], int] = {}  # offsets stored by store_offsets
        self.paused: set[tuple[str, int]] = set()

    def _deliver(self, records: list[FakeRecord]) -> list[FakeRecord]:
        for record in records:
            self.delivered.append(record)
            self.positions[(record.topic(), record.partition())] = record.offset() + 1
        return records

    def _poll(self, timeout: float) -> FakeRecord | None:
        self.calls.append(("poll", timeout))
        ready = [i for i, r in enumerate(self.records) if (r.topic(), r.partition()) not in self.paused]
        return self._deliver([self.records.pop(ready[0])])[0] if ready else None

    def _consume(self, count: int, timeout: float) -> list[FakeRecord]:
        self.calls.append(("consume", timeout))
        ready = [i for i, r in enumerate(self.records) if (r.topic(), r.partition()) not in self.paused][:count]
        out = [self.records[i] for i in ready]
        for i in reversed(ready):
            del self.records[i]
        return self._deliver(out)

    def subscribe(self, topics: Sequence[str], on_assign: Any, on_revoke: Any, on_lost: Any) -> None:
        self.subscribed = list(topics)
        self.callbacks = (on_assign, on_revoke, on_lost)

    def unsubscribe(self) -> None:
        self.subscribed = []

    def assign(self, partitions: Sequence[BackendPartition]) -> None: ...
    def unassign(self) -> None: ...
    def incremental_assign(self, partitions: Sequence[BackendPartition]) -> None: ...
    def incremental_unassign(self, partitions: Sequence[BackendPartition]) -> None: ...

    def assignment(self) -> list[BackendPartition]:
        return [BackendPartition(t, p) for t, p in sorted(self.positions)]  # the partitions read so far

    def commit(self, offsets: Sequence[BackendPartition] | None, asynchronous: bool) -> list[BackendPartition]:
        if offsets is None and self.config.get("enable.auto.offset.store") == "false":
            offsets = [BackendPartition(t, p, o) for (t, p), o in sorted(self.stored.items())]  # as librdkafka
        self.commits.append(None if offsets is None else list(offsets))
        if offsets is None:
            return [BackendPartition(t, p, o) for (t, p), o in sorted(self.positions.items()) if o >= 0]
        return list(offsets)

    def store_offsets(self, offsets: Sequence[BackendPartition]) -> None:
        self.stored.update({(p.topic, p.partition): p.offset for p in offsets})

    def committed(self, partitions: Sequence[BackendPartition], timeout: float) -> list[BackendPartition]:
        return list(partitions)

    def position(self, partitions: Sequence[BackendPartition]) -> list[BackendPartition]:
        return [p._replace(offset=self.positions.get((p.topic, p.partition), p.offset)) for p in partitions]

    def seek(self, partition: BackendPartition) -> None:
        """Hand out again, first, the delivered records of the partition from the offset on."""
        self.seeks.append(partition)
        key = (partition.topic, partition.partition)
        again = [r for r in self.delivered if (r.topic(), r.partition()) == key and r.offset() >= partition.offset]
        self.delivered = [r for r in self.delivered if all(r is not q for q in again)]
        self.records[:0] = [r for r in again if r.error() is None]
        self.positions[key] = -1001

    def pause(self, partitions: Sequence[BackendPartition]) -> None:
        self.paused |= {(p.topic, p.partition) for p in partitions}

    def resume(self, partitions: Sequence[BackendPartition]) -> None:
        self.paused -= {(p.topic, p.partition) for p in partitions}

    def get_watermark_offsets(self, partition: BackendPartition, timeout: float, cached: bool) -> tuple[int, int]:
        return (0, 0)

    def offsets_for_times(self, partitions: Sequence[BackendPartition], timeout: float) -> list[BackendPartition]:
        return list(partitions)

    def list_topics(self, topic: str | None, timeout: float) -> ClusterMetadata:
        return ClusterMetadata(self.cluster_uri, "fake", 1, {}, {})

    def consumer_group_metadata(self) -> Any:
        return "group-metadata"

    def close(self) -> None: ...


class FakeBackend(Backend):
    name = "fake"

    def __init__(self) -> None:
        self.producers: list[FakeProducer] = []
        self.consumers: list[FakeConsumer] = []
        self.failures: list[FakeError] = []

    def create_producer(self, endpoint: Any, config: Mapping[str, Any], cluster_uri: str) -> FakeProducer:
        producer = FakeProducer(cluster_uri, config, self.failures)
        self.producers.append(producer)
        return producer

    def create_consumer(self, endpoint: Any, config: Mapping[str, Any], cluster_uri: str) -> FakeConsumer:
        consumer = FakeConsumer(cluster_uri)
        consumer.config = dict(config)
        self.consumers.append(consumer)
        return consumer


@pytest.fixture(autouse=True)
def batches_grow_by_doubling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Poll batches grow 1, 2, 4, 8... however slowly the machine serves them (sizing follows the rate)."""
    monkeypatch.setattr("psc._consumer._BUFFER_S", 1e9)


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    fake = FakeBackend()
    register_backend("fake", fake)
    yield fake
    unregister_backend("fake")


CONFIG = {
    "psc.project": "unit",
    "psc.discovery.connect": "fake:9092",
    "psc.auto.resolution.backoff.initial.ms": "0",
    "psc.auto.resolution.backoff.max.ms": "0",
}


def test_routes_are_cached_per_uri_string_and_clusters_share_nothing(backend: FakeBackend) -> None:
    producer = psc.Producer(CONFIG)
    producer.produce(A + "t1", b"1")
    producer.produce(A + "t1", b"2")
    producer.produce(A + "t2", b"3")
    producer.produce(B + "t1", b"4")
    assert [p.cluster_uri for p in backend.producers] == [A, B]
    assert backend.producers[0].produced == [("t1", b"1"), ("t1", b"2"), ("t2", b"3")]
    assert backend.producers[1].produced == [("t1", b"4")]
    assert set(producer._routes) == {A + "t1", A + "t2", B + "t1"}
    assert producer.flush(1) == 0
    producer.close()
    assert all(p.closed for p in backend.producers)


def test_delivery_callback_gets_psc_message_and_future_gets_message_id(backend: FakeBackend) -> None:
    producer = psc.Producer(CONFIG)
    reports: list[tuple[Any, Message]] = []
    producer.produce(A + "t", b"v", callback=lambda e, m: reports.append((e, m)))
    future = producer.send(A + "t", b"w")
    producer.poll(0)
    [(error, message)] = reports
    assert error is None and message.topic() == A + "t" and message.value() == b"v"
    assert future.result(0) == MessageId(A + "t", 0, 1, 1001)


def test_retriable_delivery_failure_is_re_produced_before_the_app_hears(backend: FakeBackend) -> None:
    backend.failures.append(FakeError("_MSG_TIMED_OUT", code=-192, retriable=True))
    producer = psc.Producer(CONFIG)
    reports: list[Any] = []
    producer.produce(A + "t", b"v", on_delivery=lambda e, m: reports.append(e))
    assert producer.flush(1) == 0
    assert reports == [None]
    assert backend.producers[0].produced == [("t", b"v"), ("t", b"v")]


def test_retries_are_bounded_then_the_error_surfaces(backend: FakeBackend) -> None:
    backend.failures.extend([FakeError("_MSG_TIMED_OUT", code=-192, retriable=True)] * 10)
    producer = psc.Producer({**CONFIG, "psc.auto.resolution.retry.count": "2"})
    future = producer.send(A + "t", b"v")
    producer.flush(1)
    with pytest.raises(psc.BackendError):
        future.result(0)
    assert len(backend.producers[0].produced) == 3


def test_fatal_delivery_error_resets_the_cluster_producer(backend: FakeBackend) -> None:
    backend.failures.append(FakeError("_FATAL", code=-150, fatal=True))
    producer = psc.Producer(CONFIG)
    future = producer.send(A + "t", b"v")
    producer.flush(1)
    assert future.result(0).topic_uri == A + "t"
    old, new = backend.producers
    assert old.closed and not new.closed
    assert new.produced == [("t", b"v")]


def test_plain_records_after_a_reset_go_to_the_new_producer(backend: FakeBackend) -> None:
    uri = A + "t"  # one string object for every call, as an application sends: the fast path caches its route
    producer = psc.Producer(CONFIG)
    producer.produce(uri, b"makes the route")
    producer.produce(uri, b"on the fast path")
    backend.failures.append(FakeError("_FATAL", code=-150, fatal=True))
    producer.send(uri, b"resets")
    producer.flush(1)
    producer.produce(uri, b"after")
    old, new = backend.producers
    assert old.closed
    assert ("t", b"after") in new.produced and ("t", b"after") not in old.produced


def test_user_purge_is_not_retried(backend: FakeBackend) -> None:
    producer = psc.Producer(CONFIG)
    errors: list[Any] = []
    producer.produce(A + "t", b"v", on_delivery=lambda e, m: errors.append(e))
    producer.purge()
    producer.poll(0)
    assert [e.name() for e in errors] == ["_PURGE_QUEUE"]


class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.fields: list[dict[str, Any]] = []

    def __getattr__(self, level: str) -> Any:
        def record(event: str, **fields: Any) -> None:
            self.lines.append((level, event))
            self.fields.append(fields)

        return record


def test_records_purged_by_the_application_are_not_logged(
    backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = RecordingLog()
    monkeypatch.setattr("psc._producer._log", log)
    producer = psc.Producer(CONFIG)
    for _ in range(3):
        producer.produce(A + "t", b"v")
    producer.purge()
    producer.poll(0)
    assert [event for _, event in log.lines if event == "delivery failed"] == []


def test_failures_nobody_hears_of_are_logged_once_with_a_count_of_repeats(
    backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = RecordingLog()
    monkeypatch.setattr("psc._producer._log", log)
    backend.failures.extend([FakeError("MSG_SIZE_TOO_LARGE", code=10)] * 3)  # thrown: no retry
    producer = psc.Producer(CONFIG)
    for _ in range(3):
        producer.produce(A + "t", b"v")  # no callback: the log is the only place the failure shows
    producer.flush(1)
    assert [line for line in log.lines if line[1] == "delivery failed"] == [("warning", "delivery failed")]
    producer.close()
    assert log.lines[-1] == ("warning", "delivery failed")
    assert log.fields[-1]["repeated"] == 2


def test_client_errors_repeating_on_every_reconnect_are_logged_once(
    backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = RecordingLog()
    monkeypatch.setattr("psc._consumer._log", log)
    consumer = consumer_for(backend, A + "t")
    for _ in range(4):
        backend.consumers[0].config["error_cb"](FakeError("_TRANSPORT", code=-195, message="broker down"))
    assert [event for _, event in log.lines] == ["consumer client error"]
    consumer.close()
    assert log.lines[-1] == ("warning", "consumer client error") and log.fields[-1]["repeated"] == 3


def test_transactional_producer_is_bound_to_one_cluster(backend: FakeBackend) -> None:
    producer = psc.Producer({**CONFIG, "psc.producer.transactional.id": "tx"})
    producer.produce(A + "t", b"v")
    with pytest.raises(psc.TransactionError, match="one cluster"):
        producer.produce(B + "t", b"v")


def test_message_wraps_native_record_lazily() -> None:
    source = Source(A)
    message = Message(FakeRecord("t", b"value", 2, 7), source)  # type: ignore[arg-type]
    assert message.topic() == A + "t" and message.topic_uri == A + "t"
    assert (message.partition(), message.offset(), message.timestamp()) == (2, 7, (1, 1007))
    assert (message.key(), message.value(), message.headers(), message.error()) == (b"k", b"value", None, None)
    assert message.message_id == MessageId(A + "t", 2, 7, 1007)
    assert len(message) == 5 and not message.is_eof()
    decoded = DecodedMessage.of(FakeRecord("t", b"{}"), source, ("key", {"a": 1}, []))  # type: ignore[arg-type]
    assert (decoded.key(), decoded.value(), decoded.headers()) == ("key", {"a": 1}, [])
    eof = Message(FakeRecord("t", None, error=FakeError("_PARTITION_EOF")), source)  # type: ignore[arg-type]
    assert eof.is_eof() and eof.error() is not None


def test_topic_uri_partition_compares_like_topic_partition() -> None:
    assert TopicUriPartition(A + "t", 1, 5) == TopicUriPartition(A + "t", 1, 9)
    assert len({TopicUriPartition(A + "t", 1, 5), TopicUriPartition(A + "t", 1)}) == 1
    assert sorted([TopicUriPartition(A + "t", 1), TopicUriPartition(A + "t", 0)])[0].partition == 0


def test_producer_poll_skips_housekeeping_until_it_is_due(
    backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    producer = psc.Producer(CONFIG)
    published: list[float] = []
    monkeypatch.setattr(producer, "_publish_counts", lambda: published.append(clock[0]))
    housekeeping, chores = producer._housekeeping, []

    def counted() -> int:
        chores.append(clock[0])
        return housekeeping()

    monkeypatch.setattr(producer, "_housekeeping", counted)
    producer.produce(A + "t", b"1")
    assert producer.poll(0) == 1 and published == [1000.0] and chores == [1000.0]
    producer.produce(A + "t", b"2")
    clock[0] += 0.5
    assert producer.poll(0) == 1 and published == [1000.0], "nothing due: reports served, counts not published"
    assert chores == [1000.0]
    clock[0] += 0.6
    assert producer.poll(0) == 0 and published == [1000.0, 1001.1] and chores == [1000.0, 1001.1]
    producer.close()
    with pytest.raises(psc.errors.ClientClosedError):
        producer.poll(0)


def consumer_for(backend: FakeBackend, *uris: str) -> psc.Consumer:
    consumer = psc.Consumer({**CONFIG, "psc.consumer.group.id": "g"})
    consumer.subscribe(list(uris))
    return consumer


def test_single_cluster_poll_goes_straight_to_the_backend(backend: FakeBackend) -> None:
    consumer = consumer_for(backend, A + "t")
    [fake] = backend.consumers
    assert fake.subscribed == ["t"]
    fake.records = [FakeRecord("t", b"1"), FakeRecord("t", b"2", offset=1)]
    message = consumer.poll(5.0)
    assert message is not None and message.value() == b"1" and message.topic() == A + "t"
    assert fake.calls == [("poll", 5.0)]
    assert [m.value() for m in consumer.consume(10, 5.0)] == [b"2"]


def test_a_record_whose_tick_fails_on_the_several_topics_path_is_returned_next(
    backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = consumer_for(backend, A + "t", A + "u")
    [fake] = backend.consumers
    fake.records = [FakeRecord("t", b"1"), FakeRecord("u", b"2", offset=1)]
    member = consumer._one
    assert member is not None and member.slow  # two topics: records take the rare path, which counts per topic
    member.countdown = 1

    def failing_tick(member: Any, native: Any) -> None:
        raise RuntimeError("housekeeping failed")

    monkeypatch.setattr(consumer, "_tick", failing_tick)
    with pytest.raises(RuntimeError, match="housekeeping failed"):
        consumer.poll(1.0)
    monkeypatch.undo()
    first = consumer.poll(1.0)
    assert first is not None and first.value() == b"1"
    assert member.counts == {"t": 1}  # counted once, when returned


def test_multi_cluster_poll_never_waits_the_full_timeout_on_one_cluster(backend: FakeBackend) -> None:
    consumer = consumer_for(backend, A + "t", B + "t")
    first, second = backend.consumers
    second.records = [FakeRecord("t", b"from-b")]
    message = consumer.poll(30.0)
    assert message is not None and message.topic() == B + "t"
    waits = [timeout for fake in (first, second) for _, timeout in fake.calls]
    assert waits and max(waits) == 0.0  # data was ready: nobody waited


def test_multi_cluster_wait_is_sliced_across_clusters(backend: FakeBackend) -> None:
    consumer = consumer_for(backend, A + "t", B + "t", "plaintext:/rn:fake:env:cloud_region::clusterC:t")
    assert consumer.poll(0.05) is None
    waits = [timeout for fake in backend.consumers for _, timeout in fake.calls]
    assert max(waits) <= 0.01 / 3 + 1e-9  # one round of waiting across all clusters lasts one slice
    assert all(fake.calls for fake in backend.consumers)


def test_retriable_consumer_errors_are_swallowed_then_returned_as_error_messages(backend: FakeBackend) -> None:
    consumer = psc.Consumer({**CONFIG, "psc.consumer.group.id": "g", "psc.auto.resolution.retry.count": "1"})
    consumer.subscribe([A + "t"])
    [fake] = backend.consumers
    down = FakeError("_TRANSPORT", code=-195)
    fake.records = [FakeRecord("t", None, error=down), FakeRecord("t", b"ok")]
    message = consumer.poll(0.01)
    assert message is not None and message.value() == b"ok"
    fake.records = [FakeRecord("t", None, error=down), FakeRecord("t", None, error=down)]
    message = consumer.poll(0.01)  # the retry budget is spent: the error reaches the app as confluent's would
    assert message is not None
    error = message.error()
    assert error is not None and error.code() == -195 and error.name() == "_TRANSPORT"
    assert message.topic() == A + "t"


def test_a_missing_subscribed_topic_is_reported_at_once_as_an_error_message(backend: FakeBackend) -> None:
    consumer = consumer_for(backend, A + "t")
    [fake] = backend.consumers
    fake.records = [FakeRecord("t", None, error=FakeError("UNKNOWN_TOPIC_OR_PART", code=3)), FakeRecord("t", b"ok")]
    message = consumer.poll(0.01)
    assert message is not None and message.error() is not None
    assert message.error().code() == 3  # type: ignore[union-attr]
    again = consumer.poll(0.01)
    assert again is not None and again.value() == b"ok"


def test_error_after_messages_in_a_batch_is_returned_in_place(backend: FakeBackend) -> None:
    consumer = psc.Consumer({**CONFIG, "psc.consumer.group.id": "g", "psc.auto.resolution.retry.count": "0"})
    consumer.subscribe([A + "t"])
    [fake] = backend.consumers
    fake.records = [FakeRecord("t", b"1"), FakeRecord("t", None, error=FakeError("UNKNOWN_TOPIC_OR_PART", code=3))]
    first, failed = consumer.consume(10, 0.01)
    assert first.value() == b"1" and first.error() is None
    error = failed.error()
    assert error is not None and error.code() == 3
    assert consumer.consume(10, 0.01) == []


def test_max_poll_exceeded_resets_and_resubscribes(backend: FakeBackend) -> None:
    consumer = consumer_for(backend, A + "t")
    [old] = backend.consumers
    old.records = [FakeRecord("t", None, error=FakeError("_MAX_POLL_EXCEEDED", code=-147))]
    assert consumer.poll(0.01) is None
    _, new_consumer = backend.consumers
    assert new_consumer.subscribed == ["t"]
    new_consumer.records = [FakeRecord("t", b"after")]
    message = consumer.poll(0.01)
    assert message is not None and message.value() == b"after"


def test_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(psc.UnknownBackendError, match="kafka"):
        psc.Producer(CONFIG).produce("plaintext:/rn:nosuch:env:cloud_region::c:t", b"x")


def test_commit_by_message_id_commits_the_next_offset(backend: FakeBackend) -> None:
    consumer = consumer_for(backend, A + "t")
    committed = consumer.commit(MessageId(A + "t", 3, 41, 0), asynchronous=False)
    assert committed == [TopicUriPartition(A + "t", 3)] and committed[0].offset == 42


CERT_ERROR = FakeError("_SSL", code=-181, message="ssl://b:9094: SSL handshake failed: certificate verify failed")


def test_certificate_error_from_the_error_callback_resets_the_consumer(backend: FakeBackend) -> None:
    consumer = consumer_for(backend, A + "t")
    [old] = backend.consumers
    old.config["error_cb"](CERT_ERROR)
    assert len(backend.consumers) == 1, "the reset must wait until librdkafka's callback has returned"
    assert consumer.poll(0.01) is None
    _, new = backend.consumers
    assert new.subscribed == ["t"]
    new.config["error_cb"](CERT_ERROR)  # the same error again at once: no reset storm
    consumer.poll(0.01)
    assert len(backend.consumers) == 2


def test_transport_errors_from_the_error_callback_do_not_reset_the_consumer(backend: FakeBackend) -> None:
    consumer = consumer_for(backend, A + "t")
    backend.consumers[0].config["error_cb"](FakeError("_TRANSPORT", code=-195, message="broker down"))
    consumer.poll(0.01)
    assert len(backend.consumers) == 1


def test_certificate_error_from_the_error_callback_resets_the_producer(
    backend: FakeBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer = psc.Producer(CONFIG)
    producer.produce(A + "t", b"v")
    [old] = backend.producers
    monkeypatch.setattr(psc._producer, "ERROR_RESET_INTERVAL_S", 0.0)
    old.config["error_cb"](CERT_ERROR)
    producer.flush(1)
    assert len(backend.producers) == 2 and old.closed


@pytest.mark.parametrize("sample_rate", ["0", "0.01", "1"])
def test_received_counts_are_exact_on_every_consume_path(backend: FakeBackend, sample_rate: str) -> None:
    registry = CollectorRegistry()
    config = {**CONFIG, "psc.consumer.group.id": "g", "psc.metrics.latency.sample.rate": sample_rate}
    consumer = psc.Consumer(config, metrics=ClientMetrics(MetricsRegistry("psc", registry)))
    consumer.subscribe([A + "t"])
    [fake] = backend.consumers
    retriable = FakeError("_TRANSPORT", code=-195)
    fake.records = [FakeRecord("t", b"x", offset=i) for i in range(2500)]
    fake.records[700] = FakeRecord("t", None, error=retriable)  # swallowed: not counted
    read = sum(consumer.poll(0) is not None for _ in range(1200))
    read += sum(len(consumer.consume(300, 0)) for _ in range(3))
    consumer.subscribe([A + "t", A + "u"])  # two topics: counted per record
    fake.records[:0] = [FakeRecord("u", b"y")] * 10
    while True:  # until nothing is left, buffered or not
        more = len(consumer.consume(7, 0)) + (consumer.poll(0) is not None)
        if not more:
            break
        read += more
    consumer.close()

    def received(topic: str) -> float | None:
        return registry.get_sample_value("psc_messages_received_total", {"topic_uri": A + topic})

    assert read == 2509
    assert (received("t"), received("u")) == (2499, 10)


def buffered_consumer(
    backend: FakeBackend, records: list[FakeRecord], *, polls: int = 10, **extra: str
) -> tuple[psc.Consumer, FakeConsumer, list[Message]]:
    """A consumer that has returned ``polls`` records; batches grow 1, 2, 4, 8...: 10 leaves 5 buffered."""
    consumer = psc.Consumer({**CONFIG, "psc.consumer.group.id": "g", **extra})
    consumer.subscribe([A + "t"])
    [fake] = backend.consumers
    fake.records = list(records)
    returned = [consumer.poll(1.0) for _ in range(polls)]
    assert all(m is not None for m in returned)
    return consumer, fake, [m for m in returned if m is not None]


def two_partitions(count: int) -> list[FakeRecord]:
    return [FakeRecord("t", b"%d" % i, partition=i % 2, offset=i // 2) for i in range(count)]


def next_offsets(messages: Sequence[Message]) -> list[tuple[int, int]]:
    """Per partition, the offset after the last message returned: the application's position."""
    last = {m.partition(): m.offset() for m in messages}
    return sorted((p, o + 1) for p, o in last.items() if p is not None and o is not None)


def test_poll_fetches_batches_without_waiting_and_serves_them_in_order(backend: FakeBackend) -> None:
    records = [FakeRecord("t", b"%d" % i, offset=i) for i in range(100)]
    consumer, fake, _returned = buffered_consumer(backend, records, polls=1)
    values = [m.value() for m in iter(lambda: consumer.poll(0.5), None)]
    assert values == [b"%d" % i for i in range(1, 100)]
    assert all(timeout == 0 for kind, timeout in fake.calls if kind == "consume")
    assert sum(kind == "consume" for kind, _ in fake.calls) < 20  # batches, not a call per record


def test_commit_without_arguments_commits_the_first_unreturned_offsets(backend: FakeBackend) -> None:
    consumer, _fake, returned = buffered_consumer(backend, two_partitions(40))
    assert consumer._order[0].buffer, "records are buffered"
    assert next_offsets(returned) == [(0, 5), (1, 5)]
    committed = consumer.commit(asynchronous=False)
    assert committed is not None and sorted((c.partition, c.offset) for c in committed) == [(0, 5), (1, 5)]
    positions = consumer.position([TopicUriPartition(A + "t", 0), TopicUriPartition(A + "t", 1)])
    assert [(p.partition, p.offset) for p in positions] == [(0, 5), (1, 5)]
    returned.append(consumer.poll(0))  # type: ignore[arg-type]
    committed = consumer.commit(asynchronous=False)
    assert committed is not None and sorted((c.partition, c.offset) for c in committed) == next_offsets(returned)


def test_pause_gives_buffered_records_back_and_resume_returns_them(backend: FakeBackend) -> None:
    consumer, fake, seen = buffered_consumer(backend, two_partitions(40), polls=11)
    assert consumer._order[0].buffer, "records are buffered"
    consumer.pause([TopicUriPartition(A + "t", 0)])
    assert sorted((s.partition, s.offset) for s in fake.seeks) == next_offsets(seen)
    committed = consumer.commit(asynchronous=False)  # librdkafka has no position until it reads again
    assert committed is not None and sorted((c.partition, c.offset) for c in committed) == next_offsets(seen)
    while (message := consumer.poll(0)) is not None:
        assert message.partition() == 1
        seen.append(message)
    consumer.resume([TopicUriPartition(A + "t", 0)])
    seen += list(iter(lambda: consumer.poll(0), None))
    assert sorted((m.partition(), m.offset()) for m in seen) == sorted(
        (r.partition(), r.offset()) for r in two_partitions(40)
    )


def test_revocation_drops_revoked_records_after_the_callback_commits_the_app_positions(backend: FakeBackend) -> None:
    consumer = psc.Consumer({**CONFIG, "psc.consumer.group.id": "g"})
    commits: list[list[TopicUriPartition] | None] = []

    def on_revoke(c: psc.Consumer, parts: list[TopicUriPartition]) -> None:
        commits.append(c.commit(asynchronous=False))

    consumer.subscribe([A + "t"], on_revoke=on_revoke)
    [fake] = backend.consumers
    fake.records = two_partitions(40)
    returned = [m for m in (consumer.poll(0) for _ in range(10)) if m is not None]
    assert consumer._order[0].buffer, "records are buffered"
    fake.callbacks[1]([BackendPartition("t", 0)])  # as librdkafka calls it from inside consume/poll
    fake.records = [r for r in fake.records if r.partition() != 0]  # and fetches no more of it
    [committed] = commits
    assert committed is not None and sorted((c.partition, c.offset) for c in committed) == next_offsets(returned)
    rest = list(iter(lambda: consumer.poll(0), None))
    assert {m.partition() for m in rest} == {1}, "records of the revoked partition are never returned"
    assert [m.offset() for m in rest] == list(range(5, 20))


def test_error_in_the_middle_of_a_buffered_batch_is_handled_in_order(backend: FakeBackend) -> None:
    records = [FakeRecord("t", b"%d" % i, offset=i) for i in range(40)]
    records[12] = FakeRecord("t", None, offset=12, error=FakeError("UNKNOWN_TOPIC_OR_PART", code=3))
    records[25] = FakeRecord("t", None, offset=25, error=FakeError("UNKNOWN_TOPIC_OR_PART", code=3))
    consumer, _fake, returned = buffered_consumer(backend, records, **{"psc.auto.resolution.retry.count": "0"})
    assert consumer._order[0].buffer, "the error is buffered"
    while True:
        message = consumer.poll(0)
        assert message is not None
        if message.error() is not None:
            break
        returned.append(message)
    assert [m.offset() for m in returned] == list(range(12))
    assert consumer._order[0].buffer, "the records after the error stay buffered"
    rest: list[int | None] = []
    errors = 0
    for _ in range(5):  # the buffered records first, then the backend's, the second error in its place
        for m in consumer.consume(100, 0):
            if m.error() is None:
                rest.append(m.offset())
            else:
                errors += 1
    assert errors == 1
    assert rest == [*range(13, 25), *range(26, 40)]


@pytest.mark.parametrize(
    ("extra", "managed"),
    [
        ({}, True),  # auto-commit and auto offset store: librdkafka's defaults
        ({"psc.consumer.commit.auto.enabled": "true"}, True),
        ({"psc.consumer.commit.auto.enabled": "true", "psc.consumer.enable.auto.offset.store": "false"}, False),
        ({"psc.consumer.commit.auto.enabled": "false"}, False),
    ],
)
def test_buffering_stays_on_with_auto_commit_and_psc_stores_only_returned_offsets(
    backend: FakeBackend, extra: dict[str, str], managed: bool
) -> None:
    consumer, fake, returned = buffered_consumer(
        backend, [FakeRecord("t", b"%d" % i, offset=i) for i in range(50)], **extra
    )
    assert any(kind == "consume" for kind, _ in fake.calls)
    assert (fake.config.get("enable.auto.offset.store") == "false") is (managed or "offset.store" in str(extra))
    if managed:
        # Stored at each refill, when every record fetched before was returned: never past a returned one.
        assert consumer._order[0].buffer
        assert 0 < fake.stored[("t", 0)] <= len(returned)
    rest = list(iter(lambda: consumer.poll(0), None))
    assert len(returned) + len(rest) == 50
    consumer.close()  # the commit on close has every returned record: librdkafka commits what is stored
    assert fake.stored == ({("t", 0): 50} if managed else {})
