"""What every part of the demo shares: the services' endpoints, step headers, and child processes."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
KAFKA_CLUSTER = "plaintext:/rn:kafka:local:local_dev::cluster01:"
MEMQ_CLUSTER = "plaintext:/rn:memq:local:local_dev::memq01:"


class DemoFailure(Exception):
    """A part of the demo did not get the result it checks for; the message says what was measured."""


@dataclass(frozen=True)
class Services:
    kafka_bootstrap: str
    mysql_url: str
    s3_endpoint_url: str | None
    discovery_file: Path

    @classmethod
    def from_mapping(cls, env: dict[str, str]) -> Services:
        return cls(
            kafka_bootstrap=env["KAFKA_BOOTSTRAP_SERVERS"],
            mysql_url=env.get("MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
            s3_endpoint_url=env.get("S3_ENDPOINT_URL") or None,
            discovery_file=Path(env["PSC_DISCOVERY_FILE"]),
        )

    def discovery(self) -> dict[str, dict[str, str]]:
        entries: dict[str, dict[str, str]] = json.loads(self.discovery_file.read_text())
        return entries


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def command(name: str) -> str:
    """A console script of the project, from the virtualenv running the demo."""
    script = Path(sys.executable).parent / name
    if not script.exists():
        raise DemoFailure(f"{script} is missing; install the project first (make install)")
    return str(script)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


class Child:
    """One of the toolkit's commands as a process of its own, logging to ``<workdir>/<name>.log``."""

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [command(argv[0]), *argv[1:]],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "TOOLKIT_LOG_FORMAT": "json", "PYTHONPATH": str(ROOT), **(env or {})},
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first match of ``pattern`` in the log; fails if the process exits or the time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log.read_text(errors="replace"))
            if found:
                return found
            if self.proc.poll() is not None:
                raise DemoFailure(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            time.sleep(0.1)
        raise DemoFailure(f"{self.name}: no {pattern!r} in its log after {timeout:.0f}s:\n{self.tail()}")

    def tail(self, lines: int = 12) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as in a crash."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the clean exit; SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def wait_until(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.2) -> float:
    """Seconds until ``check()`` is true; raises :class:`DemoFailure` naming ``what`` after ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise DemoFailure(f"{what}: not reached within {timeout:.0f}s")
        time.sleep(interval)
    return time.monotonic() - started


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(30)


def delete_topic(bootstrap: str, topic: str) -> None:
    """Remove a topic the demo made, waiting for the broker's answer; a failure is only reported."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        admin.delete_topics([topic])[topic].result(30)
    except KafkaException as exc:
        print(f"could not delete topic {topic}: {exc}")
