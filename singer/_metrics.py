"""The agent's Prometheus metrics, labelled by stream where they are per stream."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from psc.common.metrics import MetricsRegistry


class SingerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        m = MetricsRegistry("singer", registry)
        self.registry = m.registry
        s = ("stream",)
        self.lag_bytes = m.gauge("lag_bytes", "Bytes of the stream's files after its watermark", s)
        self.records_sent = m.counter("records_sent", "Records acknowledged by the broker", s)
        self.bytes_sent = m.counter("bytes_sent", "Value bytes acknowledged by the broker", s)
        self.truncated = m.counter("records_truncated", "Records cut to the maximum message size", s)
        self.skipped = m.counter("records_skipped", "Records left out (over the maximum, or undeliverable)", s)
        self.dead_lettered = m.counter("records_dead_lettered", "Undeliverable records sent to the dead letters", s)
        self.delivery_errors = m.counter("delivery_errors", "Records whose delivery failed (batch retried)", s)
        self.batch_retries = m.counter("batch_retries", "Rewinds to the watermark after a failed batch", s)
        self.copytruncate = m.counter("copytruncate", "Truncations of a file being read (copytruncate)", s)
        self.bytes_lost = m.counter("bytes_unrecoverable", "Bytes truncated away before they were read", s)
        self.copytruncate_lost = m.counter(
            "copytruncate_lost_bytes", "Bytes seen in a truncated file but in neither its copy nor what was read", s
        )
        self.skipped_bytes = m.counter("skipped_bytes", "Unreadable tail bytes of rotated files", s)
        self.stuck = m.gauge("stream_stuck", "1 while a stream has lag but its watermark does not move", s)
        self.stuck_streams = m.gauge("stuck_streams", "Streams with lag whose watermark does not move")
        self.streams = m.gauge("streams", "Streams being shipped")
        self.open_files = m.gauge("open_files", "Log files held open")
        self.inflight_bytes = m.gauge("inflight_bytes", "Bytes held for records sent and not yet acknowledged")
        self.config_errors = m.gauge("config_errors", "Configuration files that failed validation")
        self.heartbeats = m.counter("heartbeats", "Heartbeats sent")
