"""Pacer: jobs enqueued, two brokers and a worker pool as processes, one broker killed, every job done.

The brokers keep their jobs in fresh databases of the MySQL server and agree on partition owners through a
fresh Kafka control topic; both are removed at the end.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from demos._common import KAFKA_CLUSTER, Child, DemoFailure, Services, create_topic, delete_topic, step, wait_until
from pacer import Client, Descriptor, Job, JobState
from pacer.storage.mysql import MysqlStore

QUEUE = "demo"
JOBS_BEFORE, JOBS_AFTER = 300, 300
CONTROL_PARTITIONS = 4
TOKEN = f"demo-{uuid.uuid4().hex}"


def run(services: Services) -> None:
    run_id = uuid.uuid4().hex[:8]
    with (
        tempfile.TemporaryDirectory(prefix="demo-pacer-") as tmp,
        resources(services, run_id) as config,
        contextlib.ExitStack() as cleanup,
    ):
        workdir = Path(tmp)
        step("pacer: two brokers and a worker pool")
        brokers = [cleanup.enter_context(start_broker(config, workdir, f"pacer-broker-{n}")) for n in (1, 2)]
        urls = [url for _, url in brokers]
        client = Client(urls, admin_token=TOKEN, retry_for=60)
        client.create_queue(QUEUE, partitions=8, lease=timedelta(seconds=5))
        waited = wait_until("both brokers own partitions", lambda: len(owners(client)) == 2, 45)
        print(f"queue {QUEUE!r}: 8 partitions over {sorted(owners(client))} ({waited:.1f} s to balance)")
        done = workdir / "done.txt"
        done.touch()

        def finished() -> int:
            return len(done.read_text().splitlines())

        worker_args = ["pacer", "worker", "demos.jobs:handle", "--queue", QUEUE, "--concurrency", "8"]
        worker_args += [arg for url in urls for arg in ("--broker", url)]
        worker = cleanup.enter_context(Child("pacer-worker", worker_args, workdir, {"DEMO_JOBS_DONE": str(done)}))
        worker.wait_for("serving")
        print(f"worker pool pid {worker.pid}: 8 jobs at once")

        step("pacer: enqueue, then kill a broker while the jobs run")
        started = time.monotonic()
        descriptors = enqueue(client, [Job(f"{run_id}-{i}".encode()) for i in range(JOBS_BEFORE)])
        wait_until("the first jobs finish", lambda: finished() >= JOBS_BEFORE // 3, 30, 0.05)
        (victim, victim_url), (_survivor, survivor_url) = brokers
        victim.kill()
        killed_at = time.monotonic()
        print(f"SIGKILL {victim_url} after {finished()} of {JOBS_BEFORE} jobs were done")
        client.brokers = [survivor_url]
        more = [Job(f"{run_id}-{i}".encode()) for i in range(JOBS_BEFORE, JOBS_BEFORE + JOBS_AFTER)]
        descriptors += enqueue(client, more)
        print(f"enqueued {JOBS_AFTER} more through {survivor_url}")
        wait_until("the survivor owns every partition", lambda: owners(client) == {survivor_url}, 60)
        print(f"{survivor_url} took over every partition {time.monotonic() - killed_at:.1f} s after the kill")
        wait_until("every job succeeds", lambda: client.count(QUEUE, JobState.SUCCEEDED) >= len(descriptors), 60, 0.25)
        elapsed = time.monotonic() - started
        print(f"all done {time.monotonic() - killed_at:.1f} s after the kill, {elapsed:.1f} s after the first job")

        step("pacer: check")
        states = {str(d): info.state for d, info in client.lookup(descriptors).items()}
        runs = done.read_text().splitlines()
        code = worker.stop()
        succeeded = sum(1 for state in states.values() if state is JobState.SUCCEEDED)
        lost = len(descriptors) - len(states)
        print(f"{len(descriptors)} jobs: {succeeded} succeeded, {lost} lost, {len(runs)} runs by the handler")
        print(f"{len(runs) - len(set(runs))} ran twice (at least once allows it); worker exited {code} on SIGTERM")
        if succeeded != len(descriptors) or set(runs) != {str(d) for d in descriptors}:
            raise DemoFailure(f"{len(descriptors) - succeeded} jobs did not succeed")


def enqueue(client: Client, jobs: list[Job]) -> list[Descriptor]:
    """In calls of 25 jobs: each call fills one partition, so the jobs reach every partition and broker."""
    return [d for start in range(0, len(jobs), 25) for d in client.enqueue(QUEUE, jobs[start : start + 25])]


def owners(client: Client) -> set[str]:
    found = {p.owner for p in client.partitions(QUEUE)}
    return set() if None in found else {owner for owner in found if owner}


@contextlib.contextmanager
def resources(services: Services, run_id: str) -> Iterator[dict[str, Any]]:
    """A broker configuration on fresh databases and a fresh control topic, both dropped afterwards."""
    parts = urlsplit(services.mysql_url)
    shards = [urlunsplit((parts.scheme, parts.netloc, f"/pacer_demo_{run_id}_s{i}", "", "")) for i in range(2)]
    topic = f"demo-pacer-control-{run_id}"
    create_topic(services.kafka_bootstrap, topic, CONTROL_PARTITIONS)
    try:
        yield {
            "storage": shards,
            "control_topic": KAFKA_CLUSTER + topic,
            "control_partitions": CONTROL_PARTITIONS,
            "group_id": f"demo-pacer-{run_id}",
            "admin_token": TOKEN,
            "session_timeout_ms": 6000,
            "rebalance_timeout_ms": 8000,
            "refill_interval_s": 0.5,
            "expire_interval_s": 0.5,
            "psc": {"psc.discovery.file": str(services.discovery_file)},
        }
    finally:
        delete_topic(services.kafka_bootstrap, topic)
        MysqlStore(shards).drop_databases()


@contextlib.contextmanager
def start_broker(config: dict[str, Any], workdir: Path, name: str) -> Iterator[tuple[Child, str]]:
    """A broker process and its URL; stopped with SIGTERM on the way out (a no-op once it was killed)."""
    path = workdir / f"{name}.toml"
    path.write_text(toml(config))
    with Child(name, ["pacer", "broker", "--config", str(path)], workdir) as broker:
        url = broker.wait_for(r"listening on (http://\S+)")[1]
        print(f"{name} pid {broker.pid} at {url}")
        yield broker, url


def toml(config: dict[str, Any]) -> str:
    """Flat settings and one-level tables as TOML (JSON strings and lists are valid TOML)."""
    lines = [f"{key} = {json.dumps(value)}" for key, value in config.items() if not isinstance(value, dict)]
    for key, table in config.items():
        if isinstance(table, dict):
            lines += [f"[{key}]", *(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"
