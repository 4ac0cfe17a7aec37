"""PSC vs raw confluent-kafka vs aiokafka: produce and consume throughput, 100-byte and 1 KiB messages.

The product's claim: PSC keeps at least 0.9 of raw confluent-kafka's throughput in every scenario and at
least 3x aiokafka's. All three run side by side against the same broker with the same settings:

- producers: acks=all, linger 5 ms, no compression, idempotence on (PSC's platform default), each run
  to a fresh 3-partition topic, timed from the first send until every record is acknowledged (after one
  warm-up record, sent and acknowledged untimed, so the idempotent producer id is in place); a full
  local queue is drained by polling, as an application would. aiokafka gets a 1 MiB batch limit,
  librdkafka's default batch size.
- consumers: a fresh group subscribes to a topic pre-filled once per message size and reads from the
  earliest offset with auto-commit off; each returned record's value is read. confluent-kafka gets PSC's
  platform ``fetch.queue.backoff.ms`` (50 ms): with librdkafka's 1 s default a consumer that drains its
  prefetch queue early idles until the second is over, so a short run measures that backoff's phase.
  In ``consume-*`` confluent-kafka and PSC call ``poll()`` once per record, as a typical application
  does; in ``consume-batch-*`` they call ``consume(500)``. aiokafka uses ``getmany()`` in both, its
  fastest way to read. The clock starts at the first record (group join and first fetch are not
  throughput) and stops at the N-th.

Run it with the stack's data on tmpfs (see the README): on a disk, 1 KiB produce measures write-back.
Each repeat runs the systems in a balanced order (``balanced_orders`` in the harness): a run leaves the
broker busy with its data and garbage, and a plain rotation had raw confluent-kafka always follow aiokafka's
slow run and PSC a fast one.

PSC runs with its platform defaults except those equalized settings. The raw producer sends without a
delivery callback, so the application learns of no delivery; PSC's records are sent without one too, and PSC
still hears of, and remediates, every failure: a librdkafka plugin keeps the failed deliveries
(``psc/_failure_trap.c``), so a success costs no Python call. Without it, hearing of failures has a price:
confluent-kafka runs its delivery trampoline for every record once a default callback is set, and drops
successes there. The ``confluent-kafka+failure-reports`` row is raw confluent-kafka paying it (a callback
with ``delivery.report.only.error``), what an application of its own would pay to hear of failures. The
ratio column is each system over raw confluent-kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from aiokafka import AIOKafkaConsumer
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

import psc
from benchmarks._env import BenchEnv
from benchmarks._harness import RunFn, Scenario
from benchmarks.suites.kafka_producers import aiokafka_produce, confluent_produce, produce_loop, warm_up

DESCRIPTION = "PSC vs confluent-kafka vs aiokafka, produce and consume, 100 B and 1 KiB messages"

SIZES = {"100B": 100, "1KiB": 1024}
# Messages per run at scale 1.0: a full run (4 scenarios x 3 systems x 3 repeats) fits in ~4 minutes
# on 2 cores, aiokafka being the slowest by far.
PRODUCE_COUNTS = {"100B": 400_000, "1KiB": 200_000}
CONSUME_COUNTS = {"100B": 600_000, "1KiB": 300_000}
PARTITIONS = 3
LINGER_MS = 5
FETCH_QUEUE_BACKOFF_MS = 50  # PSC's platform default, given to raw confluent-kafka too
POLL_S = 1.0
BATCH = 500  # records per consume() call in the batch scenarios
DEADLINE_S = 120.0
BASELINE = "confluent-kafka"


# --- producers ---------------------------------------------------------------------------------------


def psc_config(env: BenchEnv, **extra: str) -> dict[str, str]:
    """PSC platform defaults plus the settings equalized across systems."""
    return {
        "psc.project": "psc-throughput-bench",
        "psc.discovery.file": env.services.psc_discovery_file,
        "psc.producer.acks": "all",
        "psc.producer.batch.duration.ms": str(LINGER_MS),
        "psc.producer.compression.type": "none",
        **extra,
    }


def psc_produce(env: BenchEnv, topic: str, count: int, payload: bytes) -> float:
    uri = env.services.cluster_prefix + topic
    producer = psc.Producer(psc_config(env))
    try:
        warm_up(producer.produce, producer.flush, uri, payload)
        started = time.perf_counter()
        produce_loop(producer.produce, producer.poll, uri, count, payload)
        remaining = producer.flush(DEADLINE_S)
        elapsed = time.perf_counter() - started
    finally:
        producer.close(0)
    if remaining:
        raise RuntimeError(f"psc: {remaining} messages undelivered")
    return count / elapsed


# --- consumers ---------------------------------------------------------------------------------------


class _Clock:
    """Throughput from the first record on: ``start`` at the first record, ``rate`` at the last."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.started = 0.0
        self.uncounted = 0  # records returned with the first one, before the clock ran
        self.deadline = time.monotonic() + DEADLINE_S

    def start(self, records: int) -> None:
        self.started = time.perf_counter()
        self.uncounted = records

    def check(self, read: int, system: str) -> None:
        if time.monotonic() > self.deadline:
            raise RuntimeError(f"{system}: read {read} of {self.count} records in {DEADLINE_S:.0f} s")

    def rate(self) -> float:
        return (self.count - self.uncounted) / (time.perf_counter() - self.started)


