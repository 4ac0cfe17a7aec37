"""Where the real services for integration tests come from.

In order: explicit environment variables (``KAFKA_BOOTSTRAP_SERVERS``, ``MYSQL_URL``, ``S3_ENDPOINT_URL``),
then testcontainers when a Docker engine answers, else the local stack launcher (``compose/stack``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_KEYS = ("KAFKA_BOOTSTRAP_SERVERS", "MYSQL_URL", "S3_ENDPOINT_URL")
LOCAL_CLUSTER_PREFIX = "plaintext:/rn:kafka:local:local_dev::cluster01:"


@dataclass(frozen=True)
class Services:
    kafka_bootstrap_servers: str
    mysql_url: str
    s3_endpoint_url: str
    psc_discovery_file: str
    source: str  # "environment", "testcontainers" or "launcher"

    @property
    def cluster_prefix(self) -> str:
        """The PSC cluster URI that the discovery file maps to the Kafka broker."""
        return LOCAL_CLUSTER_PREFIX


def write_discovery_file(bootstrap: str) -> str:
    fd, path = tempfile.mkstemp(prefix="psc-discovery-", suffix=".json")
    with os.fdopen(fd, "w") as out:
        json.dump({LOCAL_CLUSTER_PREFIX: {"connect": bootstrap}}, out)
    return path


@contextlib.contextmanager
def resolve_services() -> Iterator[Services]:
    if all(os.environ.get(key) for key in ENV_KEYS):
        bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        yield Services(
            bootstrap,
            os.environ["MYSQL_URL"],
            os.environ["S3_ENDPOINT_URL"],
            os.environ.get("PSC_DISCOVERY_FILE") or write_discovery_file(bootstrap),
            "environment",
        )
    elif docker_answers():
        with containers() as found:
            yield found
    else:
        yield from_launcher()


def docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def containers() -> Iterator[Services]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.minio import MinioContainer
    from testcontainers.mysql import MySqlContainer

    with (
        KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as kafka,
        MySqlContainer("mysql:8.0", username="root", password="test", dbname="test") as mysql,
        MinioContainer() as minio,
    ):
        bootstrap = kafka.get_bootstrap_server()
        host, port = mysql.get_container_host_ip(), mysql.get_exposed_port(3306)
        s3 = minio.get_config()["endpoint"]
        yield Services(
            bootstrap,
            f"mysql://root:test@{host}:{port}/test",
            s3 if s3.startswith("http") else f"http://{s3}",
            write_discovery_file(bootstrap),
            "testcontainers",
        )


def from_launcher() -> Services:
    stack = [sys.executable, str(ROOT / "compose" / "stack.py")]
    subprocess.run([*stack, "up"], check=True, stdout=sys.stderr)
    out = subprocess.run([*stack, "env", "--format", "json"], check=True, capture_output=True, text=True)
    env = json.loads(out.stdout)
    return Services(
        env["KAFKA_BOOTSTRAP_SERVERS"],
        env["MYSQL_URL"],
        env["S3_ENDPOINT_URL"],
        env["PSC_DISCOVERY_FILE"],
        "launcher",
    )
