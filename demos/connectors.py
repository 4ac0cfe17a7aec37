"""Connectors: an exactly-once stream job as a process, SIGKILLed mid-run and restarted from its checkpoints;
its output is read back complete, with no duplicate."""

from __future__ import annotations

import random
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from demos._common import Child, DemoFailure, Services, create_topic, delete_topic, step, wait_until
from demos.connectors_job import PARTITIONS

ORDERS = 3000
RATE = 1000.0  # orders per second: the job is killed while they still arrive
CUSTOMERS = 7


def run(services: Services) -> None:
    run_id = uuid.uuid4().hex[:8]
    source, out = f"demo-orders-{run_id}", f"demo-orders-counted-{run_id}"
    for topic in (source, out):
        create_topic(services.kafka_bootstrap, topic, PARTITIONS)
    try:
        with tempfile.TemporaryDirectory(prefix="demo-connectors-") as workdir:
            kill_and_restart(services, Path(workdir), source, out)
    finally:
        for topic in (source, out):
            delete_topic(services.kafka_bootstrap, topic)


def kill_and_restart(services: Services, workdir: Path, source: str, out: str) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": services.kafka_bootstrap, "DEMO_JOB_SOURCE": source, "DEMO_JOB_OUT": out}
    argv = ["connectors", "run", "demos.connectors_job:job", "--checkpoints", f"file:{workdir / 'checkpoints'}"]
    step("connectors: an exactly-once job counting orders per customer, killed mid-run")
    feeder = threading.Thread(target=produce_orders, args=(services.kafka_bootstrap, source))
    feeder.start()
    first = Child("connectors-job", argv, workdir, env)
    print(f"connectors run demos.connectors_job:job (pid {first.pid}): {source} -> {out}, checkpoint every 0.5 s")
    wait_until("three checkpoints", lambda: checkpoints(first) >= 3, 60)
    time.sleep(random.uniform(0.1, 0.4))  # somewhere inside the next checkpoint interval
    first.kill()
    print(f"SIGKILL after {checkpoints(first)} checkpoints, inside the transaction of the next one")

    step("connectors: restarted from the same checkpoint store")
    with Child("connectors-job-restarted", argv, workdir, env) as second:
        feeder.join()
        waited = wait_until("every order counted", lambda: len(read(services, out, "read_committed")) >= ORDERS, 60)
        print(f"restarted (pid {second.pid}); all {ORDERS} orders produced; output complete {waited:.1f} s later")
        second.wait_for('"restored"|"starting_fresh"')
        restored = second.wait_for(r'"restored".*?"checkpoint": (\d+)', 10).group(1)
        print(f"it restored checkpoint {restored}; its producer fenced the killed one, whose open transaction aborted")
    if second.proc.returncode != 0:
        raise DemoFailure(f"the job exited with {second.proc.returncode} on SIGTERM:\n{second.tail()}")
    check(services, out)


def produce_orders(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(ORDERS):
        producer.produce(topic, f"order-{i}".encode(), f"customer-{i % CUSTOMERS}".encode())
        if i % 50 == 49:
            producer.flush(30)
            time.sleep(50 / RATE)
    producer.flush(30)


def checkpoints(job: Child) -> int:
    return job.log.read_text(errors="replace").count('"checkpoint_completed"')


def read(services: Services, topic: str, isolation: str) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of ``topic`` visible at ``isolation``, in order per partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": services.kafka_bootstrap,
            "group.id": f"demo-reader-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    found: list[tuple[bytes, bytes]] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + 20
    try:
        while len(at_end) < PARTITIONS and time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is not None:
                    at_end.add(msg.partition() or 0)
                    continue
                at_end.discard(msg.partition() or 0)
                found.append((msg.key() or b"", msg.value() or b""))
    finally:
        consumer.close()
    return found


def check(services: Services, out: str) -> None:
    step("connectors: the output, read back")
    committed = read(services, out, "read_committed")
    everything = read(services, out, "read_uncommitted")
    values = Counter(value.split(b" #")[0] for _, value in committed)
    missing = [i for i in range(ORDERS) if values[f"order-{i}".encode()] == 0]
    duplicated = [v for v, n in values.items() if n > 1]
    per_customer: dict[bytes, list[int]] = defaultdict(list)
    for key, value in committed:
        per_customer[key].append(int(value.split(b" #")[1]))
    counts_in_order = all(seq == list(range(1, len(seq) + 1)) for seq in per_customer.values())
    summary = f"{len(missing)} missing, {len(duplicated)} duplicated"
    print(f"read_committed: {len(committed)} records for {ORDERS} orders: {summary}")
    print(f"read_uncommitted also sees {len(everything) - len(committed)} records of aborted transactions")
    print(f"per-customer counts run 1, 2, 3, ... without a gap or a repeat: {counts_in_order}")
    for key, value in committed[:3]:
        print(f"  {key.decode()}: {value.decode()}")
    if missing or duplicated or len(committed) != ORDERS or not counts_in_order:
        raise DemoFailure(
            f"{len(missing)} orders missing, {len(duplicated)} duplicated, counts in order: {counts_in_order}"
        )
