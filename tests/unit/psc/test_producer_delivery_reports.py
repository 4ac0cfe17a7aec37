"""``psc.producer.delivery.report.only.error``: successes are not reported, failures still are remediated."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

import psc
from psc.backends import register_backend, unregister_backend
from tests.unit.psc.test_clients import CONFIG, FakeBackend, FakeError, FakeProducer

A = "plaintext:/rn:fake:env:cloud_region::clusterA:"
ONLY_ERRORS = {**CONFIG, "psc.producer.delivery.report.only.error": "true"}


class OnlyErrorProducer(FakeProducer):
    """confluent-kafka's delivery trampoline: with the setting on, a success never reaches Python."""

    def poll(self, timeout: float) -> int:
        served, self.queue = self.queue, []
        for record, report in served:
            error = self.failures.pop(0) if self.failures else None
            if error is not None or not self.config.get("delivery.report.only.error"):
                (report or self.config["on_delivery"])(error, record)
        return len(served)


class OnlyErrorBackend(FakeBackend):
    def create_producer(self, endpoint: Any, config: Mapping[str, Any], cluster_uri: str) -> OnlyErrorProducer:
        producer = OnlyErrorProducer(cluster_uri, config, self.failures)
        self.producers.append(producer)
        return producer


@pytest.fixture
def backend() -> Iterator[OnlyErrorBackend]:
    fake = OnlyErrorBackend()
    register_backend("fake", fake)
    yield fake
    unregister_backend("fake")


def test_the_backend_gets_the_setting_as_a_bool_and_latency_is_not_sampled(backend: OnlyErrorBackend) -> None:
    default, only_errors = psc.Producer(CONFIG), psc.Producer(ONLY_ERRORS)
    default.produce(A + "t", b"v")
    only_errors.produce(A + "t", b"v")
    first, second = backend.producers
    assert "delivery.report.only.error" not in first.config
    assert second.config["delivery.report.only.error"] is True  # confluent-kafka rejects the text "true"
    assert only_errors._settings.sample_every == 0


def test_send_is_refused_because_its_future_needs_the_success_report(backend: OnlyErrorBackend) -> None:
    producer = psc.Producer(ONLY_ERRORS)
    with pytest.raises(psc.ProducerError, match=r"delivery\.report\.only\.error"):
        producer.send(A + "t", b"v")


def test_failed_records_are_still_remediated_and_successes_stay_silent(backend: OnlyErrorBackend) -> None:
    backend.failures.extend([FakeError("_MSG_TIMED_OUT", code=-192, retriable=True)] * 2)
    producer = psc.Producer(ONLY_ERRORS)
    reports: list[Any] = []
    producer.produce(A + "t", b"plain")
    producer.produce(A + "t", b"cb", on_delivery=lambda e, m: reports.append(e))
    producer.produce(A + "t", b"ok", on_delivery=lambda e, m: reports.append(e))
    assert producer.flush(1) == 0
    assert reports == []
    assert [v for _, v in backend.producers[0].produced] == [b"plain", b"cb", b"ok", b"plain", b"cb"]


def test_a_failure_remediation_cannot_fix_reaches_the_callback(backend: OnlyErrorBackend) -> None:
    backend.failures.append(FakeError("MSG_SIZE_TOO_LARGE", code=10))
    producer = psc.Producer(ONLY_ERRORS)
    reports: list[Any] = []
    producer.produce(A + "t", b"big", on_delivery=lambda e, m: reports.append(e))
    producer.produce(A + "t", b"ok", on_delivery=lambda e, m: reports.append(e))
    assert producer.flush(1) == 0
    [error] = reports
    assert isinstance(error, psc.KafkaError) and error.name() == "MSG_SIZE_TOO_LARGE"


def test_callbacks_get_success_reports_by_default(backend: OnlyErrorBackend) -> None:
    producer = psc.Producer(CONFIG)
    reports: list[Any] = []
    producer.produce(A + "t", b"ok", on_delivery=lambda e, m: reports.append(e))
    assert producer.flush(1) == 0
    assert reports == [None]
