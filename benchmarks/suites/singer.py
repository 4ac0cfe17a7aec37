"""Singer vs ``kcat -P -l``: shipping a pre-written log file to Kafka, 100 B and 1 KiB lines.

Both get the same file, broker, 3-partition topic and producer settings: acks=all, lz4, idempotence on,
linger 5 ms, librdkafka's defaults otherwise. Singer adds four headers to each record (``_mid``, ``_ots``,
``host``, ``_fid``: 16, 8, host-name and 8 bytes); kcat is given four headers of the same names and sizes
(``-H``), so both send the same bytes and librdkafka does the same header work for both. Each run starts the
program and stops the clock when every line is acknowledged: kcat's exit (it waits for its delivery
reports), Singer's watermark reaching the end of the file (it is written only once every record before it
is acknowledged). Both times include the program's start, as a user sees it (about 0.3 s of Python imports
for Singer).

Scenarios:
- ``ship-*``: lines per second while shipping, the daemon's steady rate. The suite watches the topic's
  high watermarks (every 5 ms, the same watcher for both programs) and divides the lines appended between
  the first sample that shows any and the one that shows all by the time between them, so neither
  program's start-up (process, imports, connections, the first batch's wait) counts. MB/s is that times
  the line size (100 or 1024 bytes, newline included).
- ``run-*``: lines per second from the program's start to the last acknowledgement, start-up included.
- ``cpu-*``: the process's CPU time (user and system, every thread) per line, in ns, a figure that depends
  less on what else the machine is doing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition

from benchmarks._env import BenchEnv
from benchmarks._harness import RunFn, Scenario

DESCRIPTION = "Singer vs kcat -P -l: a pre-written file to Kafka, 100 B and 1 KiB lines"

SIZES = {"100B": 100, "1KiB": 1024}
LINES = {"100B": 2_000_000, "1KiB": 1_000_000}  # at scale 1.0, a few seconds per Singer run on 2 cores
SAMPLE_S = 0.005
PARTITIONS = 3
DEADLINE_S = 180.0
BASELINE = "kcat"
KCAT = shutil.which("kcat") or "kcat"


def write_file(path: Path, size: str, count: int) -> None:
    line = b"x" * (SIZES[size] - 1) + b"\n"
    with path.open("wb") as f:
        for start in range(0, count, 1000):
            f.write(line * min(1000, count - start))


@dataclass(frozen=True)
class Shipped:
    """One run: seconds until every line was acknowledged, the CPU seconds the program used, and the steady
    rate the topic watcher saw (lines/s)."""

    seconds: float
    cpu_s: float
    steady_lines_per_s: float


class TopicWatcher:
    """Samples a topic's total high watermark in a thread, from ``start()`` until it reaches ``lines``."""

    def __init__(self, bootstrap: str, topic: str, lines: int) -> None:
        self.lines = lines
        self.partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"watch-{topic}"})
        self.first: tuple[float, int] | None = None  # (time, lines) of the first sample that showed any
        self.last: tuple[float, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="topic-watcher", daemon=True)

    def start(self) -> None:
        deadline = time.monotonic() + 30
        while self._total() is None:  # a new topic's leaders, the watcher's connections: before the program
            if time.monotonic() > deadline:
                raise RuntimeError(f"the topic watcher cannot read {self.partitions[0].topic}'s offsets")
            time.sleep(0.1)
        self._thread.start()

    def _total(self) -> int | None:
        """The lines in the topic; None while a partition's leader does not answer yet."""
        try:
            return sum(self.consumer.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in self.partitions)
        except KafkaException:
            return None

    def _watch(self) -> None:
        while not self._stop.is_set():
            total, now = self._total(), time.perf_counter()
            if total and self.first is None:  # None: a leader did not answer; sample again after the pause
                self.first = (now, total)
            if total is not None and total >= self.lines:
                self.last = (now, total)
                return
            time.sleep(SAMPLE_S)

    def rate(self) -> float:
        """Lines per second between the first and the last sample; waits for the last."""
        self._thread.join(DEADLINE_S)
        if self.first is None or self.last is None or self.last[0] <= self.first[0]:
            raise RuntimeError(f"the topic watcher saw no progress: first {self.first}, last {self.last}")
        return (self.last[1] - self.first[1]) / (self.last[0] - self.first[0])

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(DEADLINE_S)
        self.consumer.close()


