"""Pacer under a schedule of faults: every job must complete, none may be lost.

``python -m benchmarks.pacer_faults [--rounds N] [--jobs N] [--brokers N] [--every S] [--pause |
--mysql-restart | --kafka-outage] [--down S]`` starts brokers as processes, keeps 4 worker threads dequeuing
and acking through :class:`pacer.Client` while jobs are enqueued, and every ``--every`` seconds injects a
fault:
- by default SIGKILLs a random broker and starts a replacement; ``--pause`` SIGSTOPs it until the others
  took over, then SIGCONTs it (shared Kafka and MariaDB);
- ``--mysql-restart`` stops the MariaDB server for ``--down`` seconds and starts it again: a private
  ``mariadbd`` (own data directory and free port), the shared one is never stopped;
- ``--kafka-outage`` stops Kafka for ``--down`` seconds and starts it again: a private Kafka broker from the
  stack launcher (own STACK_HOME and ports).
With MariaDB or Kafka down, half of each round's jobs are enqueued during the outage (the client retries
while MariaDB is down; with Kafka down the enqueue is stored at once).
At the end every job must be SUCCEEDED. It reports jobs, faults, how many jobs ran more than once (at least
once allows it) and the run's length. The integration tests run a short version of each
(tests/integration/pacer/test_broker_faults.py, test_mysql_restart.py, test_kafka_outage.py).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.singer_outage import private_kafka
from pacer import Descriptor, Job, JobState
from pacer.client import Client
from pacer.storage.mysql import MysqlStore
from tests.integration.pacer.brokers import BrokerProcess
from tests.integration.pacer.private_mariadb import PrivateMariadb
from tests.services import LOCAL_CLUSTER_PREFIX, resolve_services

TOKEN = "faults"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pacer_faults", description=__doc__)
    parser.add_argument("--rounds", type=int, default=10, help="faults to inject")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--brokers", type=int, default=3)
    parser.add_argument("--every", type=float, default=15.0, help="seconds between faults")
    faults = parser.add_mutually_exclusive_group()
    faults.add_argument("--pause", action="store_true", help="SIGSTOP/SIGCONT instead of SIGKILL")
    faults.add_argument("--mysql-restart", action="store_true", help="stop and start a private MariaDB")
    faults.add_argument("--kafka-outage", action="store_true", help="stop and start a private Kafka")
    parser.add_argument("--down", type=float, default=10.0, help="seconds MariaDB or Kafka stays down")
    args = parser.parse_args(argv)

    with resolve_services() as services, tempfile.TemporaryDirectory() as workdir, contextlib.ExitStack() as stack:
        parts = urlsplit(services.mysql_url)
        netloc, bootstrap, discovery, prefix = parts.netloc, services.kafka_bootstrap_servers, "", ""
        outage: tuple[Callable[[], None], Callable[[], None]] | None = None  # stop and start a service
        if args.mysql_restart:
            mariadb = PrivateMariadb(Path(workdir) / "mariadb")
            stack.callback(mariadb.close)
            netloc = f"root@127.0.0.1:{mariadb.port}"
            outage = (mariadb.stop, mariadb.start)
        if args.kafka_outage:
            kafka = stack.enter_context(private_kafka(Path(workdir)))
            bootstrap, discovery, prefix = kafka.bootstrap, kafka.discovery_file, LOCAL_CLUSTER_PREFIX
            outage = (kafka.down, kafka.up)

        shards = [
            urlunsplit((parts.scheme, netloc, f"/pacer_faults_{uuid.uuid4().hex[:8]}_s{i}", "", "")) for i in range(2)
        ]
        topic = f"pacer-faults-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, num_partitions=8, replication_factor=1)])[topic].result(30)
        config: dict[str, Any] = {
            "storage": shards,
            "control_topic": (prefix or services.cluster_prefix) + topic,
            "control_partitions": 8,
            "group_id": f"pacer-faults-{uuid.uuid4().hex[:6]}",
            "admin_token": TOKEN,
            "session_timeout_ms": 6000,
            "rebalance_timeout_ms": 8000,
            "refill_interval_s": 0.5,
            "expire_interval_s": 0.5,
            "psc": {"psc.discovery.file": discovery or services.psc_discovery_file},
        }
        started = 0

        def start() -> BrokerProcess:
            nonlocal started
            started += 1
            return BrokerProcess(config, Path(workdir), f"broker{started}")

        brokers = [start() for _ in range(args.brokers)]
        try:
            report = _run(brokers, start, args, outage)
        finally:
            for broker in brokers:
                broker.stop()
            if not args.kafka_outage:
                admin.delete_topics([topic])
            if not args.mysql_restart:
                MysqlStore(shards).drop_databases()
    for key, value in report.items():
        print(f"{key:28} {value}")
    return 0 if report["lost"] == 0 and report["not_succeeded"] == 0 else 1


def _run(
    brokers: list[BrokerProcess],
    start: Any,
    args: argparse.Namespace,
    outage: tuple[Callable[[], None], Callable[[], None]] | None,
) -> dict[str, Any]:
    client = Client([b.url for b in brokers], admin_token=TOKEN, retry_for=120)
    client.create_queue("faults", partitions=8, lease=timedelta(seconds=5))
    stop = threading.Event()
    acked: dict[str, int] = {}
    lock = threading.Lock()

    def work() -> None:
        local = Client([b.url for b in brokers], retry_for=120)
        while not stop.is_set():
            local.brokers = [b.url for b in brokers]
            try:
                leases = local.dequeue("faults", 20)
                if leases:
                    local.ack("faults", succeeded=leases)
                    with lock:
                        for lease in leases:
                            acked[str(lease.descriptor)] = acked.get(str(lease.descriptor), 0) + 1
                else:
                    time.sleep(0.05)
            except Exception as exc:  # a broker died under us: the client retries, the lease expires
                print(f"worker: {exc!r}", file=sys.stderr)
                time.sleep(0.5)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(4)]
    for worker in workers:
        worker.start()
    descriptors: list[Descriptor] = []
    per_round = max(1, args.jobs // max(1, args.rounds))
    began = time.monotonic()
    for round_number in range(args.rounds):
        descriptors.extend(_enqueue(client, [Job(f"{round_number}-{i}".encode()) for i in range(per_round)]))
        time.sleep(args.every)
        if outage is not None:  # half the round's jobs are enqueued while MariaDB or Kafka is down
            stop_service, start_service = outage
            stop_service()
            batch = [Job(f"{round_number}-during-{i}".encode()) for i in range(per_round // 2)]
            enqueuing = threading.Thread(target=lambda b=batch: descriptors.extend(_enqueue(client, b)))
            enqueuing.start()
            time.sleep(args.down)
            start_service()
            enqueuing.join()
            print(f"round {round_number + 1}: {args.down:g} s without the service", file=sys.stderr)
            continue
        victim = random.choice(brokers)
        if args.pause:
            victim.signal(signal.SIGSTOP)
            time.sleep(12)
            victim.signal(signal.SIGCONT)
        else:
            victim.kill()
            brokers.remove(victim)
            brokers.append(start())
        client.brokers = [b.url for b in brokers]
        print(f"round {round_number + 1}: {'paused' if args.pause else 'killed'} {victim.url}", file=sys.stderr)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and client.count("faults", JobState.SUCCEEDED) < len(descriptors):
        time.sleep(1)
    stop.set()
    states = {
        str(d): info.state
        for start in range(0, len(descriptors), 1000)  # a lookup takes at most 1000 descriptors
        for d, info in client.lookup(descriptors[start : start + 1000]).items()
    }
    return {
        "jobs": len(descriptors),
        "faults": args.rounds,
        "succeeded": sum(1 for s in states.values() if s is JobState.SUCCEEDED),
        "lost": len(descriptors) - len(states),
        "not_succeeded": sum(1 for s in states.values() if s is not JobState.SUCCEEDED),
        "acked_more_than_once": sum(1 for n in acked.values() if n > 1),
        "seconds": round(time.monotonic() - began, 1),
    }


def _enqueue(client: Client, jobs: list[Job]) -> list[Descriptor]:
    """In calls of 100 jobs (an enqueue takes at most 1000, and each call fills one partition)."""
    return [d for start in range(0, len(jobs), 100) for d in client.enqueue("faults", jobs[start : start + 100])]


if __name__ == "__main__":
    sys.exit(main())
