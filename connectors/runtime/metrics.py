"""Prometheus metrics of a running job."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry

from psc.common.metrics import MetricsRegistry, default_registry

_registries: dict[int, MetricsRegistry] = {}


def _metrics_registry(registry: CollectorRegistry) -> MetricsRegistry:
    """One MetricsRegistry per collector registry, so several jobs in a process share the collectors."""
    found = _registries.get(id(registry))
    if found is None:
        found = _registries[id(registry)] = MetricsRegistry("connectors", registry)
    return found


class JobMetrics:
    def __init__(self, job: str, registry: CollectorRegistry | None = None) -> None:
        self.job = job
        reg = _metrics_registry(registry if registry is not None else default_registry())
        self.records_in = reg.counter("records_in", "Records read by the source", ["job"]).labels(job)
        self.records_out = reg.counter("records_out", "Records written to the sink", ["job"]).labels(job)
        self.dead_letters = reg.counter("dead_letters", "Records the user functions raised on", ["job"]).labels(job)
        self.checkpoints = reg.counter("checkpoints", "Completed checkpoints", ["job"]).labels(job)
        self.corrupt_checkpoints = reg.counter(
            "corrupt_checkpoints", "Corrupt checkpoints passed over", ["job"]
        ).labels(job)
        self.restarts = reg.counter("restarts", "In-process restarts after a failure", ["job"]).labels(job)
        self.checkpoint_duration = reg.histogram(
            "checkpoint_duration_seconds", "Time to take and commit a checkpoint", ["job"]
        ).labels(job)
        self.lag = reg.gauge(
            "lag_records", "Records behind the end of the source, at the last checkpoint", ["job"]
        ).labels(job)
        self._last_checkpoint = time.time()
        age = reg.gauge("checkpoint_age_seconds", "Seconds since the last completed checkpoint", ["job"]).labels(job)
        age.set_function(lambda: time.time() - self._last_checkpoint)

    def checkpoint_done(self, duration_s: float) -> None:
        self._last_checkpoint = time.time()
        self.checkpoints.inc()
        self.checkpoint_duration.observe(duration_s)
