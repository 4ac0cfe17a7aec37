"""Singer's partitioners on the real broker: compression, produce requests, connections and skew.

``python -m benchmarks.singer_partitioners [--hosts 30] [--partitions 120] [--scale 1.0] [--json FILE]``

The partitioner experiment of Pinterest's article "Optimizing Pinterest's Data Ingestion Stack": many hosts
ship the same kind of log to one topic of 120 partitions, each host through its own producer, and the
partitioner decides how far each host's records are spread. For every partitioner (round-robin, single,
fixed-N for N in 1, 2, 4, 8, 16) a fresh topic is created and every simulated host sends a deterministic web
access log through Singer's own writer (``singer._writer.Writer``: a ``psc.Producer`` configured as the agent
configures it, the agent's headers, its default compression) with the agent's partitioner class. Measured per
partitioner:

- compression ratio: raw line bytes against the bytes the broker stores (DescribeLogDirs, per partition);
- produce requests, from librdkafka's statistics of every producer (it sends one partition's batch per request);
- broker connections: brokers in state UP, summed over producers; and, because the stack runs one broker,
  the connections the same choice of partitions would need on the article's 30 brokers (partition p led by
  broker p mod 30);
- skew: the largest partition's stored bytes over the mean of all partitions.

``--png`` draws the figure (``docs/singer-partitioners.png``); ``--scale 0.02`` runs in seconds.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import struct
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psc
from singer._config import AgentSettings, StreamSettings
from singer._partitioners import Partitioner, Partitions, create
from singer._records import Record
from singer._watermark import Watermark
from singer._writer import Batch, Writer

ROOT = Path(__file__).resolve().parents[1]
FIGURE = ROOT / "docs" / "singer-partitioners.png"
ARTICLE_BROKERS = 30  # the article's cluster: 120 partitions on 30 brokers
STATS_INTERVAL_MS = 100

# (label, partitioner type, its arguments), in the order of the article's figure: most spread first.
PARTITIONERS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("round-robin", "round_robin", {}),
    ("fixed-16", "fixed", {"count": 16}),
    ("fixed-8", "fixed", {"count": 8}),
    ("fixed-4", "fixed", {"count": 4}),
    ("fixed-2", "fixed", {"count": 2}),
    ("fixed-1", "fixed", {"count": 1}),
    ("single", "single", {}),
)


# --- the corpus ------------------------------------------------------------------------------------------

_METHODS = (("GET", 80), ("POST", 14), ("PUT", 3), ("DELETE", 2), ("HEAD", 1))
_STATUSES = ((200, 86), (304, 5), (301, 2), (404, 4), (400, 1), (500, 1), (503, 1))
_PATHS = (
    "/", "/api/v3/pins/{id}/", "/api/v3/users/{user}/boards/", "/api/v3/boards/{id}/pins/?page={page}",
    "/api/v3/search/pins/?q={word}&rs=typed", "/pin/{id}/", "/{user}/", "/{user}/{word}/",
    "/static/js/app.{hash}.js", "/static/css/main.{hash}.css", "/resource/HomefeedResource/get/",
    "/_ngjs/resource/UserHomefeedResource/get/", "/login/", "/logout/", "/healthcheck",
)  # fmt: skip
_WORDS = ("recipes", "garden", "wedding", "travel", "diy", "fitness", "quotes", "art", "cars", "hair", "decor")
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
    "Pinterest for Android/12.24.0 (Pixel 8; 14)",
    "Pinterest for iOS/12.24 (iPhone15,2; 17.5)",
    "curl/8.5.0",
)
_REFERERS = ("-", "https://www.pinterest.com/", "https://www.google.com/", "https://www.pinterest.com/search/pins/")


def _weighted(rng: random.Random, choices: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


class AccessLog:
    """A web server's access log, deterministic for (seed, host): repeated structure, varying fields."""

    def __init__(self, seed: int, host: int) -> None:
        self.rng = random.Random(f"{seed}/{host}")
        self.host = f"web-{host:03d}"
        self.clients = [".".join(str(self.rng.randrange(1, 255)) for _ in range(4)) for _ in range(64)]
        self.users = [f"{self.rng.choice(_WORDS)}{self.rng.randrange(10_000)}" for _ in range(200)]
        self.now_ms = 1_767_225_600_000 + self.rng.randrange(3_600_000)  # 2026-01-01, a random hour

    def lines(self, count: int) -> list[bytes]:
        rng, out = self.rng, []
        for _ in range(count):
            self.now_ms += rng.randrange(0, 40)
            seconds, millis = divmod(self.now_ms, 1000)
            stamp = time.strftime("%d/%b/%Y:%H:%M:%S", time.gmtime(seconds))
            path = rng.choice(_PATHS).format(
                id=rng.randrange(10**17, 10**18), user=rng.choice(self.users), page=rng.randrange(1, 20),
                word=rng.choice(_WORDS), hash=f"{rng.getrandbits(32):08x}",
            )  # fmt: skip
            status = _weighted(rng, _STATUSES)
            size = 0 if status == 304 else rng.randrange(200, 60_000)
            out.append(
                f'{rng.choice(self.clients)} - - [{stamp}.{millis:03d} +0000] "{_weighted(rng, _METHODS)} {path} '
                f'HTTP/1.1" {status} {size} "{rng.choice(_REFERERS)}" "{rng.choice(_AGENTS)}" '
                f"rt={rng.expovariate(1 / 0.08):.3f} upstream={self.host}:8080\n".encode()
            )
        return out


