"""The ``psc`` command line: produce stdin lines to a topic URI, consume a topic URI, describe a URI.

Every command takes a topic (or cluster) URI such as ``plaintext:/rn:kafka:local:local_dev::cluster01:t1``
and PSC configuration keys (``--config psc.producer.acks=all``, ``--config-file app.properties``).
Bad input (a malformed URI, invalid configuration, a cluster no discovery provider knows) is reported as
one line and exit status 2 before anything connects; a backend failure at run time exits with status 1;
Ctrl-C stops cleanly (pending records flushed, consumer offsets committed) and exits with status 130.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import select
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from psc._config import ClientType, PscConfig, is_secret_key
from psc._message import TopicUriPartition
from psc._uri import TopicUri
from psc.backends import Cluster, resolve_cluster
from psc.common import configure_logging, get_logger
from psc.errors import ConfigError, DiscoveryError, InvalidUriError, PscError, UnknownBackendError

__all__ = ["build_parser", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_PROJECT = "psc-cli"
# Bounded blocking calls keep Ctrl-C responsive while waiting on the broker.
_POLL_S = 0.5
_COMMIT_EVERY_S = 5.0
_FLUSH_ON_EXIT_S = 30.0
_METADATA_TIMEOUT_S = 10.0
_BATCH = 500


def _log() -> Any:
    # Looked up per call: a logger bound at import would miss the configuration made in main().
    return get_logger("psc.cli")


class UsageError(Exception):
    """Bad command-line input: reported as one line with exit status 2."""


# --- arguments ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="psc",
        description="Produce to, consume from and describe PubSub topics addressed by topic URIs "
        "(<protocol>:/rn:<service>:<environment>:<cloud>_<region>:<classifier>:<cluster>:<topic>).",
        epilog="Exit status: 0 ok, 1 a backend or delivery failure, 2 bad input, 130 interrupted.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options()
    _add_produce(sub, common)
    _add_consume(sub, common)
    _add_describe(sub, common)
    return parser


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("configuration")
    group.add_argument(
        "--config",
        "-c",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="a PSC configuration key, e.g. psc.producer.compression.type=zstd (repeatable; overrides --config-file)",
    )
    group.add_argument(
        "--config-file",
        type=Path,
        metavar="FILE",
        help="PSC configuration as a properties file (key=value lines, # comments) or a JSON object",
    )
    group.add_argument(
        "--discovery-file",
        metavar="FILE",
        help="discovery file mapping cluster prefixes to endpoints (default: $PSC_DISCOVERY_FILE)",
    )
    group.add_argument(
        "--project",
        default=DEFAULT_PROJECT,
        help=f"application name sent as psc.project (default: {DEFAULT_PROJECT})",
    )
    group.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="structured logs on stderr from this level (default: INFO)",
    )
    return common


def _add_produce(sub: Any, common: argparse.ArgumentParser) -> None:
    produce = sub.add_parser(
        "produce",
        parents=[common],
        help="send stdin lines to a topic",
        description="Send each line of stdin (without its line break) as one record to TOPIC_URI, then "
        "print how many were delivered and how many failed. Exits 1 if any record failed.",
    )
    produce.add_argument("topic_uri", metavar="TOPIC_URI", help="where to send the records")
    produce.add_argument(
        "--key-separator",
        metavar="SEP",
        help="split each line at the first SEP into key and value; a line without SEP is rejected",
    )


def _add_consume(sub: Any, common: argparse.ArgumentParser) -> None:
    consume = sub.add_parser(
        "consume",
        parents=[common],
        help="print records of a topic",
        description="Print the records of TOPIC_URI on stdout, one per line. Without --group a throwaway "
        "consumer group is used and nothing is committed; with --group, offsets of printed records are "
        "committed (periodically and on exit).",
    )
    consume.add_argument("topic_uri", metavar="TOPIC_URI", help="the topic to read")
    start = consume.add_mutually_exclusive_group()
    start.add_argument("--group", "-g", help="consumer group to join and commit offsets for")
    start.add_argument(
        "--from-beginning",
        action="store_true",
        help="read from the earliest offset with a throwaway group (default: only new records)",
    )
    consume.add_argument("--max-messages", "-n", type=_positive_int, metavar="N", help="stop after N records")
    consume.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="stop after SECONDS without a new record (default: run until interrupted)",
    )
    consume.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: the raw value (key SEP value with --key-separator); json: one object per line with "
        "message_id, key, value, headers and timestamp; bytes that are not UTF-8 appear as "
        '{"base64": ...} (default: text)',
    )
    consume.add_argument("--key-separator", metavar="SEP", help="text format: print the key, SEP, then the value")


def _add_describe(sub: Any, common: argparse.ArgumentParser) -> None:
    describe = sub.add_parser(
        "describe",
        parents=[common],
        help="resolve a URI and show its cluster and partitions",
        description="Resolve URI (a topic URI, or a cluster URI ending in ':') and print its service, "
        "cluster prefix and discovered endpoint (bootstrap servers and security protocol; never secrets), "
        "then for a topic its partitions with leaders and watermarks, for a cluster its topics.",
    )
    describe.add_argument("uri", metavar="URI", help="a topic URI or a cluster URI")
    describe.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    describe.add_argument(
        "--internal", action="store_true", help="cluster URI: include internal topics (names starting '__')"
    )


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


# --- configuration -----------------------------------------------------------------------------------


def read_config_file(path: Path) -> dict[str, str]:
    """A properties file (``key=value`` or ``key: value`` lines) or a JSON object of PSC keys."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"config file {path} cannot be read: {getattr(exc, 'strerror', None) or exc}") from exc
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        return _json_config(path, text)
    return _properties_config(path, text)


