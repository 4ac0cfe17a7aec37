"""Prove that each PSC port differs from its confluent-kafka original by the three migration edits only.

``python -m tests.migration.check_edits [-v]`` checks every pair ``confluent/<name>.py`` and
``psc/<name>.py`` beside this file. The files are diffed line by line; inside each changed hunk the
tokens are compared, and every token change must be one of:

``import``
    ``confluent_kafka`` becomes ``psc`` in an ``import``/``from`` statement, for the module paths in
    :data:`MODULES` (``confluent_kafka.admin`` -> ``psc.admin`` and so on), or ``import confluent_kafka``
    becomes ``import psc as confluent_kafka``, which keeps the qualified names. Imported names stay.
``config``
    A string literal holding a confluent-kafka configuration key, used as a key (``"key": value`` or
    ``conf["key"]``), becomes the PSC key that :func:`psc_keys_for` allows: the explicit table
    :data:`RENAMES` (which matches ``docs/psc-config.md``), the callbacks in :data:`CALLBACKS` under
    ``psc.producer.``, ``psc.consumer.`` or ``psc.admin.``, and the librdkafka properties in
    :data:`PASS_THROUGH` under the same prefixes.
``resource``
    Bootstrap and TLS settings give way to a resource name, in exactly these shapes:

    - a statement ``<NAME> = <expression>`` whose name contains ``BOOTSTRAP`` becomes
      ``<CLUSTER> = "<cluster URI>"`` (a string literal that is a Kafka cluster URI, ending in ``:``);
    - a dict entry whose key is a bootstrap/TLS key (:data:`CONNECTION_KEYS`) is deleted, or becomes
      ``"psc.admin.cluster.uri": <CLUSTER>`` (an AdminClient's cluster for calls that name no topic), or
      keeps its value under that key (``"bootstrap.servers": broker`` -> ``"psc.admin.cluster.uri": broker``
      when ``broker`` comes from the command line);
    - a topic-name expression ``E`` becomes ``<CLUSTER> + E``.

Anything else (a changed value, an added statement, an edited comment) is reported with its file and line.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import re
import sys
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORIGINALS = HERE / "confluent"
PORTS = HERE / "psc"

MODULES = {
    "confluent_kafka": "psc",
    "confluent_kafka.admin": "psc.admin",
    "confluent_kafka.aio": "psc.aio",
    "confluent_kafka.serialization": "psc.serialization",
    "confluent_kafka.schema_registry": "psc.schema_registry",
    "confluent_kafka.schema_registry.avro": "psc.schema_registry.avro",
    "confluent_kafka.schema_registry.json_schema": "psc.schema_registry.json_schema",
    "confluent_kafka.schema_registry.protobuf": "psc.schema_registry.protobuf",
}

# confluent-kafka (librdkafka) key -> the PSC key that replaces it, as in docs/psc-config.md.
# `client.id` becomes `psc.project`, PSC's name of the application, which the client id defaults to.
RENAMES: dict[str, tuple[str, ...]] = {
    "client.id": ("psc.project", "psc.client.id"),
    "linger.ms": ("psc.producer.batch.duration.ms",),
    "queue.buffering.max.ms": ("psc.producer.batch.duration.ms",),
    "batch.size": ("psc.producer.batch.size.bytes",),
    "enable.idempotence": ("psc.producer.idempotence.enabled",),
    "acks": ("psc.producer.acks",),
    "compression.type": ("psc.producer.compression.type",),
    "retries": ("psc.producer.retries",),
    "request.timeout.ms": ("psc.producer.request.timeout.ms",),
    "delivery.timeout.ms": ("psc.producer.delivery.timeout.ms",),
    "message.timeout.ms": ("psc.producer.delivery.timeout.ms",),
    "transactional.id": ("psc.producer.transactional.id",),
    "transaction.timeout.ms": ("psc.producer.transaction.timeout.ms",),
    "queue.buffering.max.messages": ("psc.producer.buffer.max.messages",),
    "queue.buffering.max.kbytes": ("psc.producer.buffer.max.kbytes",),
    "delivery.report.only.error": ("psc.producer.delivery.report.only.error",),
    "group.id": ("psc.consumer.group.id",),
    "auto.offset.reset": ("psc.consumer.offset.auto.reset",),
    "enable.auto.commit": ("psc.consumer.commit.auto.enabled",),
    "auto.commit.interval.ms": ("psc.consumer.commit.auto.interval.ms",),
    "max.poll.interval.ms": ("psc.consumer.poll.interval.max.ms",),
    "session.timeout.ms": ("psc.consumer.session.timeout.ms",),
    "isolation.level": ("psc.consumer.isolation.level",),
    "partition.assignment.strategy": ("psc.consumer.partition.assignment.strategy",),
    "fetch.max.bytes": ("psc.consumer.fetch.max.bytes",),
    "fetch.queue.backoff.ms": ("psc.consumer.fetch.queue.backoff.ms",),
    # SerializingProducer / DeserializingConsumer serializers: PSC-side keys that take the same objects.
    "key.serializer": ("psc.producer.key.serializer",),
    "value.serializer": ("psc.producer.value.serializer",),
    "key.deserializer": ("psc.consumer.key.deserializer",),
    "value.deserializer": ("psc.consumer.value.deserializer",),
    "ssl.ca.location": ("psc.ssl.ca.location",),
    "ssl.certificate.location": ("psc.ssl.certificate.location",),
    "ssl.key.location": ("psc.ssl.key.location",),
    "ssl.key.password": ("psc.ssl.key.password",),
}

CLIENTS = ("producer", "consumer", "admin")

# Callables confluent-kafka takes in its configuration; PSC takes them under the client's namespace.
CALLBACKS = ("error_cb", "stats_cb", "throttle_cb", "oauth_cb", "logger", "on_commit", "on_delivery")

# librdkafka properties PSC does not map: they keep their name under the client's namespace.
PASS_THROUGH = (
    "enable.partition.eof",
    "enable.auto.offset.store",
    "statistics.interval.ms",
    "debug",
    "heartbeat.interval.ms",
    "group.instance.id",
    "max.in.flight.requests.per.connection",
    "message.max.bytes",
)

# Of those, the properties every librdkafka client has: one `psc.<name>` key serves a dict shared by clients.
GENERIC_PASS_THROUGH = ("statistics.interval.ms", "debug", "max.in.flight.requests.per.connection", "message.max.bytes")

# Keys that a resource name replaces: where to connect and how to secure the connection.
CONNECTION_KEYS = ("bootstrap.servers", "metadata.broker.list", "security.protocol")
CONNECTION_PREFIXES = ("ssl.", "sasl.")

# What `bootstrap.servers` was for an AdminClient: the cluster of the calls that name no topic.
ADMIN_CLUSTER_KEY = "psc.admin.cluster.uri"

CLUSTER_URI = re.compile(
    r"(plaintext|secure):/rn:kafka:[A-Za-z0-9._-]*:[A-Za-z0-9.-]+_[A-Za-z0-9.-]+:[A-Za-z0-9._-]*:[A-Za-z0-9._-]+:"
)

LAYOUT = {tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}


def psc_keys_for(confluent_key: str) -> tuple[str, ...]:
    """The PSC keys a confluent-kafka configuration key may become."""
    if confluent_key in RENAMES:
        return RENAMES[confluent_key]
    if confluent_key in CALLBACKS or confluent_key in PASS_THROUGH:
        generic = (f"psc.{confluent_key}",) if confluent_key in GENERIC_PASS_THROUGH else ()
        return (*generic, *(f"psc.{client}.{confluent_key}" for client in CLIENTS))
    return ()


def is_connection_key(key: str) -> bool:
    return key in CONNECTION_KEYS or (key.startswith(CONNECTION_PREFIXES) and key not in RENAMES)


@dataclass(frozen=True)
class Edit:
    kind: str  # "import", "config" or "resource"
    line: int  # line in the port (in the original for a deletion)
    text: str


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True, eq=False)  # identity: the same text twice on a line is two tokens
class Token:
    type: int
    string: str
    line: int

    @property
    def key(self) -> tuple[int, str]:
        return (self.type, self.string)


@dataclass
class Source:
    path: Path
    lines: list[str]
    tokens: list[Token]
    imports: dict[int, str]  # line -> module of the import statement covering it

    @classmethod
    def read(cls, path: Path) -> Source:
        text = path.read_text()
        found = tokenize.generate_tokens(io.StringIO(text).readline)
        tokens = [Token(t.type, t.string, t.start[0]) for t in found if t.type not in LAYOUT]
        imports: dict[int, str] = {}
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                imports[line] = ",".join(modules)
        return cls(path, text.splitlines(), tokens, imports)

    def tokens_in(self, first: int, last: int) -> list[Token]:
        """Tokens starting on lines ``first``..``last`` (1-based, inclusive)."""
        return [t for t in self.tokens if first <= t.line <= last]


def check_pair(original_path: Path, port_path: Path) -> tuple[list[Edit], list[Problem]]:
    """Classify every change from the original to the port; what no rule explains is a problem."""
    original, port = Source.read(original_path), Source.read(port_path)
    edits: list[Edit] = []
    problems: list[Problem] = []
    clusters: set[str] = set()
    matcher = difflib.SequenceMatcher(None, original.lines, port.lines, autojunk=False)
    hunks = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    # Cluster constants first: topic-name edits anywhere may use them.
    for _, _i1, _i2, j1, j2 in hunks:
        clusters |= _cluster_names(port.tokens_in(j1 + 1, j2))
    for _, i1, i2, j1, j2 in hunks:
        before, after = original.tokens_in(i1 + 1, i2), port.tokens_in(j1 + 1, j2)
        found, unexplained = _classify(before, after, original, port, clusters)
        edits.extend(found)
        for token, reason in unexplained:
            problems.append(Problem(port_path if token in after else original_path, token.line, reason))
        if not found and not unexplained:
            problems.append(Problem(port_path, j1 + 1, "layout changed without an edit that needs it"))
    return edits, problems


def _cluster_names(tokens: Sequence[Token]) -> set[str]:
    """Names assigned a cluster URI literal: ``CLUSTER = "plaintext:/rn:kafka:...:cluster01:"``."""
    names = set()
    for name, equals, value in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if name.type == tokenize.NAME and equals.string == "=" and _cluster_literal(value):
            names.add(name.string)
    return names


def _cluster_literal(token: Token) -> bool:
    return token.type == tokenize.STRING and CLUSTER_URI.fullmatch(_literal(token)) is not None


def _literal(token: Token) -> str:
    try:
        value = ast.literal_eval(token.string)
    except (ValueError, SyntaxError):
        return ""
    return value if isinstance(value, str) else ""


Unexplained = list[tuple[Token, str]]


def _classify(
    before: list[Token], after: list[Token], original: Source, port: Source, clusters: set[str]
) -> tuple[list[Edit], Unexplained]:
    edits: list[Edit] = []
    unexplained: Unexplained = []
    before, after = _take_bootstrap_assignments(before, after, clusters, edits)
    before, after = _take_connection_entries(before, after, clusters, edits)
    matcher = difflib.SequenceMatcher(None, [t.key for t in before], [t.key for t in after], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        old, new = before[i1:i2], after[j1:j2]
        if tag == "equal":
            continue
        edit = (
            _import_edit(old, new, _neighbours(after, j1, j2)[1], original, port)
            or _config_edit(old, new, _neighbours(after, j1, j2))
            or _topic_uri_edit(old, new, clusters)
        )
        if edit is not None:
            edits.append(edit)
            continue
        shown = " ".join(t.string for t in old) or "(nothing)"
        into = " ".join(t.string for t in new) or "(nothing)"
        unexplained.append(((new or old)[0], f"not a migration edit: {shown!r} -> {into!r}"))
    return edits, unexplained


def _take_bootstrap_assignments(
    before: list[Token], after: list[Token], clusters: set[str], edits: list[Edit]
) -> tuple[list[Token], list[Token]]:
    """Pair ``BOOTSTRAP = <expr>`` statements of the original with ``CLUSTER = "<uri>"`` of the port."""
    old_statements = _statements(before)
    new_statements = _statements(after)
    for old in old_statements:
        if not (len(old) >= 3 and old[1].string == "=" and "BOOTSTRAP" in old[0].string.upper()):
            continue
        pair = next((new for new in new_statements if len(new) == 3 and new[0].string in clusters), None)
        if pair is not None and _cluster_literal(pair[2]):
            new_statements.remove(pair)
            before = [t for t in before if t not in old]
            after = [t for t in after if t not in pair]
            edits.append(
                Edit("resource", pair[0].line, f"{old[0].string} = ... -> {pair[0].string} = {pair[2].string}")
            )
        elif not _used_after(old[0].string, before, old):
            before = [t for t in before if t not in old]
            edits.append(Edit("resource", old[0].line, f"{old[0].string} = ... deleted"))
    return before, after


def _take_connection_entries(
    before: list[Token], after: list[Token], clusters: set[str], edits: list[Edit]
) -> tuple[list[Token], list[Token]]:
    """Drop bootstrap/TLS dict entries of the original, and the ``psc.admin.cluster.uri`` entries replacing them.

    The replacement's value is the cluster constant, or the bootstrap entry's own value: a program that
    takes its broker from the command line takes the cluster URI there instead.
    """
    bootstrap_values: list[list[str]] = []
    for entry in _entries(before):
        key = _literal(entry[0])
        if is_connection_key(key):
            before = [t for t in before if t not in entry]
            edits.append(Edit("resource", entry[0].line, f"{key} deleted"))
            bootstrap_values.append(_entry_value(entry))
    for entry in _entries(after):
        value = _entry_value(entry)
        if _literal(entry[0]) != ADMIN_CLUSTER_KEY or not bootstrap_values:
            continue
        if value in bootstrap_values or (len(value) == 1 and value[0] in clusters):
            bootstrap_values.remove(value if value in bootstrap_values else bootstrap_values[0])
            after = [t for t in after if t not in entry]
            edits.append(Edit("resource", entry[0].line, f"{ADMIN_CLUSTER_KEY}: {' '.join(value)} replaces it"))
    return before, after


def _entry_value(entry: Sequence[Token]) -> list[str]:
    """The texts of a dict entry's value tokens (after ``"key":``, without the trailing comma)."""
    texts = [t.string for t in entry[2:]]
    return texts[:-1] if texts[-1:] == [","] else texts


