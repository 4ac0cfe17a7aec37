"""MemQ through PSC: records to a memq topic URI, the stored object and its notification, records read back.

Uses the stack's MemQ broker when the discovery file names one that answers (``compose/stack up`` starts
it, serving topic ``demo``); otherwise starts a broker process of its own on a fresh topic, storing into a
fresh bucket of the S3 endpoint (or a temporary directory without one), and stops it at the end.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

import psc
from demos._common import (
    KAFKA_CLUSTER,
    MEMQ_CLUSTER,
    Child,
    DemoFailure,
    Services,
    command,
    delete_topic,
    free_port,
    port_open,
    step,
)
from memq import Notification

RECORDS = 200
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True)
class MemqTarget:
    broker: str  # host:port
    topic: str
    discovery_file: Path
    notification_topic: str
    storage: str


def run(services: Services) -> None:
    with tempfile.TemporaryDirectory(prefix="demo-memq-") as workdir, broker_for(services, Path(workdir)) as target:
        config: dict[str, Any] = {"psc.project": "toolkit-demo", "psc.discovery.file": str(target.discovery_file)}
        topic_uri = MEMQ_CLUSTER + target.topic
        print(f"broker {target.broker}, topic URI {topic_uri}")
        print(f"storage {target.storage}, notifications on Kafka topic {target.notification_topic}")
        run_id = uuid.uuid4().hex[:8]
        first_notification = notification_end(services.kafka_bootstrap, target.notification_topic)

        step("memq: produce with psc.Producer")
        sent = produce(config, topic_uri, run_id)

        step("memq: the notification on Kafka and the object in storage")
        notifications = read_notifications(services.kafka_bootstrap, target.notification_topic, first_notification)
        stored = 0
        for notification in notifications:
            stored += show_object(notification, services.s3_endpoint_url, run_id)
        if stored != len(sent):
            raise DemoFailure(f"{len(sent)} records acknowledged, {stored} found in the announced objects")

        step("memq: consume with psc.Consumer")
        received = consume(config, topic_uri, run_id, sent)
        if received != sent:
            missing = sorted(set(sent) - set(received))[:3]
            raise DemoFailure(f"sent {len(sent)} records, read {len(received)} back; missing e.g. {missing}")
        print(f"round trip complete: {len(received)} of {len(sent)} records back with their values")


@contextlib.contextmanager
def broker_for(services: Services, workdir: Path) -> Iterator[MemqTarget]:
    stack_entry = services.discovery().get(MEMQ_CLUSTER, {}).get("connect")
    if stack_entry and port_open(stack_entry.split(",")[0]):
        step("memq: the stack's broker")
        yield describe(stack_entry.split(",")[0], "demo", services.discovery_file)
        return
    step("memq: no broker in the stack; starting one")
    topic = f"demo-{uuid.uuid4().hex[:8]}"
    bucket = f"memq-demo-{uuid.uuid4().hex[:8]}"
    storage = f"s3://{bucket}/memq" if services.s3_endpoint_url else (workdir / "objects").as_uri()
    if services.s3_endpoint_url:
        s3_client(services.s3_endpoint_url).create_bucket(Bucket=bucket)
    port = free_port()
    config = {
        "port": port,
        "storage": storage,
        "s3_endpoint_url": services.s3_endpoint_url,
        "notification_cluster": KAFKA_CLUSTER,
        "notification_bootstrap": services.kafka_bootstrap,
        "topics": [{"name": topic, "notification_topic": f"{topic}-notifications", "batch_max_ms": 500}],
    }
    (workdir / "broker.json").write_text(json.dumps(config))
    discovery = workdir / "discovery.json"
    discovery.write_text(json.dumps({**services.discovery(), MEMQ_CLUSTER: {"connect": f"127.0.0.1:{port}"}}))
    env = {key: os.environ.get(key, value) for key, value in S3_CREDENTIALS.items()}
    broker = Child("memq-broker", ["memq", "broker", "--config", str(workdir / "broker.json")], workdir, env)
    try:
        broker.wait_for("broker_started")
        print(f"memq broker pid {broker.pid} on 127.0.0.1:{port}")
        yield describe(f"127.0.0.1:{port}", topic, discovery)
    finally:
        code = broker.stop()
        print(f"memq broker stopped with SIGTERM (exit {code})")
        # Its objects go with the temporary directory or bucket, so its announcements go too.
        delete_topic(services.kafka_bootstrap, f"{topic}-notifications")
        if services.s3_endpoint_url:
            s3 = s3_client(services.s3_endpoint_url)
            for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=item["Key"])
            s3.delete_bucket(Bucket=bucket)


def describe(broker: str, topic: str, discovery: Path) -> MemqTarget:
    """The topic's notification topic and storage, from the broker's TOPIC_METADATA (``memq topics``)."""
    found = subprocess.run(
        [command("memq"), "topics", "--broker", broker, "--topic", topic], capture_output=True, text=True, timeout=30
    )
    if found.returncode != 0 or not found.stdout.strip():
        raise DemoFailure(f"memq topics --broker {broker} --topic {topic} failed: {found.stderr.strip()}")
    properties = json.loads(found.stdout.splitlines()[0])["properties"]
    return MemqTarget(broker, topic, discovery, properties["notificationTopic"], properties["storage"])


def s3_client(endpoint: str) -> Any:
    import boto3

    credentials = {key: os.environ.get(key, value) for key, value in S3_CREDENTIALS.items()}
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        region_name=credentials["AWS_DEFAULT_REGION"],
    )


def produce(config: dict[str, Any], topic_uri: str, run_id: str) -> dict[bytes, bytes]:
    failures: list[str] = []
    sent: dict[bytes, bytes] = {}

    def on_delivery(err: Any, _msg: psc.Message) -> None:
        if err is not None:
            failures.append(str(err))

    producer = psc.Producer({**config, "psc.producer.linger.ms": "50"})
    started = time.perf_counter()
    for i in range(RECORDS):
        key, value = f"{run_id}-{i}".encode(), json.dumps({"reading": i, "sensor": f"s{i % 7}"}).encode()
        producer.produce(topic_uri, value, key=key, on_delivery=on_delivery)
        sent[key] = value
    left = producer.flush(30)
    elapsed = time.perf_counter() - started
    producer.close()
    if failures or left:
        raise DemoFailure(f"{len(failures)} deliveries failed, {left} undelivered: {failures[:3]}")
    size = sum(len(v) for v in sent.values())
    print(f"produced {len(sent)} records ({size} bytes) in {elapsed * 1000:.0f} ms; each acknowledged only once")
    print("an acknowledgement means: the batch's object is stored and its notification is on Kafka")
    return sent


def notification_end(bootstrap: str, topic: str) -> int:
    """The notification topic's end offset now (0 if it does not exist yet)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "demo-memq-peek", "enable.auto.commit": False})
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        return int(high)
    except KafkaException:
        return 0
    finally:
        consumer.close()


