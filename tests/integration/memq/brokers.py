"""MemQ brokers as real processes for integration tests, and readers of what they stored and announced."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from memq._format import Notification, Record, iter_object_records

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class BrokerProcess:
    """``python -m memq broker --config FILE`` on a free port in 20000-29999 (the reference client reads ports
    as signed 16-bit numbers, so they stay below 32768)."""

    config: dict[str, Any]
    workdir: Path
    port: int = 0
    metrics_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"broker-{uuid.uuid4().hex[:6]}.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> BrokerProcess:
        for _ in range(20):
            self.port = self.port or random.randint(20000, 29999)
            self.metrics_port = random.randint(20000, 29999)
            path = self.workdir / f"broker-{self.port}.json"
            path.write_text(json.dumps({**self.config, "port": self.port, "metrics_port": self.metrics_port}))
            log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
            env = {**os.environ, "TOOLKIT_LOG_FORMAT": "json", "TOOLKIT_LOG_LEVEL": "INFO"}
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "memq", "broker", "--config", str(path)],
                stdout=log,
                stderr=log,
                cwd=ROOT,
                env=env,
            )
            log.close()
            if self._wait_started(timeout):
                return self
            self.port = 0  # most likely the port was taken: try another
        raise RuntimeError(f"broker did not start; log:\n{self.log_path.read_text()[-3000:]}")

    def _wait_started(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "broker_started" in self.log_path.read_text():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        raise RuntimeError(f"broker did not start in {timeout} s; log:\n{self.log_path.read_text()[-3000:]}")

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text()


class S3Proxy:
    """A TCP proxy in front of the S3 endpoint: stalls (``flowing`` cleared) or answers 503 to new connections."""

    def __init__(self, target: str) -> None:
        parsed = urllib.parse.urlsplit(target)
        self.target = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.closed = False
        self.fail_next = 0  # connections still to answer with 503 Slow Down
        self.failed = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.fail_next > 0:
                self.fail_next -= 1
                self.failed += 1
                threading.Thread(target=self._refuse, args=(client,), daemon=True).start()
                continue
            upstream = socket.create_connection(self.target)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _refuse(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError), client:
            received = b""
            while b"\r\n\r\n" not in received and (chunk := client.recv(65536)):
                received += chunk
            client.sendall(b"HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                self.flowing.wait()
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.closed = True
        self.flowing.set()
        self.listener.close()


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, its own CA: (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "broker.pem", directory / "broker.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def broker_config(directory: Path, topics: list[dict[str, Any]], bootstrap: str, **extra: Any) -> dict[str, Any]:
    """Settings for a broker storing under ``directory`` (``extra`` may name other storage)."""
    return {
        "storage": f"file://{directory}",
        "notification_bootstrap": bootstrap,
        "topics": topics,
        **extra,
    }


def read_notifications(bootstrap: str, topic: str, settle_s: float = 2.0) -> list[Notification]:
    """Every notification on partition 0 of ``topic``, from the beginning to the end."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"memq-it-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
    )
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        found: list[Notification] = []
        deadline = time.monotonic() + 30
        position = 0
        while position < high and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            position = (message.offset() or 0) + 1
            found.append(Notification.from_json(message.value() or b""))
        assert position >= high, f"read {position} of {high} notifications"
        return found
    finally:
        consumer.close()


def stored_records(notifications: list[Notification]) -> Iterator[tuple[Notification, Record]]:
    """Every record of every announced object, decoded from storage."""
    for notification in notifications:
        assert notification.path is not None
        data = Path(notification.path).read_bytes()
        assert len(data) == notification.object_size
        for _message, _index, _header, record in iter_object_records(data):
            yield notification, record