# --- metrics -------------------------------------------------------------------------------------------


def skew(partition_bytes: Sequence[int]) -> float:
    """Largest partition over the mean of all partitions (1.0: perfectly even)."""
    total = sum(partition_bytes)
    if not partition_bytes or total <= 0:
        raise ValueError("skew needs at least one partition holding bytes")
    return max(partition_bytes) / (total / len(partition_bytes))


def produce_requests(stats: Mapping[str, Any]) -> int:
    """Produce requests one producer has sent, from one librdkafka statistics object (cumulative)."""
    return sum(int(b.get("req", {}).get("Produce", 0)) for b in stats.get("brokers", {}).values())


def connections(stats: Mapping[str, Any]) -> int:
    """Brokers one producer holds an open connection to (state UP)."""
    return sum(1 for b in stats.get("brokers", {}).values() if b.get("state") == "UP")


def layout_connections(partitions_per_host: Sequence[set[int]], brokers: int = ARTICLE_BROKERS) -> int:
    """Connections the hosts would hold if partition p were led by broker p mod ``brokers``."""
    return sum(len({p % brokers for p in parts}) for parts in partitions_per_host)


# --- the broker's view: stored bytes per partition (DescribeLogDirs) --------------------------------------


def _string(data: bytes, at: int) -> tuple[str, int]:
    (size,) = struct.unpack_from(">h", data, at)
    return data[at + 2 : at + 2 + size].decode(), at + 2 + size


def parse_log_dirs(body: bytes, topic: str) -> dict[int, int]:
    """Partition -> size in bytes for ``topic``, from a DescribeLogDirs v1 response body (after the header)."""
    sizes: dict[int, int] = {}
    _throttle, results = struct.unpack_from(">ii", body, 0)
    at = 8
    for _ in range(results):
        (error,) = struct.unpack_from(">h", body, at)
        if error:
            raise RuntimeError(f"DescribeLogDirs: error code {error}")
        _log_dir, at = _string(body, at + 2)
        (topics,) = struct.unpack_from(">i", body, at)
        at += 4
        for _ in range(topics):
            name, at = _string(body, at)
            (parts,) = struct.unpack_from(">i", body, at)
            at += 4
            for _ in range(parts):
                partition, size, _lag, future = struct.unpack_from(">iqq?", body, at)
                at += 21
                if name == topic and not future:
                    sizes[partition] = sizes.get(partition, 0) + size
    return sizes


def stored_bytes(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """Bytes the broker holds per partition of ``topic`` (single-broker stack: the bootstrap broker)."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    client = b"singer-bench"
    header = struct.pack(">hhih", 35, 1, 7, len(client)) + client  # DescribeLogDirs v1
    name = topic.encode()
    body = struct.pack(">ih", 1, len(name)) + name + struct.pack(">i", partitions)
    body += b"".join(struct.pack(">i", p) for p in range(partitions))
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
        (size,) = struct.unpack(">i", _recv(sock, 4))
        response = _recv(sock, size)
    sizes = parse_log_dirs(response[4:], topic)  # after the correlation id
    return {p: sizes.get(p, 0) for p in range(partitions)}


def _recv(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise OSError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


# --- one run -------------------------------------------------------------------------------------------


class Statistics:
    """librdkafka statistics of every producer, through PSC's ``stats_cb``: the latest object per producer."""

    def __init__(self) -> None:
        self.latest: dict[str, dict[str, Any]] = {}  # producer name -> its latest statistics

    def producer(self, config: Mapping[str, str]) -> psc.Producer:
        """A ``psc.Producer`` reporting its statistics here: a producer factory for Singer's writer."""
        return psc.Producer(
            {**config, "psc.producer.statistics.interval.ms": str(STATS_INTERVAL_MS), "stats_cb": self._on_stats}
        )

    def _on_stats(self, text: str) -> None:
        stats = json.loads(text)
        self.latest[stats["name"]] = stats


class Recording(Partitioner):
    """Delegates to the agent's partitioner and remembers which partitions it chose."""

    def __init__(self, inner: Partitioner) -> None:
        self.inner = inner
        self.chosen: set[int] = set()

    def partition(self, key: bytes | None, partitions: Partitions) -> int:
        chosen = self.inner.partition(key, partitions)
        self.chosen.add(chosen)
        return chosen


@dataclass
class Outcome:
    partitioner: str
    hosts: int
    partitions: int
    records: int
    raw_bytes: int
    stored_bytes: int
    compression_ratio: float  # raw / stored
    produce_requests: int
    connections: int  # measured: brokers UP, summed over producers (one broker here)
    connections_30_brokers: int  # on 30 brokers, partition p led by broker p mod 30
    partitions_written: int
    skew: float
    seconds: float
    partition_bytes: list[int] = field(repr=False, default_factory=list)


@dataclass(frozen=True)
class Setup:
    bootstrap: str
    cluster_prefix: str  # topic URI = prefix + topic name
    discovery_file: str
    hosts: int = 30
    partitions: int = 120
    lines_per_host: int = 10_000
    batch_lines: int = 500
    compression: str = "lz4"  # Singer's default
    seed: int = 7


def run_partitioner(setup: Setup, label: str, kind: str, params: Mapping[str, Any]) -> Outcome:
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"singer-partitioners-{label}-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": setup.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=setup.partitions, replication_factor=1)])[topic].result(60)
    try:
        _wait_for_partitions(admin, topic, setup.partitions)
        return _produce(setup, topic, label, kind, params)
    finally:
        admin.delete_topics([topic])[topic].result(60)