def read_notifications(bootstrap: str, topic: str, start: int) -> list[Notification]:
    """The notifications announced on partition 0 of ``topic`` from offset ``start`` to its end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "demo-memq-peek", "enable.auto.commit": False})
    found: list[Notification] = []
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, start)])
        position, deadline = start, time.monotonic() + 15
        while position < high and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            position = (message.offset() or 0) + 1
            print(f"notification at offset {message.offset()}: {(message.value() or b'').decode()}")
            found.append(Notification.from_json(message.value() or b""))
    finally:
        consumer.close()
    if not found:
        raise DemoFailure(f"no notification appeared on {topic} after offset {start}")
    return found


def show_object(notification: Notification, s3_endpoint: str | None, run_id: str) -> int:
    """Decode the announced object with ``memq inspect``; the number of this run's records in it."""
    argv = [command("memq"), "inspect", "--json", notification.location]
    if notification.key is not None and s3_endpoint:
        argv += ["--endpoint-url", s3_endpoint]
    env = {**os.environ, **{k: os.environ.get(k, v) for k, v in S3_CREDENTIALS.items()}}
    found = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    if found.returncode != 0:
        raise DemoFailure(f"memq inspect {notification.location} failed: {found.stderr.strip()}")
    lines = [json.loads(line) for line in found.stdout.splitlines()]
    summary = lines[-1]["summary"]
    ours = sum(1 for line in lines[:-1] if base64.b64decode(line["key"] or "").startswith(run_id.encode()))
    print(
        f"object {notification.location}: {summary['size']} bytes in storage, {summary['requests']} producer "
        f"requests, {summary['records']} records ({ours} of this run), {len(summary['errors'])} errors"
    )
    return ours


def consume(config: dict[str, Any], topic_uri: str, run_id: str, sent: dict[bytes, bytes]) -> dict[bytes, bytes]:
    group = f"demo-memq-{run_id}"
    settings = {**config, "psc.consumer.group.id": group, "psc.consumer.offset.auto.reset": "earliest"}
    received: dict[bytes, bytes] = {}
    started = time.perf_counter()
    with psc.Consumer(settings) as consumer:
        consumer.subscribe([topic_uri])
        deadline = time.monotonic() + 30
        while len(received) < len(sent) and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=1.0):
                key = message.key() or b""
                if key.startswith(run_id.encode()):
                    received[key] = message.value() or b""
        consumer.commit(asynchronous=False)
    elapsed = time.perf_counter() - started
    print(f"consumed {len(received)} records of this run in {elapsed:.1f} s through group {group!r} and committed")
    return received
