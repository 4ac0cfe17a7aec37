"""``python -m connectors run module:job``: run a stream job until its source ends or SIGTERM; ``import-flink``:
start a job from a Flink Kafka source checkpoint."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from connectors.errors import (
    ConnectorError,
    JobConfigError,
    NoValidCheckpointError,
    StateMigrationError,
    UserFunctionError,
)
from connectors.runtime.group import GroupRunner
from connectors.runtime.job import Job
from connectors.runtime.runner import Runner
from psc.common.log import configure_logging, get_logger

EXIT_FAILED = 1
EXIT_CONFIG = 2


def load_job(spec: str) -> Job:
    """``package.module:attribute``, where the attribute is a ``Job`` or a function returning one."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise JobConfigError(f"job {spec!r} must be given as module:attribute, e.g. myjobs.clicks:job")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise JobConfigError(f"job {spec!r}: cannot import module {module_name!r} ({exc})") from exc
    found: Any = getattr(module, attr, None)
    if found is None:
        raise JobConfigError(f"job {spec!r}: module {module_name!r} has no attribute {attr!r}")
    if callable(found) and not isinstance(found, Job):
        try:
            found = found()
        except Exception as exc:
            raise JobConfigError(f"job {spec!r}: building the job raised {exc!r}") from exc
    job = found
    if not isinstance(job, Job):
        raise JobConfigError(f"job {spec!r} is a {type(job).__name__}, not a connectors.Job")
    return job


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m connectors", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run a job",
        description="Restore the newest valid checkpoint, then read, transform and write until the source ends "
        "(exit 0) or SIGTERM (final checkpoint, exit 0). Exit 1: the job failed; exit 2: bad configuration, no "
        "valid checkpoint, or state this connector cannot restore.",
    )
    run.add_argument("job", help="module:attribute naming a connectors.Job (or a function returning one)")
    run.add_argument(
        "--instance", type=int, default=0, help="this instance's number, from 0; names its transactional id"
    )
    run.add_argument(
        "--instances", type=int, default=1, help="instances sharing the job; each reads the partitions it owns"
    )
    run.add_argument(
        "--group",
        action="store_true",
        help="share the job through the Kafka consumer group: instances (each with its own --instance number) "
        "can be added or removed while the job runs; --instances is ignored",
    )
    run.add_argument("--checkpoints", help="override the job's checkpoint store (file:DIR or s3://bucket/prefix)")
    run.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    run.add_argument("--log-level", default="INFO")
    flink = commands.add_parser(
        "import-flink",
        help="turn a Flink Kafka source checkpoint into this job's first checkpoint",
        description="Read the raw split and enumerator state bytes of a Flink Kafka source and write them as "
        "the source state of OPERATOR, into an instance's empty checkpoint store. The Kafka source restores it, "
        "and so does the PSC source under psc.cluster.uri.",
    )
    flink.add_argument("job", help="the job's name")
    flink.add_argument("operator", help="the source's operator name in the job")
    flink.add_argument("--checkpoints", required=True, help="the job's checkpoint store (file:DIR or s3://...)")
    flink.add_argument("--instance", type=int, default=0)
    flink.add_argument("--enum-state", metavar="VERSION:FILE", help="enumerator state (versions 0-3)")
    flink.add_argument("--split", metavar="VERSION:FILE", action="append", default=[], help="a reader's split")
    return parser


def _versioned(spec: str) -> tuple[int, bytes]:
    version, sep, path = spec.partition(":")
    if not sep or not version.isdigit():
        raise JobConfigError(f"{spec!r} must be VERSION:FILE, e.g. 3:enum-state.bin")
    try:
        return int(version), Path(path).read_bytes()
    except OSError as exc:
        raise JobConfigError(f"cannot read {path!r}: {exc}") from exc


def import_flink(args: argparse.Namespace) -> int:
    from connectors.checkpointing.flink import flink_checkpoint, import_source_state
    from connectors.checkpointing.manager import CheckpointManager
    from connectors.checkpointing.stores import open_store

    enum_state = _versioned(args.enum_state) if args.enum_state else None
    splits = import_source_state(enum_state, [_versioned(s) for s in args.split])
    checkpoint = flink_checkpoint(args.job, args.operator, splits)
    checkpoint.operators[args.operator]["instances"] = 1
    manager = CheckpointManager(open_store(args.checkpoints, f"{args.job}/i{args.instance}"), args.job)
    if manager.names():
        raise JobConfigError(f"{manager.store!r} already holds checkpoints; import into an empty store")
    print(f"wrote {manager.save(checkpoint)} with {len(splits)} splits to {manager.store!r}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "import-flink":
        try:
            return import_flink(args)
        except ConnectorError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    configure_logging(args.log_level)
    log = get_logger("connectors.cli")
    try:
        job = load_job(args.job)
        if args.checkpoints:
            job.checkpoints = args.checkpoints
        runner = (
            GroupRunner(job, instance=args.instance)
            if args.group
            else Runner(job, instance=args.instance, instances=args.instances)
        )
    except ConnectorError as exc:
        log.error("bad_job", error=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        from psc.common.metrics import default_registry

        start_http_server(args.metrics_port, registry=default_registry())
    signal.signal(signal.SIGTERM, lambda *_: job.stop())
    signal.signal(signal.SIGINT, lambda *_: job.stop())
    try:
        runner.run()
    except (JobConfigError, NoValidCheckpointError, StateMigrationError) as exc:
        log.error("job_refused", error=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except UserFunctionError as exc:
        log.error("job_stopped", error=str(exc))
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        log.error("job_failed", error=repr(exc))
        print(f"error: {exc!r}", file=sys.stderr)
        return EXIT_FAILED
    return 0
