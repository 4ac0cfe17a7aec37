"""End-to-end demo: bring the local stack up if needed, then a round trip through the real broker via PSC.

    python demo.py            (or: make demo)

It resolves a topic URI through discovery, produces JSON records with PSC, consumes them back through a
consumer group, commits, and prints each step with what it measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psc
from psc.common import configure_logging

ROOT = Path(__file__).resolve().parent
CLUSTER_URI = "plaintext:/rn:kafka:local:local_dev::cluster01:"
RECORDS = 20


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def endpoints() -> dict[str, str]:
    """Endpoints from the environment when given, else from the local stack (started if needed)."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("PSC_DISCOVERY_FILE"):
        return dict(os.environ)
    stack = [sys.executable, str(ROOT / "compose" / "stack.py")]
    subprocess.run([*stack, "up", "kafka"], check=True)
    found = subprocess.run([*stack, "env", "--format", "json"], check=True, capture_output=True, text=True)
    env: dict[str, str] = json.loads(found.stdout)
    return env


def produce(config: dict[str, Any], topic_uri: str) -> list[psc.MessageId]:
    delivered: list[psc.MessageId] = []
    failures: list[str] = []

    def on_delivery(err: Any, msg: psc.Message) -> None:
        if err is not None:
            failures.append(str(err))
        else:
            delivered.append(msg.message_id)

    with psc.Producer({**config, "psc.producer.value.serializer": "json"}) as producer:
        started = time.perf_counter()
        for i in range(RECORDS):
            record = {"order": i, "item": f"widget-{i % 3}", "quantity": i % 5 + 1}
            producer.produce(topic_uri, record, key=f"customer-{i % 4}".encode(), on_delivery=on_delivery)
        left = producer.flush(30)
        elapsed = time.perf_counter() - started
    if failures or left:
        raise SystemExit(f"demo: {len(failures)} deliveries failed, {left} undelivered: {failures[:3]}")
    print(f"produced {len(delivered)} JSON records in {elapsed * 1000:.1f} ms (acks=all, idempotent)")
    for message_id in delivered[:3]:
        print(f"  delivered {message_id}")
    return delivered


def consume(config: dict[str, Any], topic_uri: str, expected: int) -> list[psc.Message]:
    group = f"demo-{uuid.uuid4().hex[:8]}"
    consumer_config = {
        **config,
        "psc.consumer.group.id": group,
        "psc.consumer.offset.auto.reset": "earliest",
        "psc.consumer.value.deserializer": "json",
    }
    received: list[psc.Message] = []
    with psc.Consumer(consumer_config) as consumer:
        consumer.subscribe([topic_uri])
        deadline = time.monotonic() + 30
        while len(received) < expected and time.monotonic() < deadline:
            received.extend(consumer.consume(num_messages=expected, timeout=1.0))
        consumer.commit(asynchronous=False)
    print(f"consumed {len(received)} records through consumer group {group!r} and committed")
    for message in received[:3]:
        print(f"  {message.message_id}: key={message.key()!r} value={message.value()}")
    return received


def main() -> int:
    configure_logging("WARNING", "console")
    step("services")
    env = endpoints()
    print(f"Kafka at {env['KAFKA_BOOTSTRAP_SERVERS']}; PSC discovery file {env['PSC_DISCOVERY_FILE']}")

    step("resolve a topic URI")
    topic_uri = f"{CLUSTER_URI}demo-orders-{uuid.uuid4().hex[:8]}"
    config: dict[str, Any] = {"psc.project": "toolkit-demo", "psc.discovery.file": env["PSC_DISCOVERY_FILE"]}
    uri = psc.TopicUri.parse(topic_uri)
    endpoint = psc.discover(uri, psc.PscConfig.from_mapping(config))
    print(f"{uri} -> service={uri.service} cluster={uri.cluster} topic={uri.topic} bootstrap={endpoint.bootstrap}")

    step("produce with psc.Producer")
    delivered = produce(config, topic_uri)

    step("consume with psc.Consumer")
    received = consume(config, topic_uri, len(delivered))

    step("check")
    sent_ids = sorted((m.partition, m.offset) for m in delivered)
    got_ids = sorted((m.partition(), m.offset()) for m in received)
    if sent_ids != got_ids:
        print(f"MISMATCH: sent {len(sent_ids)} records, received {len(got_ids)}")
        return 1
    print(f"round trip complete: {len(received)} of {len(delivered)} records back, none lost, none duplicated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