def _wait_for_partitions(admin: Any, topic: str, partitions: int, limit_s: float = 30.0) -> None:
    """Until the broker's metadata lists every partition with a leader (a new topic takes a moment)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        found = admin.list_topics(topic, timeout=10).topics.get(topic)
        parts = {} if found is None or found.error is not None else found.partitions
        if len(parts) == partitions and all(p.leader >= 0 for p in parts.values()):
            return
        time.sleep(0.2)
    raise RuntimeError(f"topic {topic}: its {partitions} partitions did not appear within {limit_s:.0f} s")


def _produce(setup: Setup, topic: str, label: str, kind: str, params: Mapping[str, Any]) -> Outcome:
    random.seed(f"{setup.seed}/{label}")  # the partitioners draw from the global generator
    topic_uri = setup.cluster_prefix + topic
    agent = AgentSettings.model_validate({"producer": {"psc.discovery.file": setup.discovery_file}})
    stream = StreamSettings.model_validate(
        {"dir": "/var/log/web", "pattern": r"access\.log", "topic_uri": topic_uri, "compression": setup.compression,
         "partitioner": {"type": kind, **params}}
    )  # fmt: skip
    started = time.monotonic()
    statistics = Statistics()
    hosts = [
        (AccessLog(setup.seed, h), Writer(stream.producer_config(agent), statistics.producer),
         Recording(create(kind, params)))
        for h in range(setup.hosts)
    ]  # fmt: skip
    batches: list[Batch] = []
    raw = records = 0
    for sent in range(0, setup.lines_per_host, setup.batch_lines):
        for index, (log, writer, partitioner) in enumerate(hosts):
            lines = log.lines(min(setup.batch_lines, setup.lines_per_host - sent))
            batch = _send(writer, topic_uri, partitioner, index, sent, lines)
            batches.append(batch)
            raw += sum(map(len, lines))
            records += len(lines)
            writer.poll(0.0)
    for _, writer, _ in hosts:
        writer.producer.flush(120.0)
    time.sleep(3 * STATS_INTERVAL_MS / 1000)
    for _, writer, _ in hosts:
        writer.poll(0.0)  # serve the statistics emitted after the last delivery
    failed = [b for b in batches if not b.ok]
    if failed:
        raise RuntimeError(f"{label}: {len(failed)} batches not delivered: {failed[0].failures[:1]}")
    stats = list(statistics.latest.values())
    for _, writer, _ in hosts:
        writer.close(10.0)
    seconds = time.monotonic() - started
    sizes = stored_bytes(setup.bootstrap, topic, setup.partitions)
    per_partition = [sizes[p] for p in range(setup.partitions)]
    stored = sum(per_partition)
    return Outcome(
        partitioner=label,
        hosts=setup.hosts,
        partitions=setup.partitions,
        records=records,
        raw_bytes=raw,
        stored_bytes=stored,
        compression_ratio=raw / stored,
        produce_requests=sum(map(produce_requests, stats)),
        connections=sum(map(connections, stats)),
        connections_30_brokers=layout_connections([p.chosen for _, _, p in hosts]),
        partitions_written=sum(1 for size in per_partition if size),
        skew=skew(per_partition),
        seconds=seconds,
        partition_bytes=per_partition,
    )


def _send(
    writer: Writer, topic_uri: str, partitioner: Partitioner, host: int, offset: int, lines: list[bytes]
) -> Batch:
    """One batch as the agent sends it: records with their next offsets, the agent's headers."""
    records, end = [], offset * 200
    for value in lines:
        end += len(value)
        records.append(Record(value, end))
    mark = Watermark(1, 1000 + host, end, "", 0, f"/var/log/web/access.log#{host}")
    batch = Batch(mark, len(records), end, time.monotonic() + 120)
    file_id = struct.pack(">Q", host)
    writer.send(topic_uri, records, batch, partitioner, 1000 + host, b"web-%03d" % host, lambda _: file_id)
    return batch


