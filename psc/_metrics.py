"""Per-topic-URI client metrics.

``labels()`` on a Prometheus collector hashes and locks on every call, far too slow per message, so each
child collector is looked up once per topic URI (and error code) and cached in a plain dict.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from psc.common import MetricsRegistry, default_registry


@lru_cache(maxsize=1)
def psc_registry() -> MetricsRegistry:
    """The process-wide ``psc`` namespace: one instance, so each metric is registered exactly once."""
    return MetricsRegistry("psc", default_registry())


class _Children:
    """Label children of one collector, cached by label values."""

    __slots__ = ("_cache", "_metric")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._cache: dict[Any, Any] = {}

    def get(self, *labels: str) -> Any:
        key = labels[0] if len(labels) == 1 else labels
        child = self._cache.get(key)
        if child is None:
            # Racing threads may both create it: labels() returns the same child, so that is harmless.
            child = self._cache[key] = self._metric.labels(*labels)
        return child


class ClientMetrics:
    """Counters and latency histograms of PSC clients, labelled by topic URI."""

    def __init__(self, registry: MetricsRegistry | None = None) -> None:
        reg = registry if registry is not None else psc_registry()
        topic = ("topic_uri",)
        self._sent = _Children(reg.counter("messages_sent_total", "Messages acknowledged by the backend.", topic))
        self._received = _Children(reg.counter("messages_received_total", "Messages consumed.", topic))
        self._errors = _Children(
            reg.counter("errors_total", "Client errors by backend error code.", ("topic_uri", "code"))
        )
        self._retries = _Children(reg.counter("client_retries_total", "Retries by remediation.", topic))
        self._resets = _Children(reg.counter("client_resets_total", "Backend client resets.", topic))
        self._actions = _Children(
            reg.counter(
                "remediation_actions_total",
                "Remediation actions taken on backend errors.",
                ("action", "code", "client_type"),
            )
        )
        self._produce_latency = _Children(
            reg.histogram("produce_latency_seconds", "Time from send to delivery report.", topic)
        )
        self._e2e_latency = _Children(
            reg.histogram("end_to_end_latency_seconds", "Time from produce to consume.", topic)
        )

    def sent(self, topic_uri: str, n: int = 1) -> None:
        self._sent.get(topic_uri).inc(n)

    def received(self, topic_uri: str, n: int = 1) -> None:
        self._received.get(topic_uri).inc(n)

    def error(self, topic_uri: str, code: str | int) -> None:
        self._errors.get(topic_uri, str(code)).inc()

    def retry(self, topic_uri: str, n: int = 1) -> None:
        self._retries.get(topic_uri).inc(n)

    def reset(self, topic_uri: str, n: int = 1) -> None:
        self._resets.get(topic_uri).inc(n)

    def remediation_action(self, action: str, code: str, client_type: str) -> None:
        self._actions.get(action, code, client_type).inc()

    def observe_produce_latency(self, topic_uri: str, seconds: float) -> None:
        self._produce_latency.get(topic_uri).observe(seconds)

    def observe_e2e_latency(self, topic_uri: str, seconds: float) -> None:
        self._e2e_latency.get(topic_uri).observe(seconds)


@lru_cache(maxsize=1)
def client_metrics() -> ClientMetrics:
    """The process-wide :class:`ClientMetrics` on :func:`psc_registry`."""
    return ClientMetrics()
