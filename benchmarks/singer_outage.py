"""Singer while its broker is down: memory stays bounded, and nothing is lost once the broker is back.

``python -m benchmarks.singer_outage [--outage-s 60] [--rate 2000] [--json FILE]``

The shared broker cannot be stopped, so this starts a private Kafka broker with the stack launcher
(``compose/stack.py up kafka`` with its own ``STACK_HOME`` under /tmp and its own ports). A writer appends
numbered lines at ``--rate`` lines/s while ``singer run`` ships them; after ``--before-s`` the broker is
stopped for ``--outage-s`` and started again on the same data, then the writer runs ``--after-s`` more.
Every record is then read back. The report gives lines written, lost and duplicated (and whether every copy
of a line carries the same ``_mid`` and ``_fid``), the agent's resident
memory (before, during and after the outage, sampled from /proc), its largest lag and number of batches in
flight (from its status file), and how long after the broker's return every line had arrived.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.singer_faults import LineWriter, SingerProcess, distinct_lines, line, read_topic
from tests.services import Services

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "compose" / "stack.py"
PREFERRED_PORTS = (29192, 29193)


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair(rng: random.Random) -> tuple[int, int]:
    """Two consecutive free ports: 29192/29193 when free, else a random pair in 20000-29999."""
    candidates = [PREFERRED_PORTS] + [(p, p + 1) for p in rng.sample(range(20_000, 29_998), 50)]
    for pair in candidates:
        if all(map(port_free, pair)):
            return pair
    raise RuntimeError("no two consecutive free ports in 20000-29999")


class PrivateKafka:
    """One Kafka broker of our own, started and stopped by the stack launcher; its data survives a stop."""

    def __init__(self, home: Path, port: int, controller_port: int) -> None:
        self.home = home
        self.port = port
        self.env = {
            **os.environ,
            "STACK_HOME": str(home),
            "STACK_KAFKA_PORT": str(port),
            "STACK_KAFKA_CONTROLLER_PORT": str(controller_port),
            "STACK_KAFKA_HEAP": "384m",
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def discovery_file(self) -> str:
        return str(self.home / "psc-discovery.json")  # written by the launcher

    def up(self) -> None:
        self._stack("up")

    def down(self) -> None:
        self._stack("down")

    def _stack(self, command: str) -> None:
        done = subprocess.run(
            [sys.executable, str(STACK), command, "kafka"], env=self.env, capture_output=True, text=True, timeout=240
        )
        if done.returncode != 0:
            raise RuntimeError(f"compose/stack.py {command} kafka failed:\n{done.stdout}{done.stderr}")


@contextmanager
def private_kafka(base: Path) -> Iterator[PrivateKafka]:
    port, controller = free_port_pair(random.Random())
    kafka = PrivateKafka(base / "stack", port, controller)
    try:
        kafka.up()
        yield kafka
    finally:
        kafka.down()


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (0 once it is gone)."""
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) * 1024
    except OSError:
        return 0
    return 0


@dataclass
class Sampler:
    """Samples the agent's memory and status every ``interval_s``, by phase."""

    singer: SingerProcess
    interval_s: float = 0.25
    phase: str = "before"
    rss: dict[str, int] = field(default_factory=dict)  # phase -> largest RSS
    lag: dict[str, int] = field(default_factory=dict)  # phase -> largest lag in bytes
    inflight: dict[str, int] = field(default_factory=dict)  # phase -> most batches in flight
    series: list[tuple[float, str, float]] = field(default_factory=list)  # every 5 s: (s, phase, RSS in MB)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        started = next_point = time.monotonic()
        while not self._stop.wait(self.interval_s):
            proc = self.singer.proc
            if proc is None:
                continue
            rss = rss_bytes(proc.pid)
            self.rss[self.phase] = max(self.rss.get(self.phase, 0), rss)
            if time.monotonic() >= next_point:
                self.series.append((round(next_point - started, 1), self.phase, round(rss / 1e6, 1)))
                next_point += 5.0
            for stream in self.singer.status().values():
                self.lag[self.phase] = max(self.lag.get(self.phase, 0), int(stream.get("lag_bytes") or 0))
                self.inflight[self.phase] = max(self.inflight.get(self.phase, 0), int(stream["inflight_batches"]))

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Outcome:
    outage_s: float
    written: int
    received: int
    lost: int
    duplicated: int
    duplicates_share_id: bool  # every copy of a line carries the same _mid and _fid
    max_inflight_bytes: int
    rss_mb: dict[str, float]  # largest RSS per phase: before, outage, after
    lag_bytes: dict[str, int]  # largest lag per phase
    inflight_batches: dict[str, int]
    catch_up_s: float  # from the broker answering again to every line read back
    rss_series: list[tuple[float, str, float]]  # (seconds since start, phase, RSS in MB) every 5 s


