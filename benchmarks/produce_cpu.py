"""CPU per record of a produce loop against the broker, as the Singer agent produces.

``python -m benchmarks.produce_cpu [--records 100000] [--rounds 3]``

Each record carries four headers and an ``on_delivery`` callback; the loop serves reports every 1000
records and on a full queue, then flushes. PSC's ``Producer`` and native confluent-kafka send the same
records with the same settings to their own topic, alternately, ``--rounds`` times; so does
``psc.BatchProducer`` where it is available (``psc-batch``: batches of 10,000 records with the same headers,
``_mid`` and ``_fid`` built per record from integers, one ``DeliveryTally`` per round). The figures are the
process CPU (every thread, librdkafka's included) and the wall time per record, loop plus flush: the
fastest and the median of the rounds.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import confluent_kafka

import psc
from benchmarks._env import BenchEnv, bench_env

PAYLOAD = b"x" * 100
HEADERS: list[tuple[str, str | bytes | None]] = [
    ("_mid", b"0123456789abcdef"),
    ("_ots", b"1764412800000"),
    ("host", b"host-01"),
    ("_fid", b"f-000042"),
]
SETTINGS = {"linger.ms": "20", "compression.type": "lz4", "acks": "all", "enable.idempotence": "true"}  # PSC's defaults


class Counter:
    def __init__(self) -> None:
        self.delivered = 0
        self.failed = 0

    def on_delivery(self, err: Any, msg: Any) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run(
    produce: Callable[..., None], poll: Callable[[float], int], flush: Callable[[float], int], topic: str, records: int
) -> tuple[float, float]:
    counter = Counter()
    cpu, wall = _cpu(), time.perf_counter()
    for i in range(records):
        while True:
            try:
                produce(topic, PAYLOAD, headers=HEADERS, on_delivery=counter.on_delivery)
                break
            except BufferError:
                poll(0.01)
        if i % 1000 == 0:
            poll(0)
    if flush(60) or counter.delivered != records:
        raise RuntimeError(f"{records - counter.delivered} records undelivered, {counter.failed} failed")
    return (_cpu() - cpu) / records * 1e6, (time.perf_counter() - wall) / records * 1e6


def _run_batches(producer: psc.BatchProducer, topic_uri: str, records: int, size: int = 10_000) -> tuple[float, float]:
    values, numbers = [PAYLOAD] * size, list(range(size))
    shared = [(name, value) for name, value in HEADERS if name in ("_ots", "host") and isinstance(value, bytes)]
    tally = psc.DeliveryTally(records)
    cpu, wall = _cpu(), time.perf_counter()
    sent = 0
    while sent < records:
        n = min(size, records - sent)
        queued, error = producer.produce_batch(
            topic_uri,
            values[:n],
            tally,
            headers=shared,
            int_headers=[("_mid", b"01234567", numbers[:n]), ("_fid", b"", numbers[:n])],
        )
        sent += queued
        if error is not None and error.code() != confluent_kafka.KafkaError._QUEUE_FULL:
            raise RuntimeError(f"batch refused: {error}")
        producer.poll(0.01 if error is not None else 0)
    if producer.flush(60) or tally.acked != records:
        raise RuntimeError(f"{records - tally.acked} records undelivered")
    return (_cpu() - cpu) / records * 1e6, (time.perf_counter() - wall) / records * 1e6


def rounds(env: BenchEnv, records: int, count: int) -> dict[str, list[tuple[float, float]]]:
    topics = [env.create_topic("produce-cpu-native"), env.create_topic("produce-cpu-psc")]
    batch_topic = env.create_topic("produce-cpu-batch")
    batch_uri = env.services.cluster_prefix + batch_topic
    native = confluent_kafka.Producer({"bootstrap.servers": env.bootstrap, **SETTINGS})
    config = {
        "psc.project": "produce-cpu",
        "psc.discovery.file": env.services.psc_discovery_file,
        "psc.config.logging.enabled": "false",
        **{f"psc.producer.{name}": value for name, value in SETTINGS.items()},
    }
    producer = psc.Producer(config)
    batches = psc.BatchProducer(config, batch_uri) if psc.BatchProducer.available() else None
    uri = env.services.cluster_prefix + topics[1]
    out: dict[str, list[tuple[float, float]]] = {
        "native": [],
        "psc": [],
        **({"psc-batch": []} if batches is not None else {}),
    }
    try:
        for _ in range(count):
            out["native"].append(_run(native.produce, native.poll, native.flush, topics[0], records))
            out["psc"].append(_run(producer.produce, producer.poll, producer.flush, uri, records))
            if batches is not None:
                out["psc-batch"].append(_run_batches(batches, batch_uri, records))
    finally:
        producer.close(10)
        if batches is not None:
            batches.close(10)
        env.delete_topics([*topics, batch_topic])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.produce_cpu", description=__doc__)
    parser.add_argument("--records", type=int, default=100_000, help="records per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per client")
    args = parser.parse_args(argv)
    with bench_env() as env:
        results = rounds(env, args.records, args.rounds)
    print("produce with 4 headers and on_delivery, us per record (fastest / median)")
    for name, runs in results.items():
        cpu, wall = [run[0] for run in runs], [run[1] for run in runs]
        print(
            f"  {name:9} cpu {min(cpu):5.2f} / {statistics.median(cpu):5.2f}"
            f"   wall {min(wall):5.2f} / {statistics.median(wall):5.2f}"
        )
    psc_cpu, native_cpu = (
        statistics.median(r[0] for r in results["psc"]),
        statistics.median(r[0] for r in results["native"]),
    )
    print(f"  psc/native cpu ratio (medians): {psc_cpu / native_cpu:.2f}")
    if "psc-batch" in results:
        batch_cpu = statistics.median(r[0] for r in results["psc-batch"])
        print(f"  psc-batch/native cpu ratio (medians): {batch_cpu / native_cpu:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
