"""The broker's Prometheus metrics, in one registry per broker so tests can run several in one process."""

from __future__ import annotations

from psc.common.metrics import MetricsRegistry

_SIZE_BUCKETS = tuple(float(1 << n) for n in range(10, 31, 2))  # 1 KiB .. 1 GiB


class BrokerMetrics:
    def __init__(self, registry: MetricsRegistry | None = None) -> None:
        self.registry = registry or MetricsRegistry("memq_broker")
        r = self.registry
        self.bytes_in = r.counter("bytes_in_total", "Producer-message bytes accepted into batches", ["topic"])
        self.messages_in = r.counter("messages_in_total", "Producer messages accepted into batches", ["topic"])
        self.requests = r.counter("requests_total", "Requests answered, by type and response code", ["type", "code"])
        self.batches = r.counter("batches_total", "Batches sealed, by what sealed them", ["topic", "reason"])
        self.objects = r.counter("objects_total", "Batches finished, by outcome (stored or failed)", ["outcome"])
        self.object_bytes = r.histogram("object_bytes", "Size of stored objects", buckets=_SIZE_BUCKETS)
        self.stored_bytes = r.counter(
            "stored_bytes_total", "Bytes of stored objects, by what sealed their batch", ["topic", "reason"]
        )
        self.storage_requests = r.counter(
            "storage_requests_total", "Requests sent to the object store, by operation (PutObject, ...)", ["operation"]
        )
        self.upload_seconds = r.histogram("upload_seconds", "Time to store one object, all attempts")
        self.notify_seconds = r.histogram("notify_seconds", "Time for Kafka to acknowledge a notification")
        self.upload_retries = r.counter("upload_retries_total", "Upload attempts that failed and were retried")
        self.inflight_bytes = r.gauge("inflight_bytes", "Bytes in open or uploading batches")
        self.backpressure = r.counter("backpressure_waits_total", "Times a connection waited for in-flight room")
        self.connections = r.gauge("connections", "Open producer connections")
        self.bad_frames = r.counter("bad_frames_total", "Frames that could not be decoded; their connection closed")
