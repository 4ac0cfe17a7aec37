"""Prometheus metrics: one registry helper so every component names and exposes metrics the same way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

# Latency buckets in seconds, from sub-millisecond (in-memory dequeue) to tens of seconds (MemQ batches).
_M = TypeVar("_M", Counter, Gauge, Histogram)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class MetricsRegistry:
    """A namespaced Prometheus registry that hands out each metric once, however often it is asked for.

    Asking twice for the same name returns the same collector, so components can declare metrics where
    they use them without coordinating registration.
    """

    def __init__(self, namespace: str, registry: CollectorRegistry | None = None) -> None:
        self.namespace = namespace
        self.registry = registry if registry is not None else CollectorRegistry()
        self._metrics: dict[str, Counter | Gauge | Histogram] = {}

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return self._get(name, lambda: Counter(name, doc, labels, namespace=self.namespace, registry=self.registry))

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return self._get(name, lambda: Gauge(name, doc, labels, namespace=self.namespace, registry=self.registry))

    def histogram(
        self, name: str, doc: str, labels: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> Histogram:
        return self._get(
            name,
            lambda: Histogram(name, doc, labels, namespace=self.namespace, registry=self.registry, buckets=buckets),
        )

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return bytes(generate_latest(self.registry))

    def _get(self, name: str, factory: Callable[[], _M]) -> _M:
        metric = self._metrics.get(name)
        if metric is None:
            metric = self._metrics[name] = factory()
        return cast(_M, metric)


_default_registry = CollectorRegistry()


def default_registry() -> CollectorRegistry:
    """The process-wide registry that components use unless given their own."""
    return _default_registry


def start_metrics_server(port: int, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None) -> None:
    """Serve ``/metrics`` for the given registry (default: the process-wide one) on ``addr:port``."""
    start_http_server(port, addr=addr, registry=registry or _default_registry)
