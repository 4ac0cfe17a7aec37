"""PSC's producer against raw confluent-kafka, with the settings that move the gap.

``python -m benchmarks.psc_produce_variants [--records N --rounds R --size B --big-queue]``. The
``psc-throughput`` suite runs PSC with its platform defaults. This harness runs, side by side on fresh
topics and in balanced orders (each variant follows each other one equally often), raw confluent-kafka and
PSC with those defaults, PSC without latency sampling (``psc.metrics.latency.sample.rate=0``), and, with
``--big-queue``, both with a local queue large enough never to fill (2,000,000 records), so ``BufferError``
waits drop out. Settings otherwise as in the suite: acks=all, idempotence, linger 5 ms, no compression,
3 partitions.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer

import psc
from benchmarks._env import BenchEnv, bench_env
from benchmarks._harness import balanced_orders
from benchmarks.suites.kafka_producers import produce_loop, warm_up
from benchmarks.suites.psc_throughput import LINGER_MS, psc_config

BIG_QUEUE = 2_000_000


def _timed(
    produce: Callable[..., None],
    poll: Callable[[float], Any],
    flush: Callable[[float], int],
    topic: str,
    count: int,
    payload: bytes,
) -> float:
    warm_up(produce, flush, topic, payload)
    started = time.perf_counter()
    produce_loop(produce, poll, topic, count, payload)
    if flush(120):
        raise RuntimeError(f"{topic}: records left undelivered")
    return count / (time.perf_counter() - started)


def raw(env: BenchEnv, topic: str, count: int, payload: bytes, big_queue: bool) -> float:
    config: dict[str, Any] = {
        "bootstrap.servers": env.bootstrap,
        "linger.ms": LINGER_MS,
        "acks": "all",
        "enable.idempotence": True,
    }
    if big_queue:
        config.update({"queue.buffering.max.messages": BIG_QUEUE, "queue.buffering.max.kbytes": 4_000_000})
    producer = Producer(config)
    return _timed(producer.produce, producer.poll, producer.flush, topic, count, payload)


def with_psc(env: BenchEnv, topic: str, count: int, payload: bytes, big_queue: bool, **extra: str) -> float:
    if big_queue:
        extra.update({"psc.producer.buffer.max.messages": str(BIG_QUEUE), "psc.producer.buffer.max.kbytes": "4000000"})
    producer = psc.Producer(psc_config(env, **extra))
    try:
        uri = env.services.cluster_prefix + topic
        return _timed(producer.produce, producer.poll, producer.flush, uri, count, payload)
    finally:
        producer.close(0)


VARIANTS: dict[str, Callable[..., float]] = {
    "confluent-kafka": raw,
    "psc": with_psc,
    "psc-no-sampling": lambda env, topic, count, payload, big_queue: with_psc(
        env, topic, count, payload, big_queue, **{"psc.metrics.latency.sample.rate": "0"}
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=800_000, help="records per run")
    parser.add_argument("--rounds", type=int, default=5, help="runs per variant")
    parser.add_argument("--size", type=int, default=100, help="value size in bytes")
    parser.add_argument("--big-queue", action="store_true", help="a local queue that never fills")
    args = parser.parse_args()
    runs: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with bench_env() as env:
        names, orders = list(VARIANTS), balanced_orders(len(VARIANTS))
        for round_ in range(args.rounds):
            for name in (names[i] for i in orders[round_ % len(orders)]):
                topic = env.create_topic("psc-variants")
                try:
                    runs[name].append(VARIANTS[name](env, topic, args.records, b"x" * args.size, args.big_queue))
                finally:
                    env.delete_topics([topic])
    base = statistics.median(runs["confluent-kafka"])
    print(f"{args.records:,} records of {args.size} B per run, {args.rounds} runs, big queue: {args.big_queue}")
    for name, values in runs.items():
        median = statistics.median(values)
        print(
            f"  {name:16s} median {median:>12,.0f} msg/s  ratio {median / base:.3f}  runs {[round(v) for v in values]}"
        )


if __name__ == "__main__":
    main()