def _json_config(path: Path, text: str) -> dict[str, str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"config file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"config file {path} must hold a JSON object of configuration keys")
    bad = [key for key, value in data.items() if isinstance(value, dict | list)]
    if bad:
        raise UsageError(f"config file {path}: values must be strings, numbers or booleans ({', '.join(bad)})")
    return {key: _config_text(value) for key, value in data.items()}


def _config_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _properties_config(path: Path, text: str) -> dict[str, str]:
    config: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i > 0), default=-1)
        if cut < 0:
            raise UsageError(f"config file {path}, line {number}: expected key=value, got {line!r}")
        config[line[:cut].strip()] = line[cut + 1 :].strip()
    return config


def client_config(args: argparse.Namespace) -> dict[str, str]:
    """The flat PSC configuration: project, discovery file, the config file, then ``--config`` pairs."""
    config = {"psc.project": args.project}
    if args.discovery_file:
        config["psc.discovery.file"] = args.discovery_file
    if args.config_file is not None:
        config.update(read_config_file(args.config_file))
    config.update(dict(args.config))
    return config


@dataclass(frozen=True)
class Target:
    """A validated command target: its parsed URI, checked configuration and discovered cluster."""

    uri: TopicUri
    config: PscConfig
    cluster: Cluster


def resolve_target(uri: str, config: Mapping[str, str], client_type: ClientType) -> Target:
    """Check everything about the input before any client connects; errors end as exit status 2."""
    parsed = TopicUri.parse(uri)
    checked = PscConfig.from_mapping(config, client_type)
    return Target(parsed, checked, resolve_cluster(parsed, checked))


# --- produce -----------------------------------------------------------------------------------------


class _Tally:
    """Delivery outcomes counted from the producer's callbacks."""

    def __init__(self) -> None:
        self.delivered = 0
        self.failed = 0
        self.rejected = 0

    def on_delivery(self, err: PscError | None, msg: Any) -> None:
        if err is None:
            self.delivered += 1
            return
        self.failed += 1
        _log().warning("delivery failed", error=str(err))


