"""``compose/stack up memq`` under a private home: a broker that stores, announces and serves PSC clients.

Only the MemQ broker is started; it announces on the shared Kafka, which the private settings point at.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

import psc

ROOT = Path(__file__).resolve().parents[3]
STACK = [sys.executable, str(ROOT / "compose" / "stack.py")]
MEMQ_CLUSTER = "plaintext:/rn:memq:local:local_dev::memq01:"


@pytest.fixture
def private_stack(tmp_path: Path, kafka_bootstrap: str) -> Iterator[dict[str, str]]:
    host, _, kafka_port = kafka_bootstrap.partition(",")[0].rpartition(":")
    assert host in ("127.0.0.1", "localhost"), "the stack's broker announces on a local Kafka"
    env = {
        **os.environ,
        "STACK_HOME": str(tmp_path / "stack"),
        "STACK_KAFKA_PORT": kafka_port,
        "STACK_MEMQ_PORT": str(random.randint(20000, 29999)),
    }
    try:
        yield env
    finally:
        subprocess.run([*STACK, "down", "memq"], env=env, timeout=60)
        config = tmp_path / "stack" / "memq" / "broker.json"
        if config.exists():  # the notification topic this private home created on the shared Kafka
            topic = json.loads(config.read_text())["topics"][0]["notification_topic"]
            admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
            admin.delete_topics([topic])[topic].result(30)


def stack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*STACK, *args], env=env, capture_output=True, text=True, timeout=120)


def test_stack_memq_broker_round_trip_is_idempotent_and_stops(private_stack: dict[str, str]) -> None:
    env = private_stack
    first = stack(env, "up", "memq")
    assert first.returncode == 0, first.stderr
    assert "memq ready" in first.stderr
    pid = int((Path(env["STACK_HOME"]) / "memq.pid").read_text())
    again = stack(env, "up", "memq")
    assert "memq already running" in again.stderr
    assert int((Path(env["STACK_HOME"]) / "memq.pid").read_text()) == pid

    endpoints = json.loads(stack(env, "env", "--format", "json").stdout)
    assert endpoints["MEMQ_BROKERS"] == f"127.0.0.1:{env['STACK_MEMQ_PORT']}"
    config = {"psc.project": "stack-it", "psc.discovery.file": endpoints["PSC_DISCOVERY_FILE"]}
    run_id = uuid.uuid4().hex[:8].encode()
    producer = psc.Producer({**config, "psc.producer.linger.ms": "20"})
    futures = [producer.send(MEMQ_CLUSTER + "demo", b"v%d" % i, key=run_id + b"-%d" % i) for i in range(20)]
    assert producer.flush(30) == 0
    assert all(f.result(0).topic_uri == MEMQ_CLUSTER + "demo" for f in futures)
    producer.close()
    objects = list((Path(env["STACK_HOME"]) / "memq" / "objects").rglob("*"))
    assert any(path.is_file() for path in objects), "no object under STACK_HOME/memq/objects"

    consumer = psc.Consumer(
        {**config, "psc.consumer.group.id": f"stack-it-{run_id.decode()}", "psc.consumer.offset.auto.reset": "earliest"}
    )
    consumer.subscribe([MEMQ_CLUSTER + "demo"])
    received: dict[bytes, bytes] = {}
    deadline = time.monotonic() + 30
    while len(received) < 20 and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=100, timeout=1.0):
            if (message.key() or b"").startswith(run_id):
                received[message.key() or b""] = message.value() or b""
    consumer.close()
    assert received == {run_id + b"-%d" % i: b"v%d" % i for i in range(20)}

    down = stack(env, "down", "memq")
    assert "memq stopped" in down.stderr
    status = stack(env, "status")
    assert any(line.startswith("memq ") and "stopped" in line for line in status.stdout.splitlines())
