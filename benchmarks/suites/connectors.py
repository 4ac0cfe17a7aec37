"""Connectors pass-through jobs (identity map) against raw confluent-kafka consume→produce loops.

Each run copies the same pre-filled 3-partition topic (100-byte records) to a fresh output topic, from the
earliest offset to the end offsets seen at the start, and is timed from the start of the run (clients
created, transactions initialised) until the last record is committed:

- ``eos-pass-through``: the connectors job with an exactly-once Kafka sink, against a raw loop with a
  transactional producer that commits its consumer offsets in the transaction. Both commit every
  ``COMMIT_INTERVAL_S``; the job also writes a checkpoint file (fsync) per commit. Goal: >= 0.7x.
- ``alo-pass-through``: at-least-once sink against a raw loop that flushes and commits offsets at the
  same interval. Goal: >= 0.9x.
- the same two jobs on Quix Streams (``QUIX_VERSION`` from PyPI, same commit interval, identity map),
  run by ``_quix_pass_through.py`` in a virtualenv of its own under ``~/.cache/kstream-toolkit``: Quix
  Streams pins confluent-kafka below the version this project uses. Goal: connectors >= 1.5x Quix.
- ``checkpoint-p50``/``checkpoint-p99``: how long the loop stops for a checkpoint (flush, checkpoint
  file, commit), in ms, exactly-once against at-least-once, checkpointing every ``CHECKPOINT_COST_INTERVAL_S``
  while the pass-through runs. Records wait that long on top of their usual latency.

Both read with ``consume(500)`` and read_committed. The ratio column is the job over the raw loop.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from benchmarks._env import BenchEnv
from benchmarks._harness import RunFn, Scenario
from connectors import Job, KafkaSink, KafkaSource
from connectors.runtime.metrics import JobMetrics
from connectors.runtime.runner import Runner

DESCRIPTION = "connectors pass-through jobs (exactly-once, at-least-once) vs raw confluent-kafka loops"
PARTITIONS = 3
COMMIT_INTERVAL_S = 1.0
CHECKPOINT_COST_INTERVAL_S = 0.1
BATCH = 500
QUIX_VERSION = "3.28.1"
QUIX_JOB = Path(__file__).resolve().parents[1] / "_quix_pass_through.py"


def quix_python() -> Path:
    """The interpreter of a virtualenv holding Quix Streams, made on first use."""
    home = Path.home() / ".cache" / "kstream-toolkit" / f"quixstreams-{QUIX_VERSION}"
    python = home / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"quixstreams=={QUIX_VERSION}"], check=True)
    return python


def quix_run(bootstrap: str, source: str, out: str, count: int, exactly_once: bool) -> float:
    guarantee = "exactly-once" if exactly_once else "at-least-once"
    done = subprocess.run(
        [str(quix_python()), str(QUIX_JOB), bootstrap, source, out, str(count), guarantee, str(COMMIT_INTERVAL_S)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the Quix Streams job failed:\n{done.stderr[-3000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["rate"])


def fill(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    payload = b"x" * 100
    for i in range(count):
        while True:
            try:
                producer.produce(topic, payload, str(i % 1000).encode())
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush()


def raw_loop(bootstrap: str, source: str, out: str, count: int, exactly_once: bool) -> float:
    started = time.perf_counter()
    group = f"bench-raw-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
         "isolation.level": "read_committed", "fetch.queue.backoff.ms": 50}
    )  # fmt: skip
    consumer.assign([TopicPartition(source, p, 0) for p in range(PARTITIONS)])
    config = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"}
    if exactly_once:
        config["transactional.id"] = group
    producer = Producer(config)
    if exactly_once:
        producer.init_transactions(30)
        producer.begin_transaction()
    positions: dict[int, int] = {}
    done, due = 0, time.monotonic() + COMMIT_INTERVAL_S

    def commit() -> None:
        offsets = [TopicPartition(source, p, o) for p, o in positions.items()]
        if exactly_once:
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
            producer.begin_transaction()
        else:
            producer.flush(30)
            if offsets:
                consumer.commit(offsets=offsets, asynchronous=True)

    while done < count:
        for msg in consumer.consume(BATCH, 0.1):
            if msg.error() is not None:
                raise RuntimeError(str(msg.error()))
            while True:
                try:
                    producer.produce(out, msg.value(), msg.key())
                    break
                except BufferError:
                    producer.poll(0.05)
            positions[msg.partition() or 0] = (msg.offset() or 0) + 1
            done += 1
        if time.monotonic() >= due:
            commit()
            due = time.monotonic() + COMMIT_INTERVAL_S
    commit()
    elapsed = time.perf_counter() - started
    if exactly_once:
        producer.abort_transaction(10)
    consumer.close()
    return count / elapsed


class TimedMetrics(JobMetrics):
    """Keeps every checkpoint's duration, for percentiles finer than the histogram's buckets, and when the
    last one completed: the job's final checkpoint commits its last record, where the raw loop's clock stops
    too (neither counts closing its clients)."""

    def __init__(self, job: str) -> None:
        super().__init__(job, CollectorRegistry())
        self.durations: list[float] = []
        self.last_done = 0.0

    def checkpoint_done(self, duration_s: float) -> None:
        super().checkpoint_done(duration_s)
        self.durations.append(duration_s)
        self.last_done = time.perf_counter()


def checkpoint_cost(bootstrap: str, source: str, out: str, exactly_once: bool, quantile: float) -> float:
    metrics = TimedMetrics(f"bench-{uuid.uuid4().hex[:8]}")
    job_run(bootstrap, source, out, 0, exactly_once, CHECKPOINT_COST_INTERVAL_S, metrics)
    durations = sorted(metrics.durations)
    return 1000 * durations[min(len(durations) - 1, int(quantile * len(durations)))]


def job_run(
    bootstrap: str,
    source: str,
    out: str,
    count: int,
    exactly_once: bool,
    interval_s: float = COMMIT_INTERVAL_S,
    metrics: TimedMetrics | None = None,
) -> float:
    servers = {"bootstrap.servers": bootstrap, "fetch.queue.backoff.ms": 50}
    metrics = metrics or TimedMetrics(f"bench-{uuid.uuid4().hex[:8]}")
    with tempfile.TemporaryDirectory() as checkpoints:
        job = Job(metrics.job, checkpoints=f"file:{checkpoints}", checkpoint_interval_s=interval_s)
        job.source("in", KafkaSource([source], stop="latest", config=servers)).sink(
            "out", KafkaSink(out, guarantee="exactly_once" if exactly_once else "at_least_once",
                             config={"bootstrap.servers": bootstrap})
        )  # fmt: skip
        started = time.perf_counter()
        Runner(job, metrics=metrics).run()
        return count / (metrics.last_done - started)


@contextlib.contextmanager
def scenarios(env: BenchEnv, scale: float) -> Iterator[list[Scenario]]:
    # 1.5 M records: about 1.5 s per run on two cores, so each run's fixed start (clients, group join,
    # transactions) and end (final checkpoint or commit) weigh a few percent; at 300 k they were a fifth.
    count = max(10_000, int(1_500_000 * scale))
    source = env.create_topic("conn-in", PARTITIONS)
    topics = [source]
    fill(env.bootstrap, source, count)

    def fresh() -> str:
        topics.append(env.create_topic("conn-out", PARTITIONS))
        return topics[-1]

    def systems(eos: bool) -> dict[str, RunFn]:
        return {
            "confluent-kafka loop": lambda: raw_loop(env.bootstrap, source, fresh(), count, eos),
            "connectors job": lambda: job_run(env.bootstrap, source, fresh(), count, eos),
            f"quixstreams {QUIX_VERSION}": lambda: quix_run(env.bootstrap, source, fresh(), count, eos),
        }

    def costs(quantile: float) -> dict[str, RunFn]:
        return {
            "connectors at-least-once": lambda: checkpoint_cost(env.bootstrap, source, fresh(), False, quantile),
            "connectors exactly-once": lambda: checkpoint_cost(env.bootstrap, source, fresh(), True, quantile),
        }

    try:
        yield [
            Scenario(
                name=f"{mode}-pass-through",
                metric="throughput",
                unit="msg/s",
                baseline="confluent-kafka loop",
                systems=systems(eos),
            )
            for mode, eos in (("eos", True), ("alo", False))
        ] + [
            Scenario(
                name=f"checkpoint-p{round(q * 100)}",
                metric="checkpoint duration",
                unit="ms",
                baseline="connectors at-least-once",
                higher_is_better=False,
                systems=costs(q),
            )
            for q in (0.5, 0.99)
        ]
    finally:
        env.delete_topics(topics)