def cmd_produce(args: argparse.Namespace) -> int:
    import psc

    config = client_config(args)
    target = resolve_target(args.topic_uri, config, "producer")
    if target.uri.is_cluster:
        raise UsageError(f"cannot produce to cluster URI {args.topic_uri!r}: it names no topic")
    separator = _separator(args.key_separator)
    tally = _Tally()
    producer = psc.Producer(config)
    _log().info("producing", topic_uri=str(target.uri), source="stdin")
    interrupted = False
    try:
        lines = read_lines(sys.stdin.fileno(), lambda: producer.poll(0))
        _produce_lines(producer, args.topic_uri, lines, separator, tally)
    except KeyboardInterrupt:
        interrupted = True  # still deliver what was accepted, then report it
    finally:
        _close_producer(producer)
    print(f"delivered {tally.delivered}, failed {tally.failed + tally.rejected} to {args.topic_uri}")
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if tally.failed or tally.rejected else EXIT_OK


def _separator(text: str | None) -> bytes | None:
    if text is None:
        return None
    if not text:
        raise UsageError("--key-separator must not be empty")
    return text.encode()


def read_lines(fd: int, idle: Callable[[], object]) -> Iterator[bytes]:
    """Lines of ``fd`` without their line break; calls ``idle`` while no input arrives.

    Waiting in ``select`` with a timeout, not in a blocking read, keeps delivery reports served and lets
    the main thread see Ctrl-C even when the signal lands on one of the client's threads.
    """
    pending = b""
    while True:
        ready, _, _ = select.select([fd], [], [], _POLL_S)
        if not ready:
            idle()
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        yield from (line.removesuffix(b"\r") for line in lines)
    if pending:
        yield pending.removesuffix(b"\r")


def _produce_lines(
    producer: Any, topic_uri: str, lines: Iterator[bytes], separator: bytes | None, tally: _Tally
) -> None:
    for number, line in enumerate(lines, 1):
        key: bytes | None = None
        value = line
        if separator is not None:
            key, found, value = line.partition(separator)
            if not found:
                tally.rejected += 1
                _log().warning("line without key separator not sent", line=number)
                continue
        producer.produce(topic_uri, value, key, on_delivery=tally.on_delivery)
        producer.poll(0)


def _close_producer(producer: Any) -> None:
    """Deliver what is queued (bounded); a second Ctrl-C abandons the wait."""
    try:
        remaining = producer.flush(_FLUSH_ON_EXIT_S)
        if remaining:
            _log().warning("records still undelivered at exit", count=remaining)
    finally:
        producer.close(0)


# --- consume -----------------------------------------------------------------------------------------


def cmd_consume(args: argparse.Namespace) -> int:
    import psc

    config = client_config(args)
    commits = args.group is not None
    config["psc.consumer.group.id"] = args.group or f"psc-cli-{uuid.uuid4().hex[:12]}"
    config.setdefault("psc.consumer.commit.auto.enabled", "false")  # with a group, it commits what it printed
    if args.from_beginning:
        config["psc.consumer.offset.auto.reset"] = "earliest"
    target = resolve_target(args.topic_uri, config, "consumer")
    if target.uri.is_cluster:
        raise UsageError(f"cannot consume cluster URI {args.topic_uri!r}: it names no topic")
    write = _writer(args.format, _separator(args.key_separator))
    consumer = psc.Consumer(config)
    _log().info("consuming", topic_uri=str(target.uri), group=config["psc.consumer.group.id"])
    progress = _Progress()
    try:
        consumer.subscribe([args.topic_uri])
        _consume_loop(consumer, write, args, commits, progress)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED  # the finally block commits what was printed and closes
    finally:
        _close_consumer(consumer, commits)
        _log().info("consumed", count=progress.count)
    return EXIT_OK


class _Progress:
    """Records printed so far, readable after an interrupt."""

    def __init__(self) -> None:
        self.count = 0


def _consume_loop(
    consumer: Any, write: Callable[[Any], bytes], args: argparse.Namespace, commits: bool, progress: _Progress
) -> None:
    limit, idle_s = args.max_messages, args.timeout
    last_seen = time.monotonic()
    next_commit = last_seen + _COMMIT_EVERY_S
    out = sys.stdout.buffer
    while limit is None or progress.count < limit:
        want = _BATCH if limit is None else min(_BATCH, limit - progress.count)
        records = [m for m in _next_batch(consumer, want) if _usable(m)]
        now = time.monotonic()
        if records:
            out.write(b"".join(write(m) for m in records))
            out.flush()
            progress.count += len(records)
            last_seen = now
        elif idle_s is not None and now - last_seen >= idle_s:
            _log().info("idle timeout", seconds=idle_s)
            return
        if commits and records and now >= next_commit:
            next_commit = now + _COMMIT_EVERY_S
            _commit(consumer, asynchronous=True)