def run_outage(
    base: Path,
    outage_s: float,
    before_s: float,
    after_s: float,
    rate: int,
    max_inflight_bytes: int = 8 << 20,
    producer: dict[str, str] | None = None,
) -> Outcome:
    """One outage; ``producer`` adds PSC keys to the stream's producer (e.g. a shorter delivery timeout)."""
    logs = base / "logs"
    logs.mkdir(parents=True)
    with private_kafka(base) as kafka:
        topic = f"singer-outage-{uuid.uuid4().hex[:8]}"
        _create_topic(kafka.bootstrap, topic, 3)
        services = Services(kafka.bootstrap, "", "", kafka.discovery_file, "private")
        singer = SingerProcess(base, services)
        toml = singer.config / "singer.toml"
        toml.write_text(f"max_inflight_bytes = {max_inflight_bytes}\n" + toml.read_text())
        singer.stream("app", logs, topic, batch_timeout_s=10, retry_backoff_max_s=5)
        if producer:
            with (singer.config / "conf.d" / "app.toml").open("a") as conf:
                conf.write(
                    "[producer]\n" + "".join(f"{json.dumps(k)} = {json.dumps(v)}\n" for k, v in producer.items())
                )
        lines = int(rate * (before_s + outage_s + after_s))
        per_burst = max(1, rate // 20)
        writer = LineWriter(logs / "app.log", lines, per_burst=per_burst, pause_s=per_burst / rate)
        sampler = Sampler(singer)
        sampling = threading.Thread(target=sampler.run, daemon=True)
        singer.start()
        try:
            writer.start()
            _wait_until_shipping(singer)  # so "before" measures a running agent, not one still starting
            sampling.start()
            time.sleep(before_s)
            sampler.phase = "outage"
            kafka.down()
            time.sleep(outage_s)
            kafka.up()
            back = time.monotonic()
            sampler.phase = "after"
            writer.join()
            records = read_topic(kafka.bootstrap, topic, distinct_lines(lines), limit_s=180 + outage_s)
            catch_up_s = time.monotonic() - back
        finally:
            sampler.stop()
            singer.kill_if_running()
    received = {value for value, _ in records}
    ids: dict[bytes, set[bytes]] = {}
    for value, record_id in records:
        ids.setdefault(value, set()).add(record_id)
    return Outcome(
        outage_s=outage_s,
        written=lines,
        received=len(records),
        lost=sum(1 for i in range(lines) if line(i) not in received),
        duplicated=len(records) - len(received),
        duplicates_share_id=all(len(found) == 1 for found in ids.values()),
        max_inflight_bytes=max_inflight_bytes,
        rss_mb={phase: round(value / 1e6, 1) for phase, value in sampler.rss.items()},
        lag_bytes=dict(sampler.lag),
        inflight_batches=dict(sampler.inflight),
        catch_up_s=round(catch_up_s, 1),
        rss_series=sampler.series,
    )


def _wait_until_shipping(singer: SingerProcess, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not any(s.get("watermark") for s in singer.status().values()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"singer shipped nothing within {limit_s:.0f} s:\n{singer.log_text()[-2000:]}")
        time.sleep(0.1)


def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.singer_outage", description=__doc__.split("\n")[0])
    parser.add_argument("--outage-s", type=float, default=60.0, help="how long the broker is down")
    parser.add_argument("--before-s", type=float, default=5.0, help="shipping before the outage")
    parser.add_argument("--after-s", type=float, default=5.0, help="writing after the broker is back")
    parser.add_argument("--rate", type=int, default=2000, help="lines written per second")
    parser.add_argument("--max-inflight-mib", type=int, default=8, help="the agent's max_inflight_bytes, in MiB")
    parser.add_argument(
        "--producer", action="append", default=[], metavar="KEY=VALUE", help="a PSC key for the stream's producer"
    )
    parser.add_argument("--json", type=Path, help="also write the outcome to this file")
    args = parser.parse_args(argv)
    bad = [item for item in args.producer if "=" not in item]
    if bad:
        parser.error(f"--producer wants KEY=VALUE, got {bad[0]!r}")
    if shutil.which("java") is None:
        parser.error("java is needed to start a private Kafka broker")
    with tempfile.TemporaryDirectory(prefix="singer-outage-") as tmp:
        outcome = run_outage(
            Path(tmp),
            args.outage_s,
            args.before_s,
            args.after_s,
            args.rate,
            args.max_inflight_mib << 20,
            dict(item.split("=", 1) for item in args.producer),
        )
    print(json.dumps(asdict(outcome)))
    if args.json:
        args.json.write_text(json.dumps(asdict(outcome), indent=2) + "\n")
    return 0 if outcome.lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
