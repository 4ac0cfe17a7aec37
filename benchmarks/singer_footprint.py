"""Singer's footprint: many streams written at a total rate; memory, threads and CPU per GB shipped.

``python -m benchmarks.singer_footprint [--streams 100] [--rate-mb 20] [--seconds 30] [--json FILE]
[--agent KEY=VALUE] [--stream KEY=VALUE]``

Writers append 1 KiB lines to one file per stream directory (a single writer thread, in ticks of 50 ms);
``singer run`` ships them to a 3-partition topic. At the end the report gives the agent's peak RSS, its
thread count, CPU seconds per GB of file data acknowledged, and the lag left (bytes written but not yet
acknowledged), so it shows whether the agent kept up. Run it with ``--streams 10`` too: the thread count
must not grow with streams.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from tests.services import Services, resolve_services

LINE = b"y" * 1023 + b"\n"


@dataclass
class Footprint:
    streams: int
    target_mb_s: float
    seconds: float
    written_mb: float
    shipped_mb: float
    lag_mb: float
    peak_rss_mb: float
    threads: int
    cpu_s: float
    cpu_s_per_gb: float


def _proc(pid: int) -> tuple[float, int, float]:
    """Peak RSS (MB), threads, CPU seconds of ``pid``."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return int(fields["VmHWM"].split()[0]) / 1024, int(fields["Threads"]), cpu


def _shipped(state: Path) -> int:
    total = 0
    for mark in state.glob("*.json"):
        if mark.name != "status.json":
            try:
                total += int(json.loads(mark.read_text())["offset"])
            except (ValueError, KeyError, OSError):
                continue
    return total


def measure(
    services: Services, streams: int, rate_mb_s: float, seconds: float, agent_toml: str = "", stream_toml: str = ""
) -> Footprint:
    topic = f"singer-footprint-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": services.kafka_bootstrap_servers})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(30)
    with tempfile.TemporaryDirectory(prefix="singer-footprint-") as tmp:
        base = Path(tmp)
        conf, logs = base / "conf", base / "logs"
        (conf / "conf.d").mkdir(parents=True)
        (conf / "singer.toml").write_text(
            f'{agent_toml}[producer]\n"psc.discovery.file" = "{services.psc_discovery_file}"\n'
        )
        (conf / "conf.d" / "all.toml").write_text(
            f'dir = "{logs}/s*"\npattern = "app\\\\.log"\ntopic_uri = "{services.cluster_prefix}{topic}"\n{stream_toml}'
        )
        files = []
        for i in range(streams):
            (logs / f"s{i}").mkdir(parents=True)
            files.append((logs / f"s{i}" / "app.log").open("ab"))
        stop = threading.Event()
        written = [0]

        def write() -> None:
            per_tick = rate_mb_s * 1e6 * 0.05 / streams / len(LINE)
            owed = 0.0
            while not stop.wait(0.05):
                owed += per_tick
                lines, owed = int(owed), owed - int(owed)
                if lines:
                    for f in files:
                        f.write(LINE * lines)
                        f.flush()
                    written[0] += lines * len(LINE) * streams

        proc = subprocess.Popen(
            [sys.executable, "-m", "singer.cli", "run", "--config", str(conf)], stderr=subprocess.DEVNULL
        )
        writer = threading.Thread(target=write, daemon=True)
        try:
            writer.start()
            time.sleep(seconds)
            stop.set()
            writer.join()
            rss, threads, cpu = _proc(proc.pid)
            shipped = _shipped(conf / "state")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            for f in files:
                f.close()
    return Footprint(
        streams=streams,
        target_mb_s=rate_mb_s,
        seconds=seconds,
        written_mb=round(written[0] / 1e6, 1),
        shipped_mb=round(shipped / 1e6, 1),
        lag_mb=round((written[0] - shipped) / 1e6, 1),
        peak_rss_mb=round(rss, 1),
        threads=threads,
        cpu_s=round(cpu, 2),
        cpu_s_per_gb=round(cpu / (shipped / 1e9), 1) if shipped else float("nan"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.singer_footprint", description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--rate-mb", type=float, default=20.0, help="MB/s written across all streams")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    parser.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an agent setting (TOML value), e.g. max_inflight_bytes=8388608; repeatable",
    )
    parser.add_argument(
        "--stream",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a stream setting (TOML value), e.g. watermark_interval_s=1.0; repeatable",
    )
    args = parser.parse_args(argv)
    agent_toml = "".join(f"{setting}\n" for setting in args.agent)
    stream_toml = "".join(f"{setting}\n" for setting in args.stream)
    with resolve_services() as services:
        result = measure(services, args.streams, args.rate_mb, args.seconds, agent_toml, stream_toml)
    print(json.dumps(asdict(result)))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