# --- report --------------------------------------------------------------------------------------------


def table(outcomes: Sequence[Outcome]) -> str:
    base = outcomes[0].compression_ratio
    head = (
        f"{'partitioner':<12} {'ratio':>6} {'vs rr':>6} {'requests':>8} {'conns':>5} "
        f"{'conns@30':>8} {'parts':>5} {'skew':>6} {'MB raw':>7} {'s':>5}"
    )
    rows = [
        f"{o.partitioner:<12} {o.compression_ratio:>6.2f} {o.compression_ratio / base:>6.2f} {o.produce_requests:>8} "
        f"{o.connections:>5} {o.connections_30_brokers:>8} {o.partitions_written:>5} "
        f"{o.skew:>6.2f} {o.raw_bytes / 1e6:>7.1f} {o.seconds:>5.1f}"
        for o in outcomes
    ]
    return "\n".join([head, *rows])


def draw(outcomes: Sequence[Outcome], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [o.partitioner for o in outcomes]
    base = outcomes[0]
    x = range(len(outcomes))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    top.bar(x, [o.compression_ratio / base.compression_ratio for o in outcomes], color="#4c72b0", width=0.6)
    top.axhline(1.0, color="grey", linewidth=0.8)
    top.set_ylabel("compression ratio\nrelative to round-robin", color="#4c72b0")
    top.set_ylim(min(0.9, *(o.compression_ratio / base.compression_ratio for o in outcomes)) * 0.95, None)
    skew_axis = top.twinx()
    skew_axis.plot(x, [o.skew for o in outcomes], color="#dd8452", marker="o")
    skew_axis.set_ylabel("skew (max / mean bytes per partition)", color="#dd8452")
    top.set_title(
        f"Singer partitioners: {base.hosts} producers, {base.partitions}-partition topic, "
        f"{base.raw_bytes / 1e6:.0f} MB of access log in all"
    )
    bottom.plot(
        x,
        [o.connections_30_brokers for o in outcomes],
        marker="s",
        label=f"connections, modeled: partition p led by broker p mod {ARTICLE_BROKERS}",
    )
    bottom.plot(x, [o.produce_requests for o in outcomes], marker="^", label="produce requests, measured")
    bottom.set_yscale("log")
    bottom.set_xticks(list(x), labels)
    bottom.set_ylabel("count (log scale)")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from tests.services import resolve_services

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.singer_partitioners", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--hosts", type=int, default=30, help="simulated hosts, each with its own producer")
    parser.add_argument("--partitions", type=int, default=120)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 10,000 lines per host")
    parser.add_argument("--batch-lines", type=int, default=500, help="lines per batch the agent sends at once")
    parser.add_argument("--compression", default="lz4", choices=("none", "gzip", "snappy", "lz4", "zstd"))
    parser.add_argument("--only", action="append", help="partitioner label (repeatable), e.g. single")
    parser.add_argument("--json", type=Path, help="write the outcomes to this file")
    parser.add_argument("--png", type=Path, nargs="?", const=FIGURE, help=f"draw the figure (default {FIGURE})")
    parser.add_argument("--from-json", type=Path, help="report a saved run (from --json) instead of running")
    args = parser.parse_args(argv)
    if args.from_json:
        outcomes = [Outcome(**row) for row in json.loads(args.from_json.read_text())]
        return report(outcomes, None, args.png)
    chosen = [p for p in PARTITIONERS if not args.only or p[0] in args.only]
    with resolve_services() as services:
        setup = Setup(
            bootstrap=services.kafka_bootstrap_servers,
            cluster_prefix=services.cluster_prefix,
            discovery_file=services.psc_discovery_file,
            hosts=args.hosts,
            partitions=args.partitions,
            lines_per_host=max(args.batch_lines, int(10_000 * args.scale)),
            batch_lines=args.batch_lines,
            compression=args.compression,
        )
        outcomes = [run_partitioner(setup, label, kind, params) for label, kind, params in chosen]
    return report(outcomes, args.json, args.png)


def report(outcomes: Sequence[Outcome], json_path: Path | None, png_path: Path | None) -> int:
    print(table(outcomes))
    if json_path:
        json_path.write_text(json.dumps([asdict(o) for o in outcomes], indent=2) + "\n")
    if png_path:
        draw(outcomes, png_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
