"""The benchmark suites, by name. Each suite module exposes ``DESCRIPTION`` and ``scenarios(env, scale)``."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

from benchmarks._env import BenchEnv, bench_env
from benchmarks._harness import Scenario

SUITES = {
    "kafka-producers": "raw confluent-kafka producer vs aiokafka producer, 100-byte messages",
    "psc-throughput": "PSC vs confluent-kafka vs aiokafka, produce and consume, 100 B and 1 KiB messages",
    "memq": "MemQ (tmpfs, S3) vs Kafka ingest through psc.Producer, MB/s, and S3 PUTs per GiB",
    "singer": "Singer vs kcat -P -l: a pre-written file to Kafka, 100 B and 1 KiB lines",
    "pacer": "Pacer's buffered dequeue vs PinLater-style UPDATE…LIMIT: latency, throughput, SQL per job",
    "connectors": "connectors pass-through jobs (exactly-once, at-least-once) vs raw confluent-kafka loops",
}

MODULES = {
    "kafka-producers": "benchmarks.suites.kafka_producers",
    "psc-throughput": "benchmarks.suites.psc_throughput",
    "memq": "benchmarks.suites.memq",
    "singer": "benchmarks.suites.singer",
    "pacer": "benchmarks.suites.pacer",
    "connectors": "benchmarks.suites.connectors",
}


@contextlib.contextmanager
def load_suite(name: str, scale: float) -> Iterator[list[Scenario]]:
    module = importlib.import_module(MODULES[name])
    with bench_env() as env, module.scenarios(env, scale) as scenarios:
        yield list(scenarios)


__all__ = ["SUITES", "BenchEnv", "load_suite"]
