"""The producer over a fake backend that fails fatally the way confluent-kafka does.

confluent-kafka never passes a fatal error to ``error_cb``: the next ``poll``/``flush`` raises it as a
``KafkaException``. The batch that tripped it then reports its own (non-fatal) error, the queue comes back
purged, and ``produce`` refuses records with ``_FATAL``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

import psc
from psc._message import MessageId
from psc.backends import register_backend, unregister_backend
from tests.unit.psc.test_clients import CONFIG, FakeBackend, FakeError, FakeProducer

A = "plaintext:/rn:fake:env:cloud_region::clusterA:"
GAPLESS = KafkaError(KafkaError._GAPLESS_GUARANTEE, "batch failed: unable to satisfy gap-less guarantee", fatal=True)
TOO_LARGE = FakeError("MSG_SIZE_TOO_LARGE", code=10, message="Broker: Message size too large")


class FatalProducer(FakeProducer):
    def __init__(self, cluster_uri: str, config: Mapping[str, Any], failures: list[FakeError]) -> None:
        super().__init__(cluster_uri, config, failures)
        self.raise_on_poll: KafkaError | None = None
        self.broken = False
        self.purges: list[tuple[bool, bool]] = []

    def trip(self, rejected: int) -> None:
        """The broker rejects the first ``rejected`` queued records; librdkafka makes that fatal."""
        self.broken = True
        self.raise_on_poll = GAPLESS
        queued = len(self.queue)
        self.failures[:0] = [TOO_LARGE] * rejected + [FakeError("_PURGE_QUEUE", code=-152)] * (queued - rejected)

    def _produce(
        self, topic: str, value: Any, key: Any = None, partition: int = -1, on_delivery: Any = None, **kw: Any
    ) -> None:
        if self.broken:
            raise KafkaException(KafkaError(KafkaError._FATAL, "Unable to produce message: Local: Fatal error"))
        super()._produce(topic, value, key, partition, on_delivery, **kw)

    def poll(self, timeout: float) -> int:
        if self.raise_on_poll is not None:
            error, self.raise_on_poll = self.raise_on_poll, None
            raise KafkaException(error)
        return super().poll(timeout)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return len(self.queue)

    def purge(self, in_queue: bool, in_flight: bool, blocking: bool) -> None:
        self.purges.append((in_queue, in_flight))
        if not self.broken:  # a fatal error already purged the queue
            super().purge(in_queue, in_flight, blocking)


class FatalBackend(FakeBackend):
    def __init__(self) -> None:
        super().__init__()
        self.trip_every_generation = 0  # > 0: every new producer fails fatally on its first poll

    def create_producer(self, endpoint: Any, config: Mapping[str, Any], cluster_uri: str) -> FatalProducer:
        producer = FatalProducer(cluster_uri, config, self.failures)
        if self.trip_every_generation:
            producer.produce = self._tripping(producer)
        self.producers.append(producer)
        return producer

    def _tripping(self, producer: FatalProducer) -> Any:
        produce = producer._produce

        def tripping(*args: Any, **kw: Any) -> None:
            produce(*args, **kw)
            producer.trip(self.trip_every_generation)

        return tripping


@pytest.fixture
def backend() -> Iterator[FatalBackend]:
    fake = FatalBackend()
    register_backend("fake", fake)
    yield fake
    unregister_backend("fake")


def producers(backend: FatalBackend) -> list[FatalProducer]:
    return [p for p in backend.producers if isinstance(p, FatalProducer)]


def test_fatal_error_raised_by_poll_resets_and_re_produces_without_surfacing(backend: FatalBackend) -> None:
    producer = psc.Producer(CONFIG)
    reports: list[tuple[Any, bytes | None]] = []
    producer.produce(A + "t", b"cb-1", on_delivery=lambda e, m: reports.append((e, m.value())))
    producer.produce(A + "t", b"plain")  # no callback: only PSC owns it
    future: Future[MessageId] = producer.send(A + "t", b"future")
    producer.produce(A + "t", b"cb-2", on_delivery=lambda e, m: reports.append((e, m.value())))
    [old] = producers(backend)
    old.trip(rejected=2)  # cb-1 and plain in the rejected batch, future and cb-2 purged from the queue

    assert producer.poll(0) == 0  # the fatal error is remediated, not raised
    assert producer.flush(1) == 0

    assert sorted(reports, key=lambda r: r[1] or b"") == [(None, b"cb-1"), (None, b"cb-2")]
    assert future.result(0).topic_uri == A + "t"
    old, new = producers(backend)
    assert old.closed and not new.closed
    assert sorted(v for _, v in new.produced) == [b"cb-1", b"cb-2", b"future", b"plain"]
    assert old.purges == [(True, False)]  # a fatal client's in-flight records are left to finish


def test_fatal_error_raised_by_flush_is_remediated_too(backend: FatalBackend) -> None:
    producer = psc.Producer(CONFIG)
    errors: list[Any] = []
    producer.produce(A + "t", b"v", on_delivery=lambda e, m: errors.append(e))
    producers(backend)[0].trip(rejected=1)
    assert producer.flush(1) == 0
    assert errors == [None]
    assert [v for _, v in producers(backend)[1].produced] == [b"v"]


def test_produce_refused_by_a_fatal_client_goes_to_a_new_one(backend: FatalBackend) -> None:
    producer = psc.Producer(CONFIG)
    producer.produce(A + "t", b"first")
    [old] = producers(backend)
    old.broken = True  # fatal, but the error has not been served yet: produce() raises _FATAL
    producer.produce(A + "t", b"plain")
    producer.produce(A + "t", b"cb", on_delivery=lambda e, m: None)
    assert producer.flush(1) == 0
    old, new = producers(backend)
    assert [v for _, v in new.produced] == [b"plain", b"cb"]


def test_fatal_delivery_report_is_remediated_for_callback_records(backend: FatalBackend) -> None:
    backend.failures.extend([FakeError("_FATAL", code=-150, fatal=True), TOO_LARGE])
    producer = psc.Producer(CONFIG)
    errors: list[Any] = []
    producer.produce(A + "t", b"a", on_delivery=lambda e, m: errors.append(e))
    producer.produce(A + "t", b"b", on_delivery=lambda e, m: errors.append(e))
    assert producer.flush(1) == 0
    assert errors == [None, None]
    assert sorted(v for _, v in producers(backend)[1].produced) == [b"a", b"b"]


def test_records_that_break_every_client_surface_after_the_retry_budget(backend: FatalBackend) -> None:
    backend.trip_every_generation = 1
    producer = psc.Producer({**CONFIG, "psc.auto.resolution.retry.count": "2"})
    errors: list[Any] = []
    producer.produce(A + "t", b"poison", on_delivery=lambda e, m: errors.append(e))
    for _ in range(10):
        producer.poll(0)
    [error] = errors
    assert isinstance(error, psc.KafkaError) and error.name() == "MSG_SIZE_TOO_LARGE"
    # The first client, one per retry, and one replacing the client that failed the last attempt.
    assert len(producers(backend)) == 4


def test_transactional_producer_still_raises_fatal_errors(backend: FatalBackend) -> None:
    producer = psc.Producer({**CONFIG, "psc.producer.transactional.id": "tx"})
    errors: list[Any] = []
    producer.produce(A + "t", b"v", on_delivery=lambda e, m: errors.append(e))
    producers(backend)[0].trip(rejected=1)
    with pytest.raises(KafkaException) as raised:
        producer.poll(0)
    assert raised.value.args[0].code() == KafkaError._GAPLESS_GUARANTEE
    producer.poll(0)
    assert [e.name() for e in errors] == ["MSG_SIZE_TOO_LARGE"]
    assert len(producers(backend)) == 1


def test_fatal_errors_raise_when_auto_resolution_is_off(backend: FatalBackend) -> None:
    producer = psc.Producer({**CONFIG, "psc.auto.resolution.enabled": "false"})
    producer.produce(A + "t", b"v")
    producers(backend)[0].trip(rejected=1)
    with pytest.raises(KafkaException):
        producer.poll(0)
    assert len(producers(backend)) == 1


def test_application_purge_of_a_fatal_client_is_not_retried(backend: FatalBackend) -> None:
    producer = psc.Producer(CONFIG)
    errors: list[Any] = []
    producer.produce(A + "t", b"rejected", on_delivery=lambda e, m: errors.append(e))
    producer.produce(A + "t", b"queued", on_delivery=lambda e, m: errors.append(e))
    producer.purge()  # the application drops its queued records itself, then the client fails fatally
    [old] = producers(backend)
    old.broken, old.raise_on_poll = True, GAPLESS
    producer.flush(1)
    assert [e.name() for e in errors] == ["_PURGE_QUEUE", "_PURGE_QUEUE"]
