"""Job handlers for worker processes in integration tests; each run is recorded in $PACER_TEST_RUNS."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pacer import Lease


def record(job: Lease) -> str:
    """Writes ``start`` and ``done`` lines; the first run of a ``slow`` job hangs until killed."""
    runs = Path(os.environ["PACER_TEST_RUNS"])
    first = not runs.exists() or f"start {job.descriptor}" not in runs.read_text()
    with runs.open("a") as out:
        out.write(f"start {job.descriptor}\n")
    if job.body == b"slow" and first:
        time.sleep(120)
    with runs.open("a") as out:
        out.write(f"done {job.descriptor}\n")
    return "recorded"
