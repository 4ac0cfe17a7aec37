"""MemQ vs Kafka ingest through psc.Producer: MB/s of the same payloads with the same compression, and S3 PUTs.

Systems, side by side in each scenario:

- ``kafka``: psc.Producer to a fresh 3-partition Kafka topic, acks=all (the baseline);
- ``memq-tmpfs``: psc.Producer with a ``memq`` URI into one broker process storing on tmpfs (/dev/shm);
- ``memq-s3``: the same into a broker storing in the S3 endpoint (moto).

Every system gets the same payloads (4096 distinct ones, each half random, half repeated, so compression
has work to do) and PSC's delivery reports for failures only. Producer settings, side by side:

- Kafka: zstd at librdkafka's default level (3), ``linger.ms`` 10, librdkafka's default ``batch.size``
  (1 MB per partition batch), acks=all with idempotence (PSC's defaults), up to 5 requests in flight per
  connection, and librdkafka's default buffer (100 000 records or 1 GiB);
- MemQ: zstd level 3 (the reference's), ``linger_ms`` 10, 1 MiB requests, the producer's default
  in-flight room (128 requests, 128 MiB of records; see docs/memq-writing.md for why MemQ needs more room
  than Kafka) and its default two encoder threads; each broker batch seals at 8 MiB or 250 ms (as
  WarpStream's default; the broker's own default is 2 s), is stored (file: written, fsynced, renamed; S3:
  PUT) and announced on Kafka with acks=all before its producers get OK.

A run is timed from the first produce to the acknowledgement of the last record (``flush``). Kafka's flush
sends its last batches without waiting for their linger; MemQ's flush sends its last requests, then asks the
broker to seal the open batch (a producer message of no records), and waits for its store and notification.
(Before the producer did that, the last batch waited for the broker's 250 ms batch time, about 0.3 s of a run.)
Each ingest run sends the same 150 MB (1.5 M records of 100 B, or 150 000 of 1 KiB).

``e2e-p50``/``e2e-p99``: records produced at a fixed rate (1000/s for 5 s) through psc.Producer and read by
psc.Consumer in a fresh group; latency is from just before ``produce`` to the record's arrival at the
consumer. MemQ's goal is p99 <= batch time + 1 s (here 0.25 + 1 s).

``consume-*``: records of the same payloads (300 000 of 100 B, 150 000 of 1 KiB), written once per system
(untimed), then read from the start by psc.Consumer in a fresh group with ``consume(1000, 0.05)``; the clock
starts with the call during which the group assignment arrived (so the group join is left out, and every
record's fetch and decoding is in). MemQ reads notifications from a 1-partition topic and objects with
ranged reads; Kafka reads a 3-partition topic. MemQ's goal is 0.5x Kafka or better.

``flood-s3-stalled``: S3 behind a proxy that stalls every connection; two producers (memq.Producer, no
compression, 64 KiB records) send 40 MiB, five times the broker's 8 MiB in-flight cap, for 8 s. Reported: the
broker's peak RSS growth over its idle RSS, next to the bound (cap + 100 MiB). The run fails if the producers
were not slowed down, or if any record is lost once S3 flows again.

``s3-puts`` writes to a topic whose batches seal on size (2 MiB, with a 5 s batch time that traffic never
reaches) and reports PUTs per GiB stored by the S3 broker next to the expected figure, GiB divided by the
batch size. PUTs are the write requests the broker's S3 client sent (PutObject, and the requests of a
multipart upload; retries count), read from its ``memq_broker_storage_requests_total``. ``size-sealed``
counts the objects whose batch reached the size; ``all objects`` adds each run's last batch, which the
5 s timer seals below the size once the producer stops (about one extra PUT per run).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3

import psc
from benchmarks._env import BenchEnv
from benchmarks._harness import RunFn, Scenario
from memq._producer import Producer as MemqProducer
from tests.integration.memq.brokers import BrokerProcess, S3Proxy

DESCRIPTION = "MemQ (tmpfs, S3) vs Kafka through psc: ingest and consume MB/s, e2e latency, S3 PUTs per GiB"

SIZES = {"100B": 100, "1KiB": 1024}
COUNTS = {"100B": 300_000, "1KiB": 150_000}  # per run at scale 1.0
INGEST_COUNTS = {"100B": 1_500_000, "1KiB": 150_000}  # 150 MB per ingest run of either size, at scale 1.0
BATCH_MAX_BYTES = 8 * 1024 * 1024
BATCH_MAX_MS = 250
PUTS_TOPIC = "bench-puts"
PUTS_BATCH_BYTES = 2 * 1024 * 1024
PAYLOADS = 4096
LATENCY_TOPIC = "bench-latency"
CONSUME_TOPIC = "bench-consume"
LATENCY_RATE = 1000  # records per second
LATENCY_SECONDS = 5.0
LINGER_MS = 10
DEADLINE_S = 180.0
MIB = 1024 * 1024
FLOOD_CAP = 8 * MIB
FLOOD_BYTES = 40 * MIB
FLOOD_RECORD = 64 * 1024
FLOOD_SECONDS = 8.0
BASELINE = "kafka"
MEMQ_TOPIC = "bench"


def payloads(size: int) -> list[bytes]:
    """Distinct payloads, each half random bytes (as hex) and half repeated: compressible about 2:1."""
    return [(os.urandom(size // 4).hex().encode() + b"m" * size)[:size] for _ in range(PAYLOADS)]


def produce_all(producer: psc.Producer, uri: str, count: int, data: list[bytes]) -> None:
    """Produce ``count`` records cycling through ``data``, polling for room when the producer is full."""
    produce, poll = producer.produce, producer.poll
    for i in range(count):
        while True:
            try:
                produce(uri, data[i % PAYLOADS])
                break
            except BufferError:
                poll(0.005)


class _Stack:
    """Two brokers (tmpfs and S3), a discovery file naming them and Kafka, and the topics runs write to."""

    def __init__(self, env: BenchEnv) -> None:
        self.env = env
        self.workdir = Path(tempfile.mkdtemp(prefix="memq-bench-"))
        shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else self.workdir
        self.tmpfs = shm / f"memq-bench-{uuid.uuid4().hex[:8]}"
        self.bucket = f"memq-bench-{uuid.uuid4().hex[:8]}"
        self.s3 = boto3.client(
            "s3",
            endpoint_url=env.services.s3_endpoint_url,
            aws_access_key_id="memq",
            aws_secret_access_key="memq",
            region_name="us-east-1",
        )
        self.s3.create_bucket(Bucket=self.bucket)
        self.topics: list[str] = []
        self.brokers: dict[str, BrokerProcess] = {}
        for name, storage in (("tmpfs", f"file://{self.tmpfs}"), ("s3", f"s3://{self.bucket}/objects")):
            notify = env.create_topic(f"memq-notify-{name}", 1)
            consume_notify = env.create_topic(f"memq-notify-consume-{name}", 1)  # its own: read from the start
            self.topics += [notify, consume_notify]
            topic = {
                "name": MEMQ_TOPIC,
                "notification_topic": notify,
                "batch_max_bytes": BATCH_MAX_BYTES,
                "batch_max_ms": BATCH_MAX_MS,
            }
            puts = {
                "name": PUTS_TOPIC,
                "notification_topic": notify,
                "batch_max_bytes": PUTS_BATCH_BYTES,
                "batch_max_ms": 5000,
            }
            latency = {**topic, "name": LATENCY_TOPIC}
            consume = {**topic, "name": CONSUME_TOPIC, "notification_topic": consume_notify}
            config = {
                "storage": storage,
                "s3_endpoint_url": env.services.s3_endpoint_url,
                "notification_bootstrap": env.bootstrap,
                "topics": [topic, puts, latency, consume],
                "log_level": "WARNING",
            }
            self.brokers[name] = BrokerProcess(config, self.workdir).start()
        entries = json.loads(Path(env.services.psc_discovery_file).read_text())
        for name, broker in self.brokers.items():
            entries[self.cluster(name)] = {"connect": broker.address}
        self.discovery = self.workdir / "discovery.json"
        self.discovery.write_text(json.dumps(entries))

    @staticmethod
    def cluster(name: str) -> str:
        return f"plaintext:/rn:memq:local:local_dev::bench{name}:"

    def config(self) -> dict[str, str]:
        return {
            "psc.project": "memq-bench",
            "psc.discovery.file": str(self.discovery),
            "psc.producer.acks": "all",
            "psc.producer.batch.duration.ms": str(LINGER_MS),
            "psc.producer.compression.type": "zstd",
            "psc.producer.delivery.report.only.error": "true",
        }

    def metrics(self, name: str) -> dict[tuple[Any, ...], float]:
        """The broker's samples, keyed by (metric name, (label, value), ...) with labels sorted by name."""
        broker = self.brokers[name]
        text = urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics", timeout=10).read().decode()
        samples: dict[tuple[Any, ...], float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                metric, _, labels = series.partition("{")
                pairs = sorted(tuple(p.split("=", 1)) for p in labels.rstrip("}").split(",") if p)
                samples[(metric, *((k, v.strip('"')) for k, v in pairs))] = float(value)
        return samples

    def close(self) -> None:
        for broker in self.brokers.values():
            broker.stop()
        self.env.delete_topics(self.topics)
        shutil.rmtree(self.tmpfs, ignore_errors=True)
        shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(Exception):
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
            for page in pages:
                for item in page.get("Contents", []):
                    self.s3.delete_object(Bucket=self.bucket, Key=item["Key"])
            self.s3.delete_bucket(Bucket=self.bucket)


def _ingest(stack: _Stack, uri: str, count: int, data: list[bytes]) -> float:
    """MB/s of ``count`` records of ``data`` to ``uri``, from the first produce to the last acknowledgement."""
    producer = psc.Producer(stack.config())
    try:
        producer.list_topics(uri, timeout=10)  # resolve and connect before timing
        started = time.perf_counter()
        produce_all(producer, uri, count, data)
        remaining = producer.flush(DEADLINE_S)
        elapsed = time.perf_counter() - started
    finally:
        producer.close(0)
    if remaining:
        raise RuntimeError(f"{uri}: {remaining} records unacknowledged")
    return count * len(data[0]) / elapsed / 1e6


def _kafka(stack: _Stack, count: int, data: list[bytes]) -> float:
    topic = stack.env.create_topic("memq-vs-kafka", 3)
    try:
        return _ingest(stack, stack.env.services.cluster_prefix + topic, count, data)
    finally:
        stack.env.delete_topics([topic])


def _memq(stack: _Stack, name: str, count: int, data: list[bytes], topic: str = MEMQ_TOPIC) -> float:
    rate = _ingest(stack, stack.cluster(name) + topic, count, data)
    if name == "tmpfs":  # keep tmpfs (memory) from filling up over the runs: objects are <hash>/<topic>/<name>
        for child in stack.tmpfs.glob(f"*/{topic}"):
            shutil.rmtree(child, ignore_errors=True)
    return rate


_WRITE_REQUESTS = ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")


def _puts_per_gib(stack: _Stack, count: int, data: list[bytes]) -> dict[str, float]:
    """PUT requests per GiB stored by the S3 broker for one ingest run, over all objects and over size-sealed ones.

    PUTs are the write requests the broker's S3 client sent (retries included); bytes are those of the stored
    objects (index included), split by what sealed their batch. The run's last batch is sealed by time, not
    size, and smaller than the batch size, so it raises the all-objects figure by up to one PUT per run.
    """

    def snapshot() -> tuple[float, float, float, float]:
        samples = stack.metrics("s3")
        requests = "memq_broker_storage_requests_total"
        puts = sum(samples.get((requests, ("operation", op)), 0.0) for op in _WRITE_REQUESTS)
        sealed = {
            reason: (
                samples.get(("memq_broker_batches_total", ("reason", reason), ("topic", PUTS_TOPIC)), 0.0),
                samples.get(("memq_broker_stored_bytes_total", ("reason", reason), ("topic", PUTS_TOPIC)), 0.0),
            )
            for reason in ("size", "count", "time", "flush", "shutdown")
        }
        other = sum(n for reason, (n, _) in sealed.items() if reason != "size")
        return puts, other, sealed["size"][1], sum(b for _, b in sealed.values())

    before = snapshot()
    _memq(stack, "s3", count, data, PUTS_TOPIC)
    puts, other, size_bytes, all_bytes = (b - a for a, b in zip(before, snapshot(), strict=True))
    return {"all objects": puts / (all_bytes / 2**30), "size-sealed": (puts - other) / (size_bytes / 2**30)}


def _latencies(stack: _Stack, uri: str) -> list[float]:
    """Produce-to-consume latencies (ms) of records sent at LATENCY_RATE for LATENCY_SECONDS to ``uri``."""
    run = uuid.uuid4().hex[:8].encode()
    count = int(LATENCY_RATE * LATENCY_SECONDS)
    group = {
        "psc.consumer.group.id": f"memq-bench-{run.decode()}",
        "psc.consumer.offset.auto.reset": "latest",
    }
    consumer = psc.Consumer({**stack.config(), **group})
    consumer.subscribe([uri])
    ready = threading.Event()
    found: list[float] = []

    def consume() -> None:
        deadline = time.monotonic() + LATENCY_SECONDS + 90
        while len(found) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if not ready.is_set() and consumer.assignment():
                ready.set()
            if message is None:
                continue
            value = message.value() or b""
            if value.startswith(run):
                found.append((time.time() - float(value[9:27])) * 1000)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    if not ready.wait(60):
        raise RuntimeError(f"{uri}: the consumer got no assignment")
    time.sleep(1.0)  # let the group's first fetch settle before the clock matters
    producer = psc.Producer(stack.config())
    try:
        started = time.monotonic()
        for i in range(count):
            pause = started + i / LATENCY_RATE - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            producer.produce(uri, run + b" %18.6f " % time.time() + b"x" * 100)
            producer.poll(0)
        producer.flush(60)
    finally:
        producer.close(0)
    reader.join(LATENCY_SECONDS + 90)
    consumer.close()
    if len(found) < count:
        raise RuntimeError(f"{uri}: read {len(found)} of {count} records")
    return found


def _consume_rate(stack: _Stack, uri: str, count: int, size: int) -> float:
    """MB/s of reading ``count`` records of ``size`` bytes from the start of ``uri`` in a fresh group."""
    group = f"memq-bench-{uuid.uuid4().hex[:8]}"
    consumer = psc.Consumer(
        {**stack.config(), "psc.consumer.group.id": group, "psc.consumer.offset.auto.reset": "earliest"}
    )
    try:
        consumer.subscribe([uri])
        deadline = time.monotonic() + DEADLINE_S
        read, started = 0, 0.0
        while read < count and time.monotonic() < deadline:
            began = time.perf_counter()
            batch = consumer.consume(1000, 0.05)
            read += len(batch)
            if not started and (batch or consumer.assignment()):
                started = began  # the group is joined: the clock starts with the call that saw it
        elapsed = time.perf_counter() - started
    finally:
        consumer.close()
    if read < count:
        raise RuntimeError(f"{uri}: read {read} of {count} records")
    return count * size / elapsed / 1e6


def _consume_scenario(stack: _Stack, size: str, count: int) -> Scenario:
    data = payloads(SIZES[size])
    written: dict[str, str] = {}  # system -> topic URI holding the records, written at the system's first run

    def kafka() -> str:
        topic = stack.env.create_topic("memq-consume", 3)
        stack.topics.append(topic)
        return stack.env.services.cluster_prefix + topic

    def run(system: str) -> float:
        if system not in written:
            uri = kafka() if system == "kafka" else stack.cluster(system.removeprefix("memq-")) + CONSUME_TOPIC
            _ingest(stack, uri, count, data)
            written[system] = uri
        return _consume_rate(stack, written[system], count, SIZES[size])

    systems: dict[str, RunFn] = {name: lambda name=name: run(name) for name in ("kafka", "memq-tmpfs", "memq-s3")}  # type: ignore[misc]
    return Scenario(f"consume-{size}", "throughput", "MB/s", BASELINE, systems)


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _flood_rss_growth(stack: _Stack) -> float:
    """MB of broker RSS growth while producers flood a topic whose S3 uploads stall (see the module doc)."""
    proxy = S3Proxy(stack.env.services.s3_endpoint_url)
    notify = stack.env.create_topic("memq-notify-flood", 1)
    stack.topics.append(notify)
    topic = {"name": "flood", "notification_topic": notify, "batch_max_bytes": MIB, "batch_max_ms": 500}
    config = {
        "storage": f"s3://{stack.bucket}/flood?timeout_s=120",
        "s3_endpoint_url": proxy.url,
        "notification_bootstrap": stack.env.bootstrap,
        "topics": [topic],
        "max_inflight_bytes": FLOOD_CAP,
        "upload_attempt_timeout_s": 60.0,
        "producer_request_timeout_s": 240.0,
        "log_level": "WARNING",
    }
    broker = BrokerProcess(config, stack.workdir).start()
    producers = [
        MemqProducer(
            brokers=[broker.address],
            compression="none",
            linger_ms=5,
            max_inflight_bytes=16 * MIB,
            max_block_ms=120_000,
            request_timeout_ms=240_000,
        )
        for _ in range(2)
    ]
    failed: list[Any] = []
    try:
        assert broker.proc is not None
        idle = _rss_bytes(broker.proc.pid)
        proxy.flowing.clear()

        def report(error: Any, _record: Any) -> None:
            if error is not None:
                failed.append(error)

        def send(producer: MemqProducer) -> None:
            for _ in range(FLOOD_BYTES // FLOOD_RECORD // len(producers)):
                producer.produce("flood", os.urandom(FLOOD_RECORD), on_delivery=report)

        senders = [threading.Thread(target=send, args=(p,), daemon=True) for p in producers]
        for sender in senders:
            sender.start()
        peak, deadline = idle, time.monotonic() + FLOOD_SECONDS
        while time.monotonic() < deadline:
            peak = max(peak, _rss_bytes(broker.proc.pid))
            time.sleep(0.2)
        if not any(sender.is_alive() for sender in senders):
            raise RuntimeError("the producers were not slowed down while S3 stalled")
        proxy.flowing.set()
        for sender in senders:
            sender.join(DEADLINE_S)
        if any(producer.flush(DEADLINE_S) for producer in producers) or failed:
            raise RuntimeError(f"records were lost after S3 came back: {failed[:3]}")
        return (peak - idle) / 1e6
    finally:
        proxy.flowing.set()
        for producer in producers:
            producer.close(0)
        broker.stop()
        proxy.close()


def _flood_scenario(stack: _Stack) -> Scenario:
    systems: dict[str, RunFn] = {
        "bound": lambda: (FLOOD_CAP + 100 * MIB) / 1e6,
        "memq-s3": lambda: _flood_rss_growth(stack),
    }
    return Scenario("flood-s3-stalled", "broker RSS growth", "MB", "bound", systems, higher_is_better=False)


def _percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100)[int(fraction * 100) - 1]


def _latency_scenarios(stack: _Stack) -> list[Scenario]:
    def kafka() -> list[float]:
        topic = stack.env.create_topic("memq-latency", 3)
        try:
            return _latencies(stack, stack.env.services.cluster_prefix + topic)
        finally:
            stack.env.delete_topics([topic])

    def memq(name: str) -> list[float]:
        return _latencies(stack, stack.cluster(name) + LATENCY_TOPIC)

    scenarios = []
    for label, fraction in (("p50", 0.5), ("p99", 0.99)):
        systems: dict[str, RunFn] = {
            "kafka": lambda f=fraction: _percentile(kafka(), f),  # type: ignore[misc]
            "memq-tmpfs": lambda f=fraction: _percentile(memq("tmpfs"), f),  # type: ignore[misc]
            "memq-s3": lambda f=fraction: _percentile(memq("s3"), f),  # type: ignore[misc]
        }
        scenarios.append(Scenario(f"e2e-{label}", "latency", "ms", BASELINE, systems, higher_is_better=False))
    return scenarios


def _ingest_scenario(stack: _Stack, size: str, count: int) -> Scenario:
    data = payloads(SIZES[size])
    systems: dict[str, RunFn] = {
        "kafka": lambda: _kafka(stack, count, data),
        "memq-tmpfs": lambda: _memq(stack, "tmpfs", count, data),
        "memq-s3": lambda: _memq(stack, "s3", count, data),
    }
    return Scenario(f"ingest-{size}", "throughput", "MB/s", BASELINE, systems)


def _puts_scenario(stack: _Stack, count: int) -> Scenario:
    data = payloads(SIZES["1KiB"])
    pending: dict[str, float] = {}  # one run measures both figures; the other system's call takes its figure

    def run(figure: str) -> float:
        if figure not in pending:
            pending.clear()
            pending.update(_puts_per_gib(stack, count, data))
        return pending.pop(figure)

    systems: dict[str, RunFn] = {
        "expected": lambda: 2**30 / PUTS_BATCH_BYTES,
        "memq-s3 size-sealed": lambda: run("size-sealed"),
        "memq-s3 all objects": lambda: run("all objects"),
    }
    return Scenario("s3-puts-1KiB", "PUTs per GiB stored", "PUT/GiB", "expected", systems, higher_is_better=False)


@contextlib.contextmanager
def scenarios(env: BenchEnv, scale: float) -> Iterator[list[Scenario]]:
    stack = _Stack(env)

    def scaled(base: int) -> int:
        return max(1000, int(base * scale))

    try:
        yield [
            *(_ingest_scenario(stack, size, scaled(INGEST_COUNTS[size])) for size in SIZES),
            *(_consume_scenario(stack, size, scaled(COUNTS[size])) for size in SIZES),
            _puts_scenario(stack, scaled(COUNTS["1KiB"]) * 2),
            _flood_scenario(stack),
            *_latency_scenarios(stack),
        ]
    finally:
        stack.close()