def _next_batch(consumer: Any, most: int) -> list[Any]:
    """Wait for one record, then take what is already fetched: prompt output, batched writes."""
    first = consumer.poll(_POLL_S)
    if first is None:
        return []
    return [first, *consumer.consume(most - 1, 0)] if most > 1 else [first]


def _usable(msg: Any) -> bool:
    error = msg.error()
    if error is None:
        return True
    if not msg.is_eof():
        _log().warning("consume error", error=str(error))
    return False


def _commit(consumer: Any, *, asynchronous: bool) -> None:
    try:
        consumer.commit(asynchronous=asynchronous)
    except PscError as exc:  # e.g. nothing consumed yet: nothing to commit
        _log().info("commit skipped", reason=str(exc))


def _close_consumer(consumer: Any, commits: bool) -> None:
    try:
        if commits:
            _commit(consumer, asynchronous=False)
    finally:
        consumer.close()


def _writer(fmt: str, separator: bytes | None) -> Callable[[Any], bytes]:
    if fmt == "json":
        return lambda msg: json.dumps(message_record(msg), ensure_ascii=False).encode() + b"\n"
    if separator is None:
        return lambda msg: (msg.value() or b"") + b"\n"
    return lambda msg: (msg.key() or b"") + separator + (msg.value() or b"") + b"\n"


def message_record(msg: Any) -> dict[str, Any]:
    """A consumed message as JSON-ready data: its id, key, value, headers and timestamp."""
    mid = msg.message_id
    headers = msg.headers() or []
    return {
        "message_id": {"topic_uri": mid.topic_uri, "partition": mid.partition, "offset": mid.offset},
        "key": json_bytes(msg.key()),
        "value": json_bytes(msg.value()),
        "headers": [[name, json_bytes(value)] for name, value in headers],
        "timestamp": mid.timestamp,
    }


def json_bytes(data: bytes | str | None) -> Any:
    """Text for UTF-8 bytes; ``{"base64": ...}`` otherwise, so no byte is lost."""
    if data is None or isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


# --- describe ----------------------------------------------------------------------------------------


def cmd_describe(args: argparse.Namespace) -> int:
    import psc

    config = client_config(args)
    # Metadata and watermarks need no group membership; the group id only satisfies the client.
    config["psc.consumer.group.id"] = f"psc-cli-describe-{uuid.uuid4().hex[:12]}"
    config.setdefault("psc.consumer.commit.auto.enabled", "false")
    target = resolve_target(args.uri, config, "consumer")
    consumer = psc.Consumer(config)
    try:
        report = describe(consumer, target, include_internal=args.internal)
    finally:
        consumer.close()
    print(json.dumps(report, indent=2) if args.json else render_description(report))
    return EXIT_OK


def describe(consumer: Any, target: Target, *, include_internal: bool = False) -> dict[str, Any]:
    uri = target.uri
    endpoint = target.cluster.endpoint
    shown_security = {k: v for k, v in sorted(endpoint.security.items()) if not is_secret_key(k)}
    report: dict[str, Any] = {
        "uri": str(uri),
        "service": uri.service,
        "cluster_prefix": uri.cluster_prefix,
        "topic": uri.topic or None,
        "endpoint": {"bootstrap": endpoint.bootstrap, **shown_security, "provider": endpoint.provider},
    }
    metadata = consumer.list_topics(str(uri), _METADATA_TIMEOUT_S)
    report["brokers"] = {str(bid): str(broker) for bid, broker in sorted(metadata.brokers.items())}
    if uri.is_cluster:
        report["topics"] = _topics(metadata, include_internal)
    else:
        report["partitions"] = _partitions(consumer, metadata, str(uri))
    return report


