"""Singer as a real process against the real broker: rotation, copytruncate, SIGKILL, broken config."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.services import Services

ROOT = Path(__file__).resolve().parents[3]
LOGROTATE = shutil.which("logrotate") or "/usr/sbin/logrotate"


class Singer:
    """``singer run`` in a subprocess with its own configuration directory."""

    def __init__(self, base: Path, services: Services) -> None:
        self.config = base / "conf"
        (self.config / "conf.d").mkdir(parents=True)
        self.services = services
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = base / "singer.log"
        (self.config / "singer.toml").write_text(
            "poll_interval_s = 0.2\nreload_interval_s = 0.5\nstuck_after_s = 30\n"
            f'[producer]\n"psc.discovery.file" = "{services.psc_discovery_file}"\n'
            '"psc.producer.batch.duration.ms" = "20"\n'
        )

    def stream(self, name: str, logs: Path, topic: str, **extra: object) -> None:
        lines = [
            f'dir = "{logs}"',
            "pattern = 'app\\.log(\\.\\d+)?'",
            f'topic_uri = "{self.services.cluster_prefix}{topic}"',
            "rotation_grace_s = 0.5",
            "batch_records = 500",
            *(f"{k} = {json.dumps(v)}" for k, v in extra.items()),
        ]
        (self.config / "conf.d" / f"{name}.toml").write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        env = {**os.environ, "TOOLKIT_LOG_FORMAT": "json", "PSC_DISCOVERY_FILE": self.services.psc_discovery_file}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "singer.cli", "run", "--config", str(self.config)],
                stdout=out, stderr=out, env=env, cwd=ROOT,
            )  # fmt: skip

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(30)
        self.proc = None
        return code

    def status(self) -> dict[str, dict[str, object]]:
        path = self.config / "state" / "status.json"
        if not path.exists():
            return {}
        return {s["stream"]: s for s in json.loads(path.read_text())["streams"]}

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def singer(tmp_path: Path, services: Services) -> Iterator[Singer]:
    agent = Singer(tmp_path, services)
    yield agent
    if agent.proc is not None:
        agent.proc.kill()
        agent.proc.wait()


class Writer(threading.Thread):
    """Appends numbered lines, reopening the file for each burst as an application after SIGHUP would."""

    def __init__(self, path: Path, count: int, per_burst: int = 50, pause_s: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.path, self.count, self.per_burst, self.pause_s = path, count, per_burst, pause_s
        self.written = 0

    def run(self) -> None:
        while self.written < self.count:
            n = min(self.per_burst, self.count - self.written)
            with self.path.open("ab") as f:
                f.write(b"".join(line(self.written + i) for i in range(n)))
            self.written += n
            time.sleep(self.pause_s)


def line(i: int) -> bytes:
    return b"line %08d %s\n" % (i, b"x" * (i % 50))


def rotate(logs: Path, mode: str, state: Path) -> None:
    conf = logs.parent / f"logrotate-{mode}.conf"
    conf.write_text(f"{logs}/app.log {{\n  rotate 1000\n  {mode}\n  missingok\n  nocompress\n}}\n")
    subprocess.run([LOGROTATE, "-f", "-s", str(state), str(conf)], check=True, capture_output=True)


def read_topic(
    bootstrap: str, topic: str, until: Callable[[list[tuple[bytes, bytes]]], bool], limit_s: float = 60.0
) -> list[tuple[bytes, bytes]]:
    """(value, _mid) of every record from the start, until ``until(records)`` or the time limit."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})  # fmt: skip
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    out: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + limit_s
    try:
        while time.monotonic() < deadline and not until(out):
            for msg in consumer.consume(1000, 0.5):
                if msg.error():
                    continue
                value, mid = msg.value(), dict(msg.headers() or [])["_mid"]
                assert isinstance(value, bytes) and isinstance(mid, bytes)
                out.append((value, mid))
    finally:
        consumer.close()
    return out


def distinct_lines(expected: int) -> Callable[[list[tuple[bytes, bytes]]], bool]:
    return lambda records: len({v for v, _ in records}) >= expected