def _entries(tokens: Sequence[Token]) -> list[list[Token]]:
    """Dict entries ``"key": value,`` (the trailing comma included when present) found in ``tokens``."""
    found = []
    for start, token in enumerate(tokens):
        if token.type != tokenize.STRING or start + 1 >= len(tokens) or tokens[start + 1].string != ":":
            continue
        depth, end = 0, start + 2
        while end < len(tokens):
            text = tokens[end].string
            if depth == 0 and text in (",", "}"):
                break
            depth += text in ("(", "[", "{")
            depth -= text in (")", "]")
            end += 1
        if end < len(tokens) and tokens[end].string == ",":
            end += 1
        found.append(list(tokens[start:end]))
    return found


def _statements(tokens: Sequence[Token]) -> list[list[Token]]:
    """Top-level assignments starting at the beginning of a line, as token runs (one per line)."""
    by_line: dict[int, list[Token]] = {}
    for token in tokens:
        by_line.setdefault(token.line, []).append(token)
    return [run for run in by_line.values() if len(run) >= 3 and run[0].type == tokenize.NAME and run[1].string == "="]


def _used_after(name: str, tokens: Sequence[Token], statement: Sequence[Token]) -> bool:
    return any(t.string == name for t in tokens if t not in statement)


def _import_edit(old: list[Token], new: list[Token], following: str, original: Source, port: Source) -> Edit | None:
    """``confluent_kafka[.x]`` -> ``psc[.x]``; ``import confluent_kafka`` -> ``import psc as confluent_kafka``."""
    aliased = not old and [t.string for t in new] == ["psc", "as"] and following == "confluent_kafka"
    if aliased and port.imports.get(new[0].line) == "psc":
        return Edit("import", new[0].line, "confluent_kafka -> psc as confluent_kafka")
    if [t.string for t in old] != ["confluent_kafka"]:
        return None
    if [t.string for t in new] != ["psc"]:
        return None
    old_modules = original.imports.get(old[0].line, "").split(",")
    new_modules = port.imports.get(new[0].line, "").split(",")
    if not all(module in MODULES for module in old_modules):
        return None
    if [MODULES[module] for module in old_modules] != new_modules:
        return None
    return Edit("import", new[0].line, f"{','.join(old_modules)} -> {','.join(new_modules)}")