@contextlib.contextmanager
def watching(env: BenchEnv, topic: str, lines: int) -> Iterator[TopicWatcher]:
    watcher = TopicWatcher(env.bootstrap, topic, lines)
    try:
        watcher.start()
        yield watcher
    finally:
        watcher.close()


# The headers Singer sends, with the same names and sizes; kcat takes them as text.
KCAT_HEADERS = {"_mid": "m" * 16, "_ots": "t" * 8, "host": socket.gethostname(), "_fid": "f" * 8}


def kcat_ship(env: BenchEnv, topic: str, path: Path, lines: int) -> Shipped:
    headers = [arg for name, value in KCAT_HEADERS.items() for arg in ("-H", f"{name}={value}")]
    with tempfile.TemporaryFile() as errors, watching(env, topic, lines) as watcher:  # a file: nobody reads it
        started = time.perf_counter()
        proc = subprocess.Popen(
            [KCAT, "-P", "-l", "-b", env.bootstrap, "-t", topic, "-X", "acks=all", "-X", "compression.codec=lz4",
             "-X", "enable.idempotence=true", "-X", "linger.ms=5", *headers, str(path)],
            stdout=subprocess.DEVNULL, stderr=errors,
        )  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)  # as wait(), with the child's CPU time
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"kcat failed ({proc.returncode}): {errors.read().decode()[-2000:]}")
        steady = watcher.rate()
    return Shipped(elapsed, usage.ru_utime + usage.ru_stime, steady)


def singer_ship(env: BenchEnv, topic: str, path: Path, lines: int, stream_extra: str = "") -> Shipped:
    with tempfile.TemporaryDirectory(prefix="singer-bench-") as tmp, watching(env, topic, lines) as watcher:
        config = Path(tmp)
        (config / "conf.d").mkdir()
        (config / "singer.toml").write_text(
            f'[producer]\n"psc.discovery.file" = "{env.services.psc_discovery_file}"\n'
            '"psc.producer.batch.duration.ms" = "5"\n'
        )
        (config / "conf.d" / "bench.toml").write_text(
            f'dir = "{path.parent}"\npattern = "{path.name}"\n'
            f'topic_uri = "{env.services.cluster_prefix}{topic}"\ncompression = "lz4"\nacks = "all"\n{stream_extra}'
        )
        size = path.stat().st_size
        state = config / "state"
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "singer.cli", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + DEADLINE_S
            while _offset(state) < size:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                    raise RuntimeError(f"singer did not ship {path}: {err}")
                time.sleep(0.01)
            elapsed = time.perf_counter() - started
            proc.send_signal(signal.SIGTERM)
            _, status, usage = os.wait4(proc.pid, 0)  # its CPU includes the drain after SIGTERM: milliseconds
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            if proc.poll() is None:  # it did not ship in time
                proc.kill()
                proc.wait(30)
        steady = watcher.rate()
    return Shipped(elapsed, usage.ru_utime + usage.ru_stime, steady)


def singer_wm_interval(env: BenchEnv, topic: str, path: Path, lines: int) -> Shipped:
    return singer_ship(env, topic, path, lines, "watermark_interval_s = 0.2\nmax_inflight_batches = 16\n")


def singer_window_16(env: BenchEnv, topic: str, path: Path, lines: int) -> Shipped:
    return singer_ship(env, topic, path, lines, "max_inflight_batches = 16\n")


