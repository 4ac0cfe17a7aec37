"""The reference Java client (memq-client 0.2.20, wire protocol v3) against our broker and our objects.

Maven fetches the client and its dependencies into ~/.cache/kstream-toolkit/maven (once; offline after
that) and javac compiles two small programs (``java/``) at test time. The reference producer writes through our
broker, and every record it wrote is read back from storage with its key, value, headers and message id
intact. The reference reader (MemqLogMessageIterator) decodes the objects our broker stored for our producer.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pytest

from memq._producer import Producer
from tests.integration.memq.brokers import BrokerProcess, broker_config, read_notifications, stored_records
from tests.integration.memq.reference_java import compile_java, java_command


@pytest.fixture(scope="module")
def java_program(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The classpath that runs both programs, compiled against the reference client."""
    out = tmp_path_factory.mktemp("java")
    compile_java("ProduceRecords.java", out)
    return compile_java("ReadObject.java", out)


@pytest.mark.parametrize("compression", ["ZSTD", "GZIP"])
def test_reference_java_producer_writes_through_our_broker(
    compression: str,
    java_program: str,
    tmp_path: Path,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
) -> None:
    classpath = java_program
    notify = new_topic()
    topics = [{"name": "java-topic", "notification_topic": notify, "batch_max_ms": 300}]
    broker = BrokerProcess(broker_config(tmp_path / "objects", topics, kafka_bootstrap), tmp_path).start()
    count = 300
    try:
        result = subprocess.run(
            java_command(classpath, "ProduceRecords", broker.address, "java-topic", str(count), compression),
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        broker.stop()
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}\n{broker.log()[-3000:]}"
    assert f"ACKED {count}" in result.stdout
    records = {record.key: record for _n, record in stored_records(read_notifications(kafka_bootstrap, notify))}
    assert len(records) == count
    for i in range(count):
        record = records[b"key-%d" % i]
        expected_value = b"value-%d-" % i + bytes(ord("a") + j % 26 for j in range(i % 50))
        assert record.value == expected_value
        assert dict(record.headers) == {"index": str(i).encode(), "kind": b"java"}
        assert record.message_id == b"id%06d" % i
        assert record.timestamp_ms == 1700000000000 + i


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_reference_reader_decodes_objects_our_broker_stored(
    compression: Literal["zstd", "gzip", "none"],
    java_program: str,
    tmp_path: Path,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
) -> None:
    classpath = java_program
    notify = new_topic()
    topics = [{"name": "ours", "notification_topic": notify, "batch_max_ms": 300}]
    broker = BrokerProcess(broker_config(tmp_path / "objects", topics, kafka_bootstrap), tmp_path).start()
    expected: list[tuple[bytes | None, bytes, int, list[tuple[str, bytes]]]] = []
    try:
        with Producer(brokers=[broker.address], linger_ms=20, compression=compression) as producer:
            futures = []
            for i in range(200):
                key = None if i % 7 == 0 else b"key-%d" % i
                headers = {"n": b"%d" % i, "bin": bytes([i % 256, 0, 255])} if i % 3 else None
                value = b"v" * (i % 40) + bytes([i % 256])
                futures.append(producer.send("ours", value, key=key, headers=headers, timestamp=1700000000000 + i))
                expected.append((key, value, 1700000000000 + i, sorted((headers or {}).items())))
            for future in futures:
                future.result(30)
    finally:
        broker.stop()
    decoded: list[tuple[bytes | None, bytes, int, list[tuple[str, bytes]]]] = []
    for notification in read_notifications(kafka_bootstrap, notify):
        assert notification.path is not None
        note = tmp_path / "notification.json"
        note.write_text(notification.to_json())
        command = java_command(classpath, "ReadObject", notification.path, str(note))
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-4000:]
        for line in map(json.loads, result.stdout.splitlines()):
            if "index" in line:
                key = None if line.get("key") is None else base64.b64decode(line["key"])  # Gson omits nulls
                pairs = sorted((name, base64.b64decode(v)) for name, v in line["headers"].items())
                decoded.append((key, base64.b64decode(line["value"]), line["timestamp_ms"], pairs))
    assert sorted(decoded, key=lambda r: r[2]) == expected