def confluent_consume(bootstrap: str, topic: str, count: int, group: str, batch: bool = False) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
        }
    )
    consumer.subscribe([topic])
    try:  # confluent-kafka returns errors as records: each record is checked
        read_batch = (lambda: consumer.consume(BATCH, POLL_S)) if batch else None
        return _read(count, "confluent-kafka", consumer.poll, read_batch, check_errors=True)
    finally:
        consumer.close()


def psc_consume(env: BenchEnv, topic: str, count: int, group: str, batch: bool = False) -> float:
    config = {key: value for key, value in psc_config(env).items() if not key.startswith("psc.producer.")}
    config.update(
        {
            "psc.consumer.group.id": group,
            "psc.consumer.offset.auto.reset": "earliest",
            "psc.consumer.commit.auto.enabled": "false",
        }
    )
    consumer = psc.Consumer(config)
    consumer.subscribe([env.services.cluster_prefix + topic])
    try:  # PSC returns errors as records, as confluent-kafka does: each record is checked
        read_batch = (lambda: consumer.consume(BATCH, POLL_S)) if batch else None
        return _read(count, "psc", consumer.poll, read_batch, check_errors=True)
    finally:
        consumer.close()


def _read(
    count: int,
    system: str,
    poll: Callable[[float], Any],
    read_batch: Callable[[], list[Any]] | None,
    check_errors: bool = False,
) -> float:
    """Read ``count`` records with ``poll`` one at a time, or with ``read_batch``; each value is read."""
    clock, read, size = _Clock(count), 0, 0
    if read_batch is None:
        while read < count:
            msg = poll(POLL_S)
            if msg is None:
                clock.check(read, system)
                continue
            if check_errors and msg.error():
                raise KafkaException(msg.error())
            if not read:
                clock.start(1)
            read += 1
            size += len(msg.value() or b"")
        return clock.rate()
    while read < count:
        records = read_batch()
        if not records:
            clock.check(read, system)
            continue
        for msg in records:
            if check_errors and msg.error():
                raise KafkaException(msg.error())
            size += len(msg.value() or b"")
        if not read:
            clock.start(len(records))
        read += len(records)
    return clock.rate()


async def _aiokafka_consume(bootstrap: str, topic: str, count: int, group: str) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    clock, read, size = _Clock(count), 0, 0
    try:
        while read < count:
            batches = await consumer.getmany(timeout_ms=int(POLL_S * 1000))
            if not batches:
                clock.check(read, "aiokafka")
                continue
            batch_read = 0
            for records in batches.values():
                for record in records:
                    batch_read += 1
                    size += len(record.value or b"")
            if not read:
                clock.start(batch_read)
            read += batch_read
        return clock.rate()
    finally:
        await consumer.stop()


def aiokafka_consume(bootstrap: str, topic: str, count: int, group: str) -> float:
    return asyncio.run(_aiokafka_consume(bootstrap, topic, count, group))


# --- scenarios ---------------------------------------------------------------------------------------