def test_create_rotation_while_writing_loses_no_line(
    singer: Singer, tmp_path: Path, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    topic = new_topic(partitions=3)
    singer.stream("app", logs, topic)
    writer = Writer(logs / "app.log", 20_000)
    writer.start()
    singer.start()
    for _ in range(4):
        time.sleep(0.4)
        rotate(logs, "create", tmp_path / "lr.state")
    writer.join()
    records = read_topic(kafka_bootstrap, topic, distinct_lines(20_000))
    assert {v for v, _ in records} == {line(i) for i in range(20_000)}
    assert len(list(logs.glob("app.log.*"))) >= 3  # it did rotate
    assert singer.stop() == 0
    assert '"stopped"' in singer.log_text()


def test_copytruncate_is_detected_and_counted(
    singer: Singer, tmp_path: Path, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    topic = new_topic()
    singer.stream("app", logs, topic)
    path = logs / "app.log"
    path.write_bytes(b"".join(line(i) for i in range(1000)))
    singer.start()
    read_topic(kafka_bootstrap, topic, distinct_lines(1000))
    with path.open("ab") as f:  # written, then truncated away by copytruncate; the copy keeps them
        f.write(b"".join(line(i) for i in range(1000, 1100)))
    rotate(logs, "copytruncate", tmp_path / "lr.state")
    with path.open("ab") as f:
        f.write(b"".join(line(i) for i in range(1100, 1200)))
    records = read_topic(kafka_bootstrap, topic, distinct_lines(1200))
    assert {v for v, _ in records} == {line(i) for i in range(1200)}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(s.get("copytruncate") for s in singer.status().values()):
        time.sleep(0.2)
    assert [s["copytruncate"] for s in singer.status().values()] == [1]
    assert "copytruncate" in singer.log_text()


def test_sigkill_and_restart_loses_nothing_and_duplicates_carry_the_same_mid(
    singer: Singer, tmp_path: Path, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    topic = new_topic(partitions=2)
    singer.stream("app", logs, topic)
    writer = Writer(logs / "app.log", 30_000, per_burst=100, pause_s=0.002)
    writer.start()
    for cycle in range(3):
        singer.start()
        time.sleep(0.8 + 0.3 * cycle)
        assert singer.stop(signal.SIGKILL) == -signal.SIGKILL
        if cycle == 1:
            rotate(logs, "create", tmp_path / "lr.state")
    writer.join()
    singer.start()
    records = read_topic(kafka_bootstrap, topic, distinct_lines(30_000), limit_s=90)
    assert {v for v, _ in records} == {line(i) for i in range(30_000)}
    by_mid: dict[bytes, set[bytes]] = defaultdict(set)
    for value, mid in records:
        by_mid[mid].add(value)
    assert len(by_mid) == 30_000 and all(len(values) == 1 for values in by_mid.values())


def test_broken_stream_config_is_reported_while_others_ship(
    singer: Singer, tmp_path: Path, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    topic = new_topic()
    singer.stream("good", good, topic)
    (singer.config / "conf.d" / "bad.toml").write_text(f'dir = "{bad}"\npattern = "(unclosed"\nbatch_records = -1\n')
    (good / "app.log").write_bytes(b"".join(line(i) for i in range(100)))
    singer.start()
    records = read_topic(kafka_bootstrap, topic, distinct_lines(100))
    assert {v for v, _ in records} == {line(i) for i in range(100)}
    text = singer.log_text()
    assert "stream configuration invalid" in text
    for problem in (
        "bad.toml",
        "pattern: Value error, not a valid regex",
        "topic_uri: Field required",
        "batch_records",
    ):
        assert problem in text
    # Fixing the file starts the stream without a restart.
    (bad / "app.log").write_bytes(b"fixed\n")
    time.sleep(0.05)
    singer.stream("bad", bad, topic)
    records = read_topic(kafka_bootstrap, topic, lambda r: b"fixed\n" in {v for v, _ in r})
    assert b"fixed\n" in {v for v, _ in records}
