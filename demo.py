"""End-to-end demo of the toolkit against the running services (started with the local stack if needed).

    python demo.py            (or: make demo)
    python demo.py memq pacer (only these parts)

Parts, each a few seconds, each printing what it measured and stopping the processes it started:

- kafka:  a topic URI resolved through discovery; JSON records produced and consumed back with PSC.
- memq:   records sent with psc.Producer to a MemQ topic URI; the stored object and its Kafka
          notification shown; the records read back with psc.Consumer.
- singer: a log file written and rotated while ``singer run`` ships it; every line read back.
- pacer:  jobs enqueued; two brokers and a worker pool as processes; one broker killed; every job done.
- connectors: an exactly-once stream job as a process, SIGKILLed mid-run, restarted; output complete, no duplicate.

Exits 1 if any part fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable

from demos import connectors, kafka, memq, pacer, singer
from demos._common import ROOT, DemoFailure, Services, step
from psc.common import configure_logging

PARTS: dict[str, Callable[[Services], None]] = {
    "kafka": kafka.run,
    "memq": memq.run,
    "singer": singer.run,
    "pacer": pacer.run,
    "connectors": connectors.run,
}


def endpoints() -> dict[str, str]:
    """Endpoints from the environment when given, else from the local stack (started if needed)."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") and os.environ.get("PSC_DISCOVERY_FILE"):
        return dict(os.environ)
    stack = [sys.executable, str(ROOT / "compose" / "stack.py")]
    subprocess.run([*stack, "up"], check=True)
    found = subprocess.run([*stack, "env", "--format", "json"], check=True, capture_output=True, text=True)
    env: dict[str, str] = json.loads(found.stdout)
    return env


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in PARTS]
    if unknown:
        print(f"demo: unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}", file=sys.stderr)
        return 2
    configure_logging("WARNING", "console")
    step("services")
    services = Services.from_mapping(endpoints())
    print(f"Kafka at {services.kafka_bootstrap}; MySQL at {services.mysql_url}; S3 at {services.s3_endpoint_url}")
    print(f"PSC discovery file {services.discovery_file}")

    results: dict[str, str] = {}
    for name in argv or list(PARTS):
        started = time.monotonic()
        try:
            PARTS[name](services)
            outcome = "ok"
        except DemoFailure as exc:
            outcome = f"FAILED: {exc}"
        except Exception as exc:  # a part that breaks must not stop the others from running
            traceback.print_exc()
            outcome = f"FAILED: {exc!r}"
        results[name] = f"{outcome} ({time.monotonic() - started:.1f} s)"

    step("summary")
    for name, outcome in results.items():
        print(f"{name:7} {outcome}")
    return 0 if all(r.startswith("ok") for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