def _topics(metadata: Any, include_internal: bool) -> list[dict[str, Any]]:
    topics = []
    for topic_uri, topic in sorted(metadata.topics.items()):
        if not include_internal and TopicUri.parse(topic_uri).topic.startswith("__"):
            continue
        topics.append({"topic_uri": topic_uri, "partitions": len(topic.partitions), "error": _error_text(topic.error)})
    return topics


def _error_text(error: Any) -> str | None:
    return None if error is None else str(error.str())


def _partitions(consumer: Any, metadata: Any, topic_uri: str) -> list[dict[str, Any]]:
    topic = metadata.topics.get(topic_uri)
    if topic is None or topic.error:
        reason = _error_text(topic.error) if topic is not None else "not in the cluster metadata"
        raise _TopicMissing(f"topic {topic_uri!r}: {reason}")
    rows = []
    for pid, part in sorted(topic.partitions.items()):
        low, high = _watermarks(consumer, topic_uri, pid)
        rows.append(
            {
                "partition": pid,
                "leader": part.leader,
                "replicas": list(part.replicas),
                "isr": list(part.isrs),
                "low": low,
                "high": high,
                "messages": None if low is None or high is None else high - low,
                "error": _error_text(part.error),
            }
        )
    return rows


class _TopicMissing(PscError):
    """The topic of a describe does not exist (or its metadata carries an error)."""


def _watermarks(consumer: Any, topic_uri: str, partition: int) -> tuple[int | None, int | None]:
    found = consumer.get_watermark_offsets(
        TopicUriPartition(topic_uri, partition), timeout=_METADATA_TIMEOUT_S, cached=False
    )
    return (None, None) if found is None else (int(found[0]), int(found[1]))


def render_description(report: Mapping[str, Any]) -> str:
    lines = [f"{label:16}{report[key]}" for label, key in _HEAD if report.get(key) is not None]
    lines.append("endpoint:")
    lines += [f"  {key:20}{value}" for key, value in report["endpoint"].items()]
    lines.append("brokers:         " + ", ".join(f"{b}={a}" for b, a in report["brokers"].items()))
    if "topics" in report:
        lines.append(f"topics ({len(report['topics'])}):")
        lines += _table(("topic_uri", "partitions", "error"), report["topics"])
    else:
        lines.append(f"partitions ({len(report['partitions'])}):")
        columns = ("partition", "leader", "replicas", "isr", "low", "high", "messages", "error")
        lines += _table(columns, report["partitions"])
    return "\n".join(lines)


_HEAD = (("uri:", "uri"), ("service:", "service"), ("cluster prefix:", "cluster_prefix"), ("topic:", "topic"))


def _table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    def cell(value: Any) -> str:
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        return "-" if value is None else str(value)

    cells = [[cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    return ["  " + "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip()
            for line in [list(columns), *cells]]  # fmt: skip


# --- entry point -------------------------------------------------------------------------------------

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "produce": cmd_produce,
    "consume": cmd_consume,
    "describe": cmd_describe,
}
_BAD_INPUT = (UsageError, InvalidUriError, ConfigError, DiscoveryError, UnknownBackendError, _TopicMissing)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        with _sigterm_as_interrupt():
            return _COMMANDS[args.command](args)
    except _BAD_INPUT as exc:
        return _fail(EXIT_USAGE, _one_line(exc))
    except PscError as exc:
        return _fail(EXIT_FAILED, _one_line(exc))
    except KeyboardInterrupt:
        print("psc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()  # the reader went away (e.g. `| head`): not an error
        return EXIT_OK
    except Exception as exc:  # a native client error: one line, no traceback
        return _fail(EXIT_FAILED, f"{type(exc).__name__}: {exc}")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ConfigError):
        return "invalid PSC configuration: " + "; ".join(exc.problems)
    return " ".join(str(exc).split())


def _fail(code: int, message: str) -> int:
    print(f"psc: error: {message}", file=sys.stderr)
    return code


def _silence_stdout() -> None:
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _raise_interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the command as Ctrl-C does: clients are closed, offsets committed."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
