"""The outage harness's measurements that need no broker."""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks.singer_outage import rss_bytes


def test_rss_is_read_from_proc_and_zero_once_the_process_is_gone() -> None:
    assert rss_bytes(os.getpid()) > 1 << 20
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert rss_bytes(child.pid) == 0
