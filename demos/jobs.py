"""The Pacer job handler the demo's workers run: ``pacer worker demos.jobs:handle --queue ...``."""

from __future__ import annotations

import os
from pathlib import Path

from pacer import Lease


def handle(job: Lease) -> str:
    """Append the job's descriptor to ``$DEMO_JOBS_DONE`` (when set) and report the body's length."""
    done = os.environ.get("DEMO_JOBS_DONE")
    if done:
        with Path(done).open("a") as out:
            out.write(f"{job.descriptor}\n")
    return f"handled {len(job.body)} bytes"