def _neighbours(tokens: list[Token], first: int, end: int) -> tuple[str, str]:
    """The texts of the tokens just before ``tokens[first]`` and just after ``tokens[end - 1]``."""
    before = tokens[first - 1].string if first > 0 else ""
    after = tokens[end].string if end < len(tokens) else ""
    return before, after


def _config_edit(old: list[Token], new: list[Token], neighbours: tuple[str, str]) -> Edit | None:
    """A key literal renamed where it is used as a key: ``"key": value`` or ``conf["key"]``."""
    if len(old) != 1 or len(new) != 1 or old[0].type != tokenize.STRING or new[0].type != tokenize.STRING:
        return None
    if neighbours[1] != ":" and neighbours != ("[", "]"):
        return None
    confluent_key, psc_key = _literal(old[0]), _literal(new[0])
    if psc_key not in psc_keys_for(confluent_key):
        return None
    return Edit("config", new[0].line, f"{confluent_key} -> {psc_key}")


def _topic_uri_edit(old: list[Token], new: list[Token], clusters: set[str]) -> Edit | None:
    if old or len(new) != 2 or new[1].string != "+":
        return None
    if new[0].string not in clusters and not _cluster_literal(new[0]):
        return None
    return Edit("resource", new[0].line, f"topic name prefixed with {new[0].string}")


def pairs(originals: Path | None = None, ports: Path | None = None) -> list[tuple[Path, Path]]:
    """Every ``(original, port)`` pair; an original without a port (or the reverse) is an error."""
    originals, ports = originals or ORIGINALS, ports or PORTS
    names = {p.name for p in originals.glob("*.py")} | {p.name for p in ports.glob("*.py")}
    return [(originals / name, ports / name) for name in sorted(names)]


def check_all(originals: Path | None = None, ports: Path | None = None, verbose: bool = False) -> list[Problem]:
    problems: list[Problem] = []
    for original, port in pairs(originals, ports):
        if not original.exists() or not port.exists():
            missing = original if not original.exists() else port
            problems.append(Problem(missing, 0, "has no counterpart: every program needs an original and a port"))
            continue
        edits, found = check_pair(original, port)
        problems.extend(found)
        if verbose:
            for edit in edits:
                print(f"{port}:{edit.line}: {edit.kind}: {edit.text}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="list every classified edit")
    args = parser.parse_args(argv)
    problems = check_all(verbose=args.verbose)
    for problem in problems:
        print(problem, file=sys.stderr)
    count = len(pairs())
    print(f"{count} pairs checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
