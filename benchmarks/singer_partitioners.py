"""The partitioner experiment: many hosts writing one topic, round-robin vs single vs fixed-N.

``python -m benchmarks.singer_partitioners [--hosts 30] [--partitions 120] [--rate 300] [--seconds 3]
[--svg FILE] [--json FILE]``

Each simulated host has its own producer (lz4, linger 5 ms, acks=all) and sends a realistic access-log
corpus at ``--rate`` lines per second, choosing partitions with Singer's partitioner under test. For each
partitioner the report gives: compression ratio (raw value bytes over the bytes the broker stores),
produce requests, fan-out (partitions written per host: with one partition leader per broker, the broker
connections a host needs on a cluster), and skew (max over mean of the bytes per partition). ``--svg``
draws compression ratio and skew per partitioner.

Bytes stored are read from the broker's log directory (``--log-dir``, by default the local stack's
``$STACK_HOME/kafka/data``): the sizes of the topic's segment files.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from singer._partitioners import Partitioner, Partitions, create
from tests.services import resolve_services

PATHS = ["/api/v3/pins", "/api/v3/boards", "/api/v3/users/me", "/api/v3/search", "/static/app.js", "/healthz"]
AGENTS = ["Mozilla/5.0 (Macintosh)", "Mozilla/5.0 (iPhone)", "okhttp/4.12", "curl/8.5", "Pinterest/12.3 Android"]


def corpus(seed: int, count: int) -> list[bytes]:
    """Access-log lines: repeated structure, varying ids and numbers, as a web tier writes them."""
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        lines.append(
            (
                f"2026-11-29T09:{i // 6000 % 60:02d}:{i // 100 % 60:02d}.{i % 1000:03d}Z "
                f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)} "
                f"{rng.choice(['GET', 'GET', 'GET', 'POST'])} {rng.choice(PATHS)}?id={rng.randrange(10**9)} "
                f"{rng.choice([200, 200, 200, 304, 404, 500])} {rng.randrange(1, 900)}ms "
                f'"{rng.choice(AGENTS)}" req={rng.getrandbits(64):016x}\n'
            ).encode()
        )
    return lines


@dataclass
class Result:
    partitioner: str
    raw_bytes: int
    stored_bytes: int
    compression_ratio: float
    produce_requests: int
    fanout_per_host: float
    skew: float


class Host(threading.Thread):
    def __init__(self, index: int, bootstrap: str, topic: str, partitioner: Partitioner, args: Any) -> None:
        super().__init__(daemon=True)
        self.topic, self.partitioner, self.args = topic, partitioner, args
        self.lines = corpus(index, int(args.rate * args.seconds))
        self.stats: dict[str, Any] = {}
        self.bytes_per_partition: Counter[int] = Counter()
        self.producer = Producer(
            {"bootstrap.servers": bootstrap, "compression.type": "lz4", "linger.ms": 5, "acks": "all",
             "statistics.interval.ms": 500, "stats_cb": self._on_stats}
        )  # fmt: skip

    def _on_stats(self, text: str) -> None:
        self.stats = json.loads(text)

    def run(self) -> None:
        parts = Partitions(tuple(range(self.args.partitions)))
        tick = 0.05
        per_tick = max(1, int(self.args.rate * tick))
        started = time.monotonic()
        for start in range(0, len(self.lines), per_tick):
            for line in self.lines[start : start + per_tick]:
                partition = self.partitioner.partition(None, parts)
                self.producer.produce(self.topic, line, partition=partition)
                self.bytes_per_partition[partition] += len(line)
            self.producer.poll(0)
            time.sleep(max(0.0, started + (start // per_tick + 1) * tick - time.monotonic()))
        self.producer.flush(60)
        self.stats = {}
        deadline = time.monotonic() + 5
        while not self.stats and time.monotonic() < deadline:  # a statistics report from after the last request
            self.producer.poll(0.1)


def run(bootstrap: str, kind: str, params: dict[str, Any], args: Any) -> Result:
    topic = f"singer-partitioners-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=args.partitions, replication_factor=1)])[topic].result(60)
    try:
        hosts = [Host(i, bootstrap, topic, create(kind, params), args) for i in range(args.hosts)]
        for host in hosts:
            host.start()
        for host in hosts:
            host.join()
        stored = sum(f.stat().st_size for f in args.log_dir.glob(f"{topic}-*/*.log"))
    finally:
        for future in admin.delete_topics([topic]).values():
            future.result(60)
    raw = sum(sum(h.bytes_per_partition.values()) for h in hosts)
    requests = sum(b.get("req", {}).get("Produce", 0) for h in hosts for b in h.stats.get("brokers", {}).values())
    per_partition = Counter[int]()
    for h in hosts:
        per_partition.update(h.bytes_per_partition)
    loads = [per_partition.get(p, 0) for p in range(args.partitions)]
    label = kind if kind != "fixed" else f"fixed-{params['count']}"
    return Result(
        partitioner=label,
        raw_bytes=raw,
        stored_bytes=stored,
        compression_ratio=round(raw / stored, 3) if stored else float("nan"),
        produce_requests=requests,
        fanout_per_host=round(sum(len(h.bytes_per_partition) for h in hosts) / len(hosts), 1),
        skew=round(max(loads) / (sum(loads) / len(loads)), 2),
    )


def svg(results: list[Result]) -> str:
    """Two bar charts, compression ratio relative to round-robin and skew, one bar per partitioner."""
    width, height, bar = 760, 340, 40
    base = results[0].compression_ratio or 1.0
    series = [("compression vs round-robin", [r.compression_ratio / base for r in results], 0),
              ("skew (max/mean bytes per partition)", [r.skew for r in results], 380)]  # fmt: skip
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">']
    for title, values, x0 in series:
        top = max(values) or 1.0
        out.append(f'<text x="{x0 + 10}" y="20" font-size="13">{title}</text>')
        for i, (result, value) in enumerate(zip(results, values, strict=True)):
            h = 200 * value / top
            x = x0 + 15 + i * bar
            out.append(f'<rect x="{x}" y="{240 - h:.1f}" width="{bar - 8}" height="{h:.1f}" fill="#4a7ab5"/>')
            out.append(f'<text x="{x}" y="{235 - h:.1f}" font-size="10">{value:.2f}</text>')
            turn = f"rotate(45 {x + 4} 255)"
            out.append(f'<text x="{x + 4}" y="255" font-size="10" transform="{turn}">{result.partitioner}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.singer_partitioners", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--hosts", type=int, default=30)
    parser.add_argument("--partitions", type=int, default=120)
    parser.add_argument("--rate", type=float, default=300.0, help="lines per second per host")
    parser.add_argument("--seconds", type=float, default=3.0)
    stack = Path(os.environ.get("STACK_HOME", Path(__file__).resolve().parents[1] / ".stack"))
    parser.add_argument("--log-dir", type=Path, default=stack / "kafka" / "data", help="the broker's log.dirs")
    parser.add_argument("--svg", type=Path, help="draw the figure into this file")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    if not args.log_dir.is_dir():
        parser.error(f"no broker log directory at {args.log_dir}; pass --log-dir")
    plan: list[tuple[str, dict[str, Any]]] = [("round_robin", {}), ("single", {})]
    plan += [("fixed", {"count": n}) for n in (1, 2, 4, 8, 16)]
    results = []
    with resolve_services() as services:
        for kind, params in plan:
            result = run(services.kafka_bootstrap_servers, kind, params, args)
            results.append(result)
            print(json.dumps(asdict(result)), flush=True)
    if args.svg:
        args.svg.write_text(svg(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
