"""Run a migration program and its PSC port against a real broker and compare what they print.

``python -m tests.migration.pairs [name ...]`` runs the named pairs (all by default) against the broker in
``KAFKA_BOOTSTRAP_SERVERS`` (the port finds it through ``PSC_DISCOVERY_FILE``) and prints, per pair, either
``same`` or where the outputs part and the port's error output.
"""

from __future__ import annotations

import argparse
import difflib
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# Each program's topics (name after the prefix -> partitions); the harness creates them, as an operator would.
PROGRAMS: dict[str, dict[str, int]] = {
    "producer_callbacks": {"orders": 3},
    "consumer_group": {"events": 2},
    "store_offsets": {"jobs": 1},
    "eos_transform": {"source": 2, "sink": 2},
    "metadata_offsets": {"metrics": 2},
    "admin_ops": {},  # creates and deletes its own topic
    "serde_registry": {"users": 1, "payments": 1},
    "config_callbacks": {"clicks": 1},
    "asyncio_app": {"ticks": 2},
}
SIDES = ("confluent", "psc")


@dataclass(frozen=True)
class Run:
    side: str
    name: str
    returncode: int
    stdout: str
    stderr: str


def create_topics(bootstrap: str, prefix: str, topics: dict[str, int]) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    if not topics:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(prefix + name, num_partitions=count, replication_factor=1) for name, count in topics.items()]
    for future in admin.create_topics(new, operation_timeout=30).values():
        future.result(timeout=60)


def run(side: str, name: str, bootstrap: str, discovery_file: str, timeout: float = 60) -> Run:
    """Run one program with fresh topics and groups (a unique prefix) and capture its output."""
    prefix = f"mig-{uuid.uuid4().hex[:10]}-"
    create_topics(bootstrap, prefix, PROGRAMS[name])
    env = dict(
        os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, PSC_DISCOVERY_FILE=discovery_file, MIGRATION_PREFIX=prefix
    )
    try:
        done = subprocess.run(
            [sys.executable, str(HERE / side / f"{name}.py")],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        return Run(side, name, -1, out, err + f"\n(timed out after {timeout} s)")
    return Run(side, name, done.returncode, done.stdout, done.stderr)


def difference(original: Run, port: Run) -> str:
    """Empty when both runs succeeded and printed the same; else what differs, for a person to read."""
    if original.returncode != 0:
        return f"the confluent-kafka original failed (rc {original.returncode}):\n{_tail(original.stderr)}"
    parts = []
    if port.stdout != original.stdout:
        diff = difflib.unified_diff(
            original.stdout.splitlines(), port.stdout.splitlines(), "confluent", "psc", lineterm="", n=1
        )
        parts.append("\n".join(diff))
    if port.returncode != 0:
        parts.append(f"the PSC port failed (rc {port.returncode}):\n{_tail(port.stderr)}")
    return "\n".join(parts)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", choices=[[], *PROGRAMS], help="programs to run (default: all)")
    args = parser.parse_args(argv)
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    discovery_file = os.environ["PSC_DISCOVERY_FILE"]
    failed = 0
    for name in args.names or PROGRAMS:
        original, port = (run(side, name, bootstrap, discovery_file) for side in SIDES)
        problem = difference(original, port)
        failed += bool(problem)
        print(f"== {name}: {'DIFFERENT' if problem else 'same'}")
        if problem:
            print(problem)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
