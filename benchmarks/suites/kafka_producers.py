"""Raw confluent-kafka producer vs aiokafka producer: throughput of 100-byte messages, acks=all.

Both producers get the same batching window (linger 5 ms) and acknowledgement level; each run produces
to a fresh topic and is timed until every message is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from aiokafka import AIOKafkaProducer
from confluent_kafka import Producer

from benchmarks._env import BenchEnv
from benchmarks._harness import Scenario

DESCRIPTION = "raw confluent-kafka producer vs aiokafka producer, 100-byte messages"
MESSAGE_SIZE = 100


def produce_loop(
    produce: Callable[..., None], poll: Callable[[float], Any], topic: str, count: int, payload: bytes
) -> None:
    """Produce ``count`` records, waiting for room when the local queue is full, as a real application would."""
    for _ in range(count):
        while True:
            try:
                produce(topic, payload)
                break
            except BufferError:
                poll(0.005)


def warm_up(produce: Callable[..., None], flush: Callable[[float], int], topic: str, payload: bytes) -> None:
    """One record sent and acknowledged before the clock starts: metadata, connections and the idempotent
    producer's id are in place, so a run measures sending, not a coordinator's retry backoff (about 1 s when
    the broker answers "coordinator load in progress", which made some runs half as fast)."""
    produce(topic, payload)
    if flush(30):
        raise RuntimeError(f"{topic}: the warm-up record was not acknowledged in 30 s")


def confluent_produce(
    bootstrap: str,
    topic: str,
    count: int,
    payload: bytes,
    idempotent: bool = False,
    failure_reports: bool = False,
) -> float:
    """``failure_reports``: a delivery callback that hears only of failures, as PSC's application does."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "linger.ms": 5,
        "acks": "all",
        "enable.idempotence": idempotent,
    }
    failures: list[Any] = []
    if failure_reports:
        config.update({"on_delivery": lambda err, msg: failures.append(err), "delivery.report.only.error": True})
    producer = Producer(config)
    warm_up(producer.produce, producer.flush, topic, payload)
    started = time.perf_counter()
    produce_loop(producer.produce, producer.poll, topic, count, payload)
    remaining = producer.flush(120)
    elapsed = time.perf_counter() - started
    if remaining or failures:
        raise RuntimeError(f"confluent-kafka: {remaining} messages undelivered, {len(failures)} failed")
    return count / elapsed


async def _aiokafka_produce(bootstrap: str, topic: str, count: int, payload: bytes, idempotent: bool) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        acks="all",
        max_batch_size=1024 * 1024,
        enable_idempotence=idempotent,
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, payload)  # as warm_up(): connected and acknowledged before timing
        started = time.perf_counter()
        futures = [await producer.send(topic, payload) for _ in range(count)]
        await asyncio.gather(*futures)
        return count / (time.perf_counter() - started)
    finally:
        await producer.stop()


def aiokafka_produce(bootstrap: str, topic: str, count: int, payload: bytes, idempotent: bool = False) -> float:
    return asyncio.run(_aiokafka_produce(bootstrap, topic, count, payload, idempotent))


@contextlib.contextmanager
def scenarios(env: BenchEnv, scale: float) -> Iterator[list[Scenario]]:
    payload = b"x" * MESSAGE_SIZE
    count = max(1000, int(200_000 * scale))
    topics: list[str] = []

    def fresh(prefix: str) -> str:
        topics.append(env.create_topic(prefix))
        return topics[-1]

    try:
        yield [
            Scenario(
                name="produce-100B",
                metric="throughput",
                unit="msg/s",
                baseline="confluent-kafka",
                systems={
                    "confluent-kafka": lambda: confluent_produce(env.bootstrap, fresh("ck"), count, payload),
                    "aiokafka": lambda: aiokafka_produce(env.bootstrap, fresh("aio"), count, payload),
                },
            )
        ]
    finally:
        env.delete_topics(topics)
