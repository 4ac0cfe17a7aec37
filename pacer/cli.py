"""``pacer``: run a broker or a worker pool, create or upgrade the schema, manage queues."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import timedelta

from pacer._errors import PacerError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pacer", description="Pacer job platform: brokers, workers and admin.")
    commands = parser.add_subparsers(dest="command", required=True)

    broker = commands.add_parser("broker", help="run a dequeue broker (stops cleanly on SIGTERM)")
    broker.add_argument("--config", required=True, help="broker config file (TOML)")

    worker = commands.add_parser("worker", help="run worker pools, one per queue (stops cleanly on SIGTERM)")
    worker.add_argument("handler", help="the job handler, module:function")
    worker.add_argument("--queue", action="append", required=True, help="a queue to serve; repeat for more pools")
    source = worker.add_mutually_exclusive_group(required=True)
    source.add_argument("--broker", action="append", help="a broker URL (repeat for more)")
    source.add_argument("--storage", help="embedded storage URL, e.g. sqlite:///jobs.db")
    worker.add_argument("--concurrency", type=int, default=8, help="jobs run at once per queue (default 8)")
    worker.add_argument("--max-retry-delay", type=float, default=3600.0, help="cap of the backoff, seconds")
    worker.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")

    schema = commands.add_parser("schema", help="create or upgrade the metadata tables on every shard")
    schema.add_argument("action", choices=["create", "upgrade", "version"])
    schema.add_argument("--storage", nargs="+", required=True, help="sqlite:///path, or mysql:// URLs, shard 0 first")

    queue = commands.add_parser("queue", help="create, delete or list queues directly in storage")
    queue.add_argument("action", choices=["create", "delete", "list"])
    queue.add_argument("name", nargs="?")
    queue.add_argument("--storage", nargs="+", required=True)
    queue.add_argument("--partitions", type=int, default=1)
    queue.add_argument("--lease", type=float, default=300.0, help="lease length in seconds")
    queue.add_argument("--rate", type=float, default=None, help="jobs per second (0 pauses; default unlimited)")

    args = parser.parse_args(argv)
    try:
        if args.command == "broker":
            from pacer.broker import BrokerConfig, run_broker

            run_broker(BrokerConfig.load(args.config))
        elif args.command == "worker":
            from pacer.worker import run_workers

            run_workers(
                args.handler,
                args.queue,
                brokers=args.broker,
                storage=args.storage,
                concurrency=args.concurrency,
                max_retry_delay=args.max_retry_delay,
            )
        elif args.command == "schema":
            return _schema(args.action, args.storage)
        else:
            return _queue(args)
    except PacerError as exc:
        print(f"pacer: {exc}", file=sys.stderr)
        return 2
    return 0


def _schema(action: str, storage: list[str]) -> int:
    from pacer.storage import open_store

    store = open_store(storage)
    try:
        if action == "version":
            print(store.schema_version())
        else:
            print(f"schema version {store.create_schema()}")
    finally:
        store.close()
    return 0


def _queue(args: argparse.Namespace) -> int:
    from pacer._service import Pacer

    pacer = Pacer.open(args.storage)
    try:
        if args.action == "list":
            print("\n".join(pacer.queue_names()))
        elif args.name is None:
            print(f"pacer queue {args.action}: give a queue name", file=sys.stderr)
            return 2
        elif args.action == "create":
            pacer.create_queue(
                args.name,
                partitions=args.partitions,
                lease=timedelta(seconds=args.lease),
                max_jobs_per_second=args.rate,
            )
        else:
            pacer.delete_queue(args.name)
    finally:
        pacer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
