"""The ``memq`` command: run a broker, list a broker's topics, inspect a stored object."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from collections.abc import Sequence

from memq._config import ConfigError, TlsConfig, load_broker_config
from memq._errors import MemqError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memq", description="MemQ: S3-batched pub/sub over Kafka notifications.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    broker = commands.add_parser(
        "broker",
        help="run a broker",
        description="Run a MemQ broker until SIGTERM, which seals, stores and acknowledges open batches first.",
    )
    broker.add_argument("--config", required=True, metavar="FILE", help="broker settings (TOML, or JSON by suffix)")
    broker.add_argument("--port", type=int, help="listen on this port instead of the config's (0: any free port)")

    topics = commands.add_parser(
        "topics", help="list a broker's topics", description="Print the TOPIC_METADATA a broker serves, as JSON."
    )
    topics.add_argument("--broker", required=True, metavar="HOST:PORT", help="the broker to ask")
    topics.add_argument("--topic", action="append", default=[], help="only this topic (repeatable)")
    topics.add_argument("--tls-ca", metavar="FILE", help="connect with TLS, trusting this CA")

    commands.add_parser(
        "inspect",
        help="decode a stored object (memq inspect --help)",
        description="Decode a stored object: memq inspect [--json] FILE|s3://bucket/key",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["inspect"]:
        return _inspect(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "broker":
            return _broker(args.config, args.port)
        return _topics(args.broker, args.topic, args.tls_ca)
    except (ConfigError, MemqError) as exc:
        print(f"memq {args.command}: {exc}", file=sys.stderr)
        return 2


def _broker(path: str, port: int | None) -> int:
    from memq.broker import run_broker
    from psc.common.log import configure_logging

    config = load_broker_config(path)
    if port is not None:
        config = config.model_copy(update={"port": port})
    configure_logging(config.log_level)
    asyncio.run(run_broker(config))
    return 0


def _topics(broker: str, topics: list[str], tls_ca: str | None) -> int:
    from memq._producer import Producer

    tls = TlsConfig(ca_file=tls_ca) if tls_ca else None
    producer = Producer(brokers=[broker], tls=tls)
    try:
        found = producer.list_topics(topics[0] if len(topics) == 1 else None)
    finally:
        producer.close(0)
    for md in found:
        if topics and md.topic not in topics:
            continue
        brokers = [str(b) for b in md.write_brokers]
        print(json.dumps({"topic": md.topic, "brokers": brokers, "properties": md.properties}))
    return 0


def _inspect(argv: list[str]) -> int:
    try:
        inspect = importlib.import_module("memq._inspect")
    except ImportError:
        print("memq inspect: not available in this installation", file=sys.stderr)
        return 2
    result: int = inspect.main(argv)
    return result