def _offset(state: Path) -> int:
    for mark in state.glob("*.json") if state.is_dir() else ():
        if mark.name != "status.json":
            with contextlib.suppress(ValueError, OSError, KeyError):
                return int(json.loads(mark.read_text())["offset"])
    return 0


class _Files:
    """One pre-written file per line size, shared by every run; fresh topics deleted after each run."""

    def __init__(self, env: BenchEnv) -> None:
        self.env = env
        self.dir = Path(tempfile.mkdtemp(prefix="singer-bench-logs-"))
        self.paths: dict[str, Path] = {}

    def path(self, size: str, lines: int) -> Path:
        if size not in self.paths:
            directory = self.dir / size
            directory.mkdir()
            self.paths[size] = directory / "app.log"
            write_file(self.paths[size], size, lines)
        return self.paths[size]

    def run(self, prefix: str, ship: Callable[[BenchEnv, str, Path, int], Shipped], size: str, lines: int) -> Shipped:
        topic = self.env.create_topic(prefix, PARTITIONS)
        try:
            return ship(self.env, topic, self.path(size, lines), lines)
        finally:
            self.env.delete_topics([topic])

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class _SharedRuns:
    """Runs of one system shared by the scenarios: ``ship-``, ``run-`` and ``cpu-`` are figures of the same
    runs, read in the order they were made, so each program ships the file once per repeat, not three times."""

    def __init__(self, ship: Callable[[], Shipped]) -> None:
        self.ship = ship
        self.runs: list[Shipped] = []

    def reader(self) -> Callable[[], Shipped]:
        taken = 0

        def next_run() -> Shipped:
            nonlocal taken
            if taken == len(self.runs):
                self.runs.append(self.ship())
            taken += 1
            return self.runs[taken - 1]

        return next_run


def _scenarios(files: _Files, size: str, lines: int) -> list[Scenario]:
    ships: dict[str, Callable[[], Shipped]] = {
        "kcat": lambda: files.run("kcat", kcat_ship, size, lines),
        "singer": lambda: files.run("singer", singer_ship, size, lines),
        # The watermark written at most every 0.2 s instead of after each turn's acknowledgements, beside
        # singer-window-16 (the same window): the cost of those fsyncs. With the default window of one batch
        # an interval would hold every batch back until the next write.
        "singer-wm-0.2s": lambda: files.run("singer", singer_wm_interval, size, lines),
        # Up to 16 batches in flight instead of one: what pipelining gains, against up to 16 resent per crash.
        "singer-window-16": lambda: files.run("singer", singer_window_16, size, lines),
    }

    shared = {name: _SharedRuns(ship) for name, ship in ships.items()}

    def steady_lines_per_s(runs: _SharedRuns) -> RunFn:
        read = runs.reader()
        return lambda: read().steady_lines_per_s

    def lines_per_s(runs: _SharedRuns) -> RunFn:
        read = runs.reader()
        return lambda: lines / read().seconds

    def cpu_ns_per_line(runs: _SharedRuns) -> RunFn:
        read = runs.reader()
        return lambda: read().cpu_s / lines * 1e9

    return [
        Scenario(f"ship-{size}", "throughput", "lines/s", BASELINE,
                 {n: steady_lines_per_s(r) for n, r in shared.items()}),
        Scenario(f"run-{size}", "throughput", "lines/s", BASELINE, {n: lines_per_s(r) for n, r in shared.items()}),
        Scenario(f"cpu-{size}", "CPU", "ns/line", BASELINE, {n: cpu_ns_per_line(r) for n, r in shared.items()},
                 higher_is_better=False),
    ]  # fmt: skip


@contextlib.contextmanager
def scenarios(env: BenchEnv, scale: float) -> Iterator[list[Scenario]]:
    files = _Files(env)
    try:
        yield [scenario for size in SIZES for scenario in _scenarios(files, size, max(1000, int(LINES[size] * scale)))]
    finally:
        files.close()
