"""A flood while S3 is stalled: the broker's memory stays bounded, producers are slowed down, nothing is lost."""

from __future__ import annotations

import os
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import boto3
import pytest

from memq._producer import DeliveredRecord, Producer
from tests.integration.memq.brokers import BrokerProcess, S3Proxy, broker_config, read_notifications
from tests.services import Services

MIB = 1024 * 1024


@pytest.fixture
def stalling_s3(services: Services) -> Iterator[tuple[S3Proxy, str]]:
    s3 = boto3.client(
        "s3",
        endpoint_url=services.s3_endpoint_url,
        aws_access_key_id="memq",
        aws_secret_access_key="memq",
        region_name="us-east-1",
    )
    bucket = f"memq-flood-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    proxy = S3Proxy(services.s3_endpoint_url)
    yield proxy, bucket
    proxy.close()
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _metric(broker: BrokerProcess, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics", timeout=10).read().decode()
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")), 0.0)


def test_flood_with_s3_stalled_keeps_memory_bounded_and_loses_nothing(
    stalling_s3: tuple[S3Proxy, str],
    tmp_path: Path,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
) -> None:
    proxy, bucket = stalling_s3
    notify = new_topic()
    cap = 8 * MIB
    topic = {"name": "flood", "notification_topic": notify, "batch_max_bytes": 1 * MIB, "batch_max_ms": 500}
    settings: dict[str, Any] = {
        "storage": f"s3://{bucket}/flood?timeout_s=120",
        "s3_endpoint_url": proxy.url,
        "max_inflight_bytes": cap,
        "upload_attempt_timeout_s": 60.0,
        "producer_request_timeout_s": 240.0,
    }
    broker = BrokerProcess(broker_config(tmp_path / "unused", [topic], kafka_bootstrap, **settings), tmp_path).start()
    try:
        baseline_rss = _rss_bytes(broker.proc.pid)  # type: ignore[union-attr]
        proxy.flowing.clear()  # S3 stalls: no upload can finish
        futures: list[Future[DeliveredRecord]] = []
        payload_size = 64 * 1024
        flood = 40 * MIB  # five times the broker's cap
        producers = [
            Producer(
                brokers=[broker.address],
                compression="none",
                linger_ms=5,
                max_inflight_bytes=16 * MIB,
                max_block_ms=120_000,
                request_timeout_ms=240_000,
            )
            for _ in range(2)
        ]

        def send_all(producer: Producer, part: int) -> None:
            for i in range(flood // payload_size // len(producers)):
                futures.append(producer.send("flood", os.urandom(payload_size - 8) + b"%08d" % (part * 100000 + i)))

        senders = [threading.Thread(target=send_all, args=(p, n)) for n, p in enumerate(producers)]
        for sender in senders:
            sender.start()
        peak_rss, peak_inflight = 0, 0.0
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            peak_rss = max(peak_rss, _rss_bytes(broker.proc.pid))  # type: ignore[union-attr]
            peak_inflight = max(peak_inflight, _metric(broker, "memq_broker_inflight_bytes"))
            time.sleep(0.2)
        assert any(sender.is_alive() for sender in senders), "producers were not slowed down"
        assert not any(f.done() for f in futures), "something was answered while S3 was stalled"
        assert _metric(broker, "memq_broker_backpressure_waits_total") > 0
        # Open and uploading batches stay within the cap plus one request per connection.
        assert peak_inflight <= cap + 2 * MIB, peak_inflight
        assert peak_rss - baseline_rss <= cap + 100 * MIB, (peak_rss - baseline_rss) / MIB

        proxy.flowing.set()  # S3 is back: everything flows, nothing was dropped
        for sender in senders:
            sender.join(180)
        for producer in producers:
            assert producer.flush(180) == 0
            producer.close()
        assert all(f.result(0).error() is None for f in futures)
        notifications = read_notifications(kafka_bootstrap, notify)
        assert sum(n.message_count for n in notifications) >= 1
        assert sum(n.messages_size for n in notifications) >= len(futures) * payload_size
    finally:
        proxy.flowing.set()
        broker.stop()
