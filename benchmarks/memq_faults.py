"""MemQ brokers under repeated faults: the long version of the SIGKILL and S3 fault tests.

``python -m benchmarks.memq_faults [--rounds N] [--json FILE]`` runs, per round, against the shared Kafka and
S3 endpoint:

1. ``sigkill``   producers stream into a broker (S3 storage through a fault proxy); the broker is SIGKILLed
                 at a random moment holding sealed, uploading and open batches, then restarted;
2. ``s3-503``    the proxy answers 503 Slow Down to a random share of connections for a while;
3. ``s3-stall``  the proxy stops forwarding for a few seconds, longer than one upload attempt.

After every round, each record whose producer got OK must be stored and announced; records that failed
or timed out at the producer are counted, never required. The report gives, per fault, records
acknowledged, failed, and acknowledged-but-missing (which must be 0).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3
from confluent_kafka.admin import AdminClient, NewTopic

from memq._format import iter_object_records
from memq._producer import DeliveredRecord, Producer
from tests.integration.memq.brokers import BrokerProcess, S3Proxy, broker_config, read_notifications
from tests.services import resolve_services

FAULTS = ("sigkill", "s3-503", "s3-stall")


@dataclass
class Outcome:
    fault: str
    round: int
    acknowledged: int
    failed: int
    missing: int


def _stream(producer: Producer, seconds: float, prefix: bytes) -> dict[bytes, Future[DeliveredRecord]]:
    sent: dict[bytes, Future[DeliveredRecord]] = {}
    started = time.monotonic()
    i = 0
    while time.monotonic() - started < seconds:
        value = prefix + b"-%08d" % i
        try:
            sent[value] = producer.send("faults", value)
        except BufferError:
            time.sleep(0.01)
            continue
        i += 1
        if i % 500 == 0:
            time.sleep(0.01)
    return sent


def _round(fault: str, number: int, env: dict[str, Any], workdir: Path) -> Outcome:
    notify = f"memq-faults-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": env["bootstrap"]})
    admin.create_topics([NewTopic(notify, 1, 1)])[notify].result(30)
    proxy = S3Proxy(env["s3"])
    topic = {"name": "faults", "notification_topic": notify, "batch_max_ms": 300, "batch_max_bytes": 1 << 20}
    config = broker_config(
        workdir,
        [topic],
        env["bootstrap"],
        storage=f"s3://{env['bucket']}/{notify}?max_attempts=1",
        s3_endpoint_url=proxy.url,
        upload_attempt_timeout_s=2.0,
        producer_request_timeout_s=30.0,
    )
    broker = BrokerProcess(config, workdir).start()
    rng = random.Random(number)
    sent: dict[bytes, Future[DeliveredRecord]] = {}
    try:
        with Producer(brokers=[broker.address], linger_ms=20, request_timeout_ms=15000) as producer:
            sent.update(_stream(producer, rng.uniform(0.5, 2.0), b"before"))
            if fault == "sigkill":
                broker.signal(signal.SIGKILL)
                broker.wait()
                sent.update(_stream(producer, 1.0, b"down"))
                broker.start()
            elif fault == "s3-503":
                proxy.fail_next = rng.randint(1, 6)
            else:
                proxy.flowing.clear()
                sent.update(_stream(producer, rng.uniform(2.5, 5.0), b"stalled"))
                proxy.flowing.set()
            sent.update(_stream(producer, 1.0, b"after"))
            producer.flush(60)
    finally:
        proxy.close()
        broker.stop()
    acknowledged = {v for v, f in sent.items() if f.done() and f.exception() is None}
    s3 = env["client"]
    announced: set[bytes] = set()
    for notification in read_notifications(env["bootstrap"], notify):
        data = s3.get_object(Bucket=notification.bucket, Key=notification.key)["Body"].read()
        announced.update(record.value for *_, record in iter_object_records(data))
    return Outcome(fault, number, len(acknowledged), len(sent) - len(acknowledged), len(acknowledged - announced))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memq_faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per fault")
    parser.add_argument("--only", choices=FAULTS, action="append", help="run only these faults (repeatable)")
    parser.add_argument("--json", type=Path, help="write the outcomes here")
    args = parser.parse_args(argv)
    outcomes: list[Outcome] = []
    with resolve_services() as services, tempfile.TemporaryDirectory(prefix="memq-faults-") as tmp:
        s3 = boto3.client(
            "s3",
            endpoint_url=services.s3_endpoint_url,
            aws_access_key_id="memq",
            aws_secret_access_key="memq",
            region_name="us-east-1",
        )
        bucket = f"memq-faults-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        env: dict[str, Any] = {"bootstrap": services.kafka_bootstrap_servers, "s3": services.s3_endpoint_url}
        env |= {"bucket": bucket, "client": s3}
        try:
            for fault in args.only or FAULTS:
                for number in range(args.rounds):
                    outcome = _round(fault, number, env, Path(tmp))
                    outcomes.append(outcome)
                    print(
                        f"{fault} round {number}: {outcome.acknowledged} acknowledged, {outcome.failed} failed or "
                        f"timed out, {outcome.missing} acknowledged but missing",
                        file=sys.stderr,
                    )
        finally:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    s3.delete_object(Bucket=bucket, Key=item["Key"])
            s3.delete_bucket(Bucket=bucket)
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=2))
    missing = sum(o.missing for o in outcomes)
    print(f"{len(outcomes)} rounds; acknowledged records missing from storage or notifications: {missing}")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
