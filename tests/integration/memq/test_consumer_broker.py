"""End to end through real processes: our producer, our broker (file storage), then memq.Consumer and the
reference client's own reader on the objects the broker stored."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from memq import Consumer, ConsumerRecord
from memq._format import iter_object_records
from memq._producer import Producer
from tests.integration.memq.brokers import BrokerProcess, broker_config, read_notifications
from tests.integration.memq.reference_java import compile_java, java_command
from tests.services import Services

TOPIC = "clicks"


@pytest.fixture
def broker(tmp_path: Path, kafka_bootstrap: str, new_topic: Callable[..., str]) -> Iterator[tuple[BrokerProcess, str]]:
    notify = new_topic(prefix="memq-notify")
    topic = {"name": TOPIC, "notification_topic": notify, "batch_max_ms": 500}
    config = broker_config(tmp_path / "objects", [topic], kafka_bootstrap, producer_request_timeout_s=60)
    process = BrokerProcess(config, tmp_path).start()
    yield process, notify
    process.stop()


def _produce(broker: BrokerProcess) -> list[tuple[bytes | None, bytes, dict[str, bytes]]]:
    """Twelve records with and without keys, with headers, in two rounds (so more than one object)."""
    sent = []
    with Producer(brokers=[broker.address], linger_ms=20, request_timeout_ms=60000) as producer:
        for round_ in range(2):
            futures = []
            for i in range(6):
                key = None if i % 3 == 0 else f"k{round_}.{i}".encode()
                value = f"value {round_}.{i}".encode() * (1 + i)
                headers = {"n": str(i).encode(), "round": str(round_).encode()}
                futures.append(producer.send(TOPIC, value, key=key, headers=headers))
                sent.append((key, value, headers))
            for future in futures:
                future.result(30)
    return sent


def _sorted(records: list[tuple[bytes | None, bytes, dict[str, bytes]]]) -> list[tuple[bytes, bytes, str]]:
    return sorted((key or b"", value, repr(sorted(headers.items()))) for key, value, headers in records)


def _take(consumer: Consumer, count: int, limit_s: float = 30.0) -> list[ConsumerRecord]:
    out: list[ConsumerRecord] = []
    deadline = time.monotonic() + limit_s
    while len(out) < count and time.monotonic() < deadline:
        record = consumer.poll(0.5)
        if record is not None:
            out.append(record)
    return out


def test_consumer_reads_what_our_broker_stored(
    broker: tuple[BrokerProcess, str], services: Services, kafka_bootstrap: str
) -> None:
    process, notify = broker
    sent = _produce(process)
    notifications = read_notifications(kafka_bootstrap, notify)
    assert len(notifications) >= 2
    config = {
        "psc.project": "it-memq-e2e",
        "psc.discovery.file": services.psc_discovery_file,
        "psc.consumer.group.id": f"g-{uuid.uuid4().hex[:8]}",
        "psc.consumer.offset.auto.reset": "earliest",
    }
    with Consumer(config) as consumer:
        consumer.subscribe([services.cluster_prefix + notify])
        records = _take(consumer, 12)
        assert consumer.poll(1.0) is None
    assert _sorted([(r.key, r.value, dict(r.headers)) for r in records]) == _sorted(sent)
    assert {r.topic for r in records} == {TOPIC}
    by_object: dict[int, list[int]] = {}
    for record in records:
        by_object.setdefault(record.notification_offset, []).append(record.record_index)
    assert sorted(by_object) == list(range(len(notifications)))
    assert all(indices == list(range(len(indices))) for indices in by_object.values())


def test_reference_reader_decodes_what_our_broker_stored(
    broker: tuple[BrokerProcess, str], kafka_bootstrap: str, tmp_path: Path
) -> None:
    process, notify = broker
    sent = _produce(process)
    classpath = compile_java("ReadObject.java", tmp_path / "classes")
    seen = []
    for number, notification in enumerate(read_notifications(kafka_bootstrap, notify)):
        assert notification.path is not None
        note_file = tmp_path / f"notification-{number}.json"
        note_file.write_text(notification.to_json())
        done = subprocess.run(
            java_command(classpath, "ReadObject", notification.path, str(note_file)),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        theirs = [line for line in lines if "index" in line]
        ours = list(iter_object_records(Path(notification.path).read_bytes()))
        assert lines[-1] == {"records": len(ours)}
        for line, (message, index, header, record) in zip(theirs, ours, strict=True):
            last = index + 1 == len(ours) or ours[index + 1][0] != message
            assert line == {
                "index": index,
                **({"key": _b64(record.key)} if record.key is not None else {}),
                "value": _b64(record.value),
                "headers": {name: _b64(value) for name, value in sorted(record.headers)},
                "timestamp_ms": record.timestamp_ms,
                **({"message_id": _b64(record.message_id)} if record.message_id is not None else {}),
                "end_of_batch": last,
            }
            assert header.request_id >= 0
        seen += [
            (
                base64.b64decode(line["key"]) if "key" in line else None,
                base64.b64decode(line["value"]),
                {name: base64.b64decode(value) for name, value in line["headers"].items()},
            )
            for line in theirs
        ]
    assert _sorted(seen) == _sorted(sent)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()
