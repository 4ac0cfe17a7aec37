"""Runs a connectors job as a real process against the broker and checks its output (tests and fault harness)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, Producer

ROOT = Path(__file__).resolve().parents[3]
JOB = "tests.integration.connectors.jobs:pass_through"
PARTITIONS = 3


class Harness:
    def __init__(self, bootstrap: str, discovery_file: str, source: str, out: str, tmp_path: Path) -> None:
        self.bootstrap = bootstrap
        self.source = source
        self.out = out
        self.produced: list[tuple[int, bytes, bytes]] = []  # (partition, key, value) in send order
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "PSC_DISCOVERY_FILE": discovery_file,
            "CONN_JOB": f"job-{uuid.uuid4().hex[:8]}",
            "CONN_CHECKPOINTS": f"file:{tmp_path / 'chk'}",
            "CONN_SOURCE": self.source,
            "CONN_OUT": self.out,
            "PYTHONPATH": str(ROOT),
            "TOOLKIT_LOG_FORMAT": "json",
        }
        self.checkpoint_dir = tmp_path / "chk" / self.env["CONN_JOB"] / "i0"

    def produce(self, count: int, rate: float | None = None) -> None:
        # idempotent: a retry after a broker restart must not write an input record twice
        producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True})
        start = len(self.produced)
        for i in range(start, start + count):
            record = (i % PARTITIONS, f"k{i % 7}".encode(), f"v{i}".encode())
            producer.produce(self.source, record[2], record[1], partition=record[0])
            self.produced.append(record)
            if rate is not None and i % 50 == 0:
                producer.flush()
                time.sleep(50 / rate)
        producer.flush()

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "connectors", "run", JOB, *args],
            cwd=ROOT,
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, timeout: float = 90, **env: str) -> tuple[int, str]:
        proc = self.start(**env)
        _, err = proc.communicate(timeout=timeout)
        return proc.returncode, err

    def expected(self) -> dict[int, list[bytes]]:
        """The output each partition must hold: input values in order, tagged with their per-key count."""
        counts: dict[tuple[int, bytes], int] = defaultdict(int)
        out: dict[int, list[bytes]] = defaultdict(list)
        for partition, key, value in self.produced:
            counts[(partition, key)] += 1
            out[partition].append(value + b"|" + str(counts[(partition, key)]).encode())
        return dict(out)

    def read(
        self, topic: str, until: int, timeout: float = 60, done: Callable[[dict[int, list[bytes]]], bool] | None = None
    ) -> dict[int, list[bytes]]:
        """Committed records of ``topic`` per partition, once ``until`` of them arrived or ``done`` says so
        (or the timeout)."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic])
        found: dict[int, list[bytes]] = defaultdict(list)
        deadline, total = time.monotonic() + timeout, 0
        try:
            while time.monotonic() < deadline:
                for msg in consumer.consume(1000, 0.5):
                    assert msg.error() is None, msg.error()
                    found[msg.partition() or 0].append(msg.value() or b"")
                    total += 1
                if done(found) if done is not None else total >= until:
                    # anything beyond would be a duplicate: give it a moment to show
                    for msg in consumer.consume(1000, 2.0):
                        found[msg.partition() or 0].append(msg.value() or b"")
                    break
        finally:
            consumer.close()
        return dict(found)


class Running:
    """A job process whose stderr is collected as it comes: a pipe nobody reads fills (librdkafka logs every
    reconnect attempt while a broker is away) and freezes the job."""

    def __init__(self, harness: Harness, *args: str, **env: str) -> None:
        self.proc = harness.start(*args, **env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then the exit code and the whole log."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        return self.proc.returncode, "".join(self.lines)


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def first_copies(values: list[bytes]) -> list[bytes]:
    """The values in order with repeats left out: at-least-once output replays from its checkpoint."""
    return list(dict.fromkeys(values))


def compare(found: dict[int, list[bytes]], expected: dict[int, list[bytes]]) -> tuple[int, int, int]:
    """Records missing, records duplicated, partitions whose first copies are out of order."""
    missing = duplicated = disordered = 0
    for partition, values in expected.items():
        got = found.get(partition, [])
        counts = Counter(got)
        missing += sum(1 for v in values if v not in counts)
        duplicated += sum(c - 1 for c in counts.values() if c > 1)
        disordered += int(first_copies(got) != values and not missing)
    return missing, duplicated, disordered