def _fill(bootstrap: str, topic: str, count: int, payload: bytes) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": LINGER_MS, "compression.type": "none"}
    )
    produce_loop(producer.produce, producer.poll, topic, count, payload)
    if producer.flush(DEADLINE_S):
        raise RuntimeError(f"could not pre-fill {topic}")


class _Resources:
    """Topics and groups made for the runs, removed at the end; consume topics are filled once, lazily."""

    def __init__(self, env: BenchEnv) -> None:
        self.env = env
        self.topics: list[str] = []
        self.groups: list[str] = []
        self.filled: dict[str, str] = {}

    def fresh_topic(self, prefix: str) -> str:
        self.topics.append(self.env.create_topic(prefix, PARTITIONS))
        return self.topics[-1]

    def on_scratch_topic(self, prefix: str, run: Callable[[str], float]) -> float:
        """``run`` on a fresh topic that is deleted right after, so runs do not pile up data on disk."""
        topic = self.fresh_topic(prefix)
        try:
            return run(topic)
        finally:
            self.env.delete_topics([topic])
            self.topics.remove(topic)

    def fresh_group(self) -> str:
        self.groups.append(f"bench-psc-throughput-{uuid.uuid4().hex[:8]}")
        return self.groups[-1]

    def filled_topic(self, size: str, count: int) -> str:
        if size not in self.filled:
            topic = self.fresh_topic(f"fill-{size.lower()}")
            _fill(self.env.bootstrap, topic, count, b"x" * SIZES[size])
            self.filled[size] = topic
        return self.filled[size]

    def close(self) -> None:
        self.env.delete_topics(self.topics)
        if self.groups:
            admin = AdminClient({"bootstrap.servers": self.env.bootstrap})
            for future in admin.delete_consumer_groups(self.groups, request_timeout=30).values():
                with contextlib.suppress(Exception):
                    future.result(30)


def _produce_scenario(res: _Resources, size: str, count: int) -> Scenario:
    env, payload = res.env, b"x" * SIZES[size]
    systems: dict[str, RunFn] = {
        "confluent-kafka": lambda: res.on_scratch_topic(
            "ck", lambda topic: confluent_produce(env.bootstrap, topic, count, payload, idempotent=True)
        ),
        "confluent-kafka+failure-reports": lambda: res.on_scratch_topic(
            "ckf",
            lambda topic: confluent_produce(
                env.bootstrap, topic, count, payload, idempotent=True, failure_reports=True
            ),
        ),
        "psc": lambda: res.on_scratch_topic("psc", lambda topic: psc_produce(env, topic, count, payload)),
        "aiokafka": lambda: res.on_scratch_topic(
            "aio", lambda topic: aiokafka_produce(env.bootstrap, topic, count, payload, idempotent=True)
        ),
    }
    return Scenario(f"produce-{size}", "throughput", "msg/s", BASELINE, systems)


def _consume_scenario(res: _Resources, size: str, count: int, batch: bool) -> Scenario:
    env = res.env

    def topic() -> str:
        return res.filled_topic(size, count)

    systems: dict[str, RunFn] = {
        "confluent-kafka": lambda: confluent_consume(env.bootstrap, topic(), count, res.fresh_group(), batch),
        "psc": lambda: psc_consume(env, topic(), count, res.fresh_group(), batch),
        "aiokafka": lambda: aiokafka_consume(env.bootstrap, topic(), count, res.fresh_group()),
    }
    name = f"consume-batch-{size}" if batch else f"consume-{size}"
    return Scenario(name, "throughput", "msg/s", BASELINE, systems)


@contextlib.contextmanager
def scenarios(env: BenchEnv, scale: float) -> Iterator[list[Scenario]]:
    res = _Resources(env)

    def scaled(base: int) -> int:
        return max(1000, int(base * scale))

    try:
        yield [
            *(_produce_scenario(res, size, scaled(PRODUCE_COUNTS[size])) for size in SIZES),
            *(_consume_scenario(res, size, scaled(CONSUME_COUNTS[size]), batch=False) for size in SIZES),
            *(_consume_scenario(res, size, scaled(CONSUME_COUNTS[size]), batch=True) for size in SIZES),
        ]
    finally:
        res.close()
