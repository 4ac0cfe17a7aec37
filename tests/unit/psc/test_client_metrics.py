from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from psc._metrics import ClientMetrics, client_metrics, psc_registry
from psc.common import MetricsRegistry, default_registry

A = "plaintext:/rn:kafka:env:aws_us-west-1::cluster01:a"
B = "plaintext:/rn:kafka:env:aws_us-west-1::cluster01:b"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> ClientMetrics:
    return ClientMetrics(MetricsRegistry("psc", registry))


def test_counters_per_topic_uri(metrics: ClientMetrics, registry: CollectorRegistry) -> None:
    metrics.sent(A)
    metrics.sent(A, 9)
    metrics.sent(B, 2)
    metrics.received(A, 4)
    metrics.retry(A)
    metrics.reset(B)
    metrics.reset(B)
    assert registry.get_sample_value("psc_messages_sent_total", {"topic_uri": A}) == 10
    assert registry.get_sample_value("psc_messages_sent_total", {"topic_uri": B}) == 2
    assert registry.get_sample_value("psc_messages_received_total", {"topic_uri": A}) == 4
    assert registry.get_sample_value("psc_client_retries_total", {"topic_uri": A}) == 1
    assert registry.get_sample_value("psc_client_resets_total", {"topic_uri": B}) == 2
    assert registry.get_sample_value("psc_client_resets_total", {"topic_uri": A}) is None


def test_errors_by_code(metrics: ClientMetrics, registry: CollectorRegistry) -> None:
    metrics.error(A, "_MSG_TIMED_OUT")
    metrics.error(A, "_MSG_TIMED_OUT")
    metrics.error(A, -195)
    assert registry.get_sample_value("psc_errors_total", {"topic_uri": A, "code": "_MSG_TIMED_OUT"}) == 2
    assert registry.get_sample_value("psc_errors_total", {"topic_uri": A, "code": "-195"}) == 1


def test_latency_histograms(metrics: ClientMetrics, registry: CollectorRegistry) -> None:
    metrics.observe_produce_latency(A, 0.004)
    metrics.observe_produce_latency(A, 0.006)
    metrics.observe_e2e_latency(B, 1.5)
    assert registry.get_sample_value("psc_produce_latency_seconds_count", {"topic_uri": A}) == 2
    assert registry.get_sample_value("psc_produce_latency_seconds_sum", {"topic_uri": A}) == pytest.approx(0.01)
    assert registry.get_sample_value("psc_produce_latency_seconds_bucket", {"topic_uri": A, "le": "0.005"}) == 1
    assert registry.get_sample_value("psc_end_to_end_latency_seconds_count", {"topic_uri": B}) == 1


def test_remediation_actions(metrics: ClientMetrics, registry: CollectorRegistry) -> None:
    metrics.remediation_action("RETRY", "_TRANSPORT", "consumer")
    labels = {"action": "RETRY", "code": "_TRANSPORT", "client_type": "consumer"}
    assert registry.get_sample_value("psc_remediation_actions_total", labels) == 1


def test_children_are_cached(metrics: ClientMetrics) -> None:
    metrics.sent(A)
    first = metrics._sent._cache[A]
    metrics.sent(A)
    assert metrics._sent._cache[A] is first


def test_two_client_metrics_share_one_registry(registry: CollectorRegistry) -> None:
    shared = MetricsRegistry("psc", registry)
    ClientMetrics(shared).sent(A)
    ClientMetrics(shared).sent(A)
    assert registry.get_sample_value("psc_messages_sent_total", {"topic_uri": A}) == 2


def test_process_wide_instances() -> None:
    assert psc_registry() is psc_registry()
    assert psc_registry().registry is default_registry()
    assert client_metrics() is client_metrics()


def test_latency_samples_slow_down_when_they_come_too_fast_and_recover(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from psc import _producer

    clock = [100.0]
    monkeypatch.setattr(_producer.time, "monotonic", lambda: clock[0])
    route = SimpleNamespace(sample_step=100, last_sample=0.0)
    steps = []
    for gap in (1.0, 0.001, 0.001, 0.001, 0.02, 1.0, 1.0, 1.0):  # seconds since the previous sample
        clock[0] += gap
        steps.append(_producer._next_sample_step(route, 100))  # type: ignore[arg-type]
    # Faster than 100 a second: the step doubles; between 10 and 40 ms: kept; slower: halves back to 100.
    assert steps == [100, 200, 400, 800, 800, 400, 200, 100]
