"""Where the CPU goes in the pacer suite's throughput runs: CPU seconds per job of each process, side by side.

``python -m benchmarks.pacer_cpu [--jobs N] [--rounds N] [--prefilled]`` runs the suite's enqueue → dequeue →
ack scenario (8 worker threads, a no-op handler, 4 partitions on MariaDB), the PinLater-style baseline and
embedded Pacer in turn, and reads each process's CPU time (user + system, from ``/proc``) as the clock starts and
stops: the workers' process (this one), the enqueuing process (its children) and the MariaDB server (from
``@@pid_file``, when it runs on this machine). It prints microseconds of CPU per job for each, their sum, and
the jobs per second of the run. On a machine of two cores, the sum bounds the rate: 2 s of CPU per second.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pymysql

from benchmarks._env import BenchEnv, bench_env
from benchmarks.suites import pacer as suite
from pacer.storage.mysql import ShardUrl

COMPONENTS = ("workers", "enqueuer", "mysqld")
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a process, 0 if it is gone or unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _children_cpu(pids: list[int]) -> float:
    """CPU seconds of these children, running or not: an exited child's are in RUSAGE_CHILDREN once reaped."""
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return sum(_cpu(pid) for pid in pids) + reaped.ru_utime + reaped.ru_stime


def _mysqld_pid(env: BenchEnv) -> int | None:
    url = ShardUrl.parse(env.services.mysql_url)
    conn = pymysql.connect(host=url.host, port=url.port, user=url.user, password=url.password)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT @@pid_file")
            (path,) = cursor.fetchone()
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, pymysql.err.Error):
        return None
    finally:
        conn.close()


class _Window:
    """CPU times of the processes at the start and end of a run's clock."""

    def __init__(self, mysqld: int | None) -> None:
        self.mysqld = mysqld
        self.at: dict[str, tuple[float, ...]] = {}
        self.children: list[int] = []

    def __call__(self, mark: str) -> None:
        if mark == "start":
            self.children = _children(os.getpid())  # the enqueuing process is running by now
        me = os.getpid()
        mysqld = _cpu(self.mysqld) if self.mysqld is not None else 0.0
        self.at[mark] = (_cpu(me), _children_cpu(self.children), mysqld, time.perf_counter())

    def per_job(self, jobs: int) -> dict[str, float]:
        start, end = self.at["start"], self.at["end"]
        return {name: (end[i] - start[i]) / jobs * 1e6 for i, name in enumerate(COMPONENTS)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pacer_cpu", description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each system, alternating")
    parser.add_argument("--prefilled", action="store_true", help="every job enqueued before the clock starts")
    args = parser.parse_args(argv)
    systems: dict[str, Callable[..., tuple[float, dict[str, float]]]] = {
        suite.BASELINE: suite._pinlater_run,
        "pacer-embedded": suite._pacer_run,
    }
    with bench_env() as env:
        mysqld = _mysqld_pid(env)
        if mysqld is None:
            print("the MariaDB server's CPU is not readable here: its column reads 0", file=sys.stderr)
        results: dict[str, list[tuple[float, dict[str, float]]]] = {name: [] for name in systems}
        for _ in range(args.rounds):
            for name, run in systems.items():
                window = _Window(mysqld)
                rate, _ = run(env, args.jobs, prefilled=args.prefilled, window=window)
                results[name].append((rate, window.per_job(args.jobs)))
    scenario = "prefilled" if args.prefilled else "end to end"
    print(f"CPU per job (us), {args.jobs} jobs, {scenario}, median of {args.rounds}")
    print(f"{'system':24} {'jobs/s':>8} " + " ".join(f"{c:>9}" for c in COMPONENTS) + f" {'total':>9}")
    for name, runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        cells = {c: statistics.median(per[c] for _, per in runs) for c in COMPONENTS}
        total = statistics.median(sum(per.values()) for _, per in runs)
        print(f"{name:24} {rate:8.0f} " + " ".join(f"{cells[c]:9.1f}" for c in COMPONENTS) + f" {total:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
