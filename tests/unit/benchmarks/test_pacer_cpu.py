"""The CPU accounting of ``benchmarks.pacer_cpu``: per process, between the two marks of a run's clock."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks.pacer_cpu import _children, _cpu, _Window


def test_a_window_charges_this_process_and_its_children_per_job() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"]
    )
    try:
        assert child.pid in _children(os.getpid())
        window = _Window(mysqld=None)
        window("start")
        deadline = time.process_time() + 0.2
        while time.process_time() < deadline:
            pass
        child.wait(10)
        window("end")
    finally:
        child.kill()
    per_job = window.per_job(1000)
    assert per_job["workers"] >= 150  # 0.2 s over 1000 jobs, in microseconds
    assert per_job["enqueuer"] > 0 and per_job["mysqld"] == 0


def test_a_process_that_is_gone_costs_nothing() -> None:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    assert _cpu(int(done.stdout)) == 0.0
