"""Remediation under real faults: the same application on raw confluent-kafka and on PSC.

``python -m benchmarks.faults [--json FILE] [--only SCENARIO]`` starts its own single-node Kafka (KRaft,
ports 29092 plaintext / 29093 controller / 29094 TLS, data under ``.stack/faults``), then runs one
producer + consumer application per system through a schedule of real faults:

1. ``broker-restart``   the broker is stopped (SIGTERM) mid-stream and started again after 6 s;
2. ``topic-recreate``   the topic is deleted and created again with the same name and partitions;
3. ``poll-stall``       the consumer sleeps past ``max.poll.interval.ms`` once;
4. ``producer-fatal``   an idempotent producer with ``enable.gapless.guarantee`` hits a fatal error;
5. ``cert-rotation``    the CA and every certificate of the TLS listener are replaced.

The application logic is identical for both systems (an adapter translates config and API names). It
counts what reaches application code (exceptions from produce/poll/commit, failed delivery reports, error
messages and error callbacks) and restarts a client, as an operator or a stream runner would, when it
reports a fatal error or makes no progress for a while. Afterwards every acknowledged sequence number must
have been consumed: the report gives lost and duplicated messages per phase and system, and the reduction
of application-visible failures (exceptions + restarts) of PSC against the raw client.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
FAULTS_HOME = ROOT / ".stack" / "faults"
PLAINTEXT_PORT = 29092
CONTROLLER_PORT = 29093
SSL_PORT = 29094  # advertised TLS port: the dropping proxy in front of the broker's TLS listener
SSL_BROKER_PORT = 29095  # the broker's own TLS listener
CLUSTER = "rn:kafka:local:local_faults::faults01:"
KEY_PASSWORD = "faults-key-pass"  # the broker's PEM keystore needs an encrypted key

SYSTEMS = ("raw", "psc")
PHASES = ("broker-restart", "topic-recreate", "poll-stall", "producer-fatal", "cert-rotation")


def say(message: str) -> None:
    print(f"faults: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------
# accounting (pure)


@dataclass
class PhaseResult:
    """What one system's application saw in one phase."""

    phase: str
    system: str
    exceptions: int = 0
    restarts: int = 0
    lost: int = 0
    duplicated: int = 0
    acked: int = 0
    consumed: int = 0
    error_events: int = 0
    excluded: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return self.exceptions + self.restarts


def loss_and_duplicates(acked: Iterable[int], consumed: Iterable[int], excluded: Iterable[int] = ()) -> tuple[int, int]:
    """(lost, duplicated): acknowledged but never consumed; consumed more than once (extra copies).

    ``excluded`` are sequence numbers the fault itself destroyed (acknowledged, then deleted with their
    topic before anyone could read them): they are neither lost by the client nor counted.
    """
    seen: dict[int, int] = {}
    for seq in consumed:
        seen[seq] = seen.get(seq, 0) + 1
    gone = set(excluded)
    lost = sum(1 for seq in set(acked) if seq not in seen and seq not in gone)
    duplicated = sum(count - 1 for count in seen.values())
    return lost, duplicated


def reduction_percent(raw_failures: int, psc_failures: int) -> float | None:
    """How many fewer failures PSC had than raw, in percent; ``None`` when raw had none to reduce."""
    if raw_failures <= 0:
        return None
    return 100.0 * (raw_failures - psc_failures) / raw_failures


class EpisodeCounter:
    """Counts error episodes: a burst of one error from one client within ``window_s`` counts once.

    A producer failing 500 queued records at once hands the application 500 delivery reports; an error
    handler (and an operator's alert) sees one incident. Raw events are kept too.
    """

    def __init__(self, window_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self.episodes = 0
        self.events = 0
        self.by_name: dict[str, int] = {}
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def record(self, client: str, name: str) -> None:
        now = self.clock()
        with self._lock:
            self.events += 1
            self.by_name[name] = self.by_name.get(name, 0) + 1
            last = self._last.get((client, name))
            self._last[(client, name)] = now
            if last is None or now - last > self.window_s:
                self.episodes += 1


def totals(results: Sequence[PhaseResult], system: str) -> PhaseResult:
    total = PhaseResult("total", system)
    for r in results:
        if r.system == system:
            total.exceptions += r.exceptions
            total.restarts += r.restarts
            total.lost += r.lost
            total.duplicated += r.duplicated
            total.acked += r.acked
            total.consumed += r.consumed
            total.error_events += r.error_events
            total.excluded += r.excluded
    return total


def format_report(results: Sequence[PhaseResult]) -> str:
    """The phase x system table, totals and the reduction of application-visible failures."""
    header = ("phase", "system", "exceptions", "restarts", "failures", "lost", "duplicated", "acked", "events")
    rows: list[tuple[str, ...]] = [header]
    phases = list(dict.fromkeys(r.phase for r in results))
    systems = [s for s in SYSTEMS if any(r.system == s for r in results)]
    for phase in phases:
        for r in results:
            if r.phase == phase:
                rows.append(_row(r))
    for system in systems:
        rows.append(_row(totals(results, system)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [_line(row, widths) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - len(systems), lines[1])
    lines.append("")
    lines.extend(_summary(results, phases))
    return "\n".join(lines)


def _line(row: Sequence[str], widths: Sequence[int]) -> str:
    """Names left-aligned, figures right-aligned."""
    cells = [cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))]
    return "  ".join(cells)


def _row(r: PhaseResult) -> tuple[str, ...]:
    figures = (r.exceptions, r.restarts, r.failures, r.lost, r.duplicated, r.acked, r.error_events)
    return (r.phase, r.system, *(str(f) for f in figures))


def _summary(results: Sequence[PhaseResult], phases: Sequence[str]) -> list[str]:
    if not all(any(r.system == s for r in results) for s in SYSTEMS):
        return ["failure reduction: n/a (both systems must run)"]
    lines = []
    for phase in [*phases, "total"]:
        chosen = results if phase == "total" else [r for r in results if r.phase == phase]
        raw, psc = totals(chosen, "raw"), totals(chosen, "psc")
        cut = reduction_percent(raw.failures, psc.failures)
        text = "n/a (raw had none)" if cut is None else f"{cut:.0f}%"
        lines.append(f"failure reduction psc vs raw, {phase}: {text} ({raw.failures} -> {psc.failures})")
    raw, psc = totals(results, "raw"), totals(results, "psc")
    cut = reduction_percent(raw.failures, psc.failures)
    goal = cut is not None and cut >= 80.0 and psc.lost == 0
    lines.append(f"goal (>= 80% fewer failures, zero loss with acks=all): {'met' if goal else 'NOT met'}")
    return lines


# ---------------------------------------------------------------------------------------------------------
# certificates


@dataclass(frozen=True)
class Certs:
    """Client-side files (rewritten in place on rotation) and the broker's current PEM stores."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "client" / "ca.pem"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client" / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client" / "client.key"

    def keystore(self, generation: int) -> Path:
        return self.directory / f"gen{generation}" / "broker-keystore.pem"

    def truststore(self, generation: int) -> Path:
        return self.directory / f"gen{generation}" / "ca.pem"


def openssl(*args: str | Path) -> None:
    done = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args[:2]))} failed: {done.stderr.strip()}")


def make_generation(certs: Certs, generation: int) -> None:
    """A new CA with a broker and a client certificate; the client files are replaced in place."""
    gen = certs.directory / f"gen{generation}"
    gen.mkdir(parents=True, exist_ok=True)
    ca_key, ca = gen / "ca.key", gen / "ca.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
            "-subj", f"/CN=faults-ca-{generation}")  # fmt: skip
    # The broker keeps the same subject and names across generations: Kafka refuses a dynamic keystore
    # update whose certificate names differ from the one in use.
    san = gen / "san.ext"
    san.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, subject in (("broker", "/CN=localhost"), ("client", "/CN=faults-client")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", gen / f"{name}.key", "-out", gen / f"{name}.csr",
                "-subj", subject)  # fmt: skip
        openssl("x509", "-req", "-in", gen / f"{name}.csr", "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                "-out", gen / f"{name}.pem", "-days", "2", "-extfile", san)  # fmt: skip
    # Kafka reads a file-based PEM keystore only with an encrypted PKCS#8 key, and Java has no PBES2 key
    # factory: use the PKCS#12 PBE scheme.
    openssl("pkcs8", "-topk8", "-in", gen / "broker.key", "-out", gen / "broker.p8", "-v1", "PBE-SHA1-3DES",
            "-passout", f"pass:{KEY_PASSWORD}")  # fmt: skip
    keystore = (gen / "broker.p8").read_text() + (gen / "broker.pem").read_text() + ca.read_text()
    certs.keystore(generation).write_text(keystore)
    certs.ca.parent.mkdir(parents=True, exist_ok=True)
    files = ((ca, certs.ca), (gen / "client.pem", certs.client_cert), (gen / "client.key", certs.client_key))
    for source, target in files:  # each replaced atomically: a client never reads half a file
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(source.read_bytes())
        tmp.replace(target)


# ---------------------------------------------------------------------------------------------------------
# a TCP proxy that can drop every connection


class DroppingProxy:
    """Forwards ``listen_port`` to ``target_port``; :meth:`drop_all` cuts every open connection.

    The broker has no API to close client connections, and a certificate rotation only affects new
    handshakes: dropping the connections makes the clients reconnect at once, as a load balancer or a
    broker roll would.
    """

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.target_port = target_port
        self._server = socket.create_server(("127.0.0.1", listen_port), reuse_port=False)
        self._server.settimeout(0.5)
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="faults-proxy", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            self._close(source)
            self._close(sink)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._conns.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def drop_all(self) -> int:
        with self._lock:
            conns = list(self._conns)
        for sock in conns:
            self._close(sock)
        return len(conns) // 2

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        self.drop_all()


# ---------------------------------------------------------------------------------------------------------
# the fault broker


def load_stack() -> ModuleType:
    """compose/stack.py, the stdlib-only launcher, for its jar fetching and process helpers."""
    path = ROOT / "compose" / "stack.py"
    spec = importlib.util.spec_from_file_location("faults_stack", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["faults_stack"] = module
    spec.loader.exec_module(module)
    return module


def broker_properties(data: Path, certs: Certs) -> str:
    ssl = "listener.name.ssl."
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{CONTROLLER_PORT}",
            f"listeners=PLAINTEXT://127.0.0.1:{PLAINTEXT_PORT},CONTROLLER://127.0.0.1:{CONTROLLER_PORT},"
            f"SSL://127.0.0.1:{SSL_BROKER_PORT}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{PLAINTEXT_PORT},SSL://127.0.0.1:{SSL_PORT}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL",
            f"{ssl}ssl.keystore.type=PEM",
            f"{ssl}ssl.keystore.location={certs.keystore(1)}",
            f"{ssl}ssl.key.password={KEY_PASSWORD}",
            f"{ssl}ssl.truststore.type=PEM",
            f"{ssl}ssl.truststore.location={certs.truststore(1)}",
            f"{ssl}ssl.client.auth=required",
            f"{ssl}ssl.endpoint.identification.algorithm=",
            # Dynamic updates of password settings (the rotated keystore's key password) are stored encrypted.
            "password.encoder.secret=faults-encoder-secret",
            f"log.dirs={data}",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=2",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=2",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "min.insync.replicas=1",
            "default.replication.factor=1",
            "group.initial.rebalance.delay.ms=0",
            # The poll-stall phase runs a 4 s session timeout, under the broker's 6 s default minimum.
            "group.min.session.timeout.ms=1000",
            # Only the schedule creates topics: a producer must not silently recreate a deleted one.
            "auto.create.topics.enable=false",
            "delete.topic.enable=true",
            "log.segment.bytes=16777216",
            "",
        ]
    )


class FaultBroker:
    """This benchmark's own broker: started, killed, restarted and always stopped at exit."""

    def __init__(self, home: Path = FAULTS_HOME) -> None:
        self.stack = load_stack()
        self.home = home
        self.settings = self.stack.Settings(
            home=home,
            cache=self.stack.Settings.from_env().cache,
            kafka_version=os.environ.get("STACK_KAFKA_VERSION", "4.1.1"),
            kafka_port=PLAINTEXT_PORT,
            controller_port=CONTROLLER_PORT,
            mysql_port=0,
            s3_port=0,
        )
        self.certs = Certs(home / "certs")
        self.generation = 0
        self.pid: int | None = None
        self.proxy: DroppingProxy | None = None
        self.config = home / "server.properties"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{PLAINTEXT_PORT}"

    @property
    def ssl_bootstrap(self) -> str:
        return f"127.0.0.1:{SSL_PORT}"

    def prepare(self) -> None:
        """A fresh data directory, first-generation certificates and a formatted log dir."""
        import shutil

        for port in (PLAINTEXT_PORT, CONTROLLER_PORT, SSL_PORT, SSL_BROKER_PORT):
            self.stack.require_free(port, "fault broker", "(fixed port)")
        if self.home.exists():
            shutil.rmtree(self.home)
        data = self.home / "data"
        data.mkdir(parents=True)
        self.rotate_files()
        self.config.write_text(broker_properties(data, self.certs))
        log4j = self.home / "log4j2.properties"
        log4j.write_text(self.stack.LOG4J2.format(log=self.home / "server.log"))
        classpath = f"{self.stack.kafka_jars(self.settings)}/*"
        storage = ["java", "-cp", classpath, "kafka.tools.StorageTool"]
        cluster_id = subprocess.run([*storage, "random-uuid"], check=True, capture_output=True, text=True,
                                    timeout=60).stdout.strip().splitlines()[-1]  # fmt: skip
        subprocess.run([*storage, "format", "-t", cluster_id, "-c", str(self.config)], check=True,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
        self.proxy = DroppingProxy(SSL_PORT, SSL_BROKER_PORT)

    def rotate_files(self) -> int:
        self.generation += 1
        make_generation(self.certs, self.generation)
        return self.generation

    def start(self, timeout_s: float = 60.0) -> None:
        classpath = f"{self.stack.kafka_jars(self.settings)}/*"
        log4j = self.home / "log4j2.properties"
        self.pid = self.stack.spawn(
            self.settings,
            "kafka",
            ["java", "-Xmx512m", "-Xms256m", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
             f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath, "kafka.Kafka", str(self.config)],
        )  # fmt: skip
        self.stack.wait_until(
            "fault broker", lambda: self.stack.kafka_metadata_ok(PLAINTEXT_PORT), self.pid,
            self.home / "kafka.log", timeout_s,
        )  # fmt: skip

    def terminate(self) -> None:
        """SIGTERM, SIGKILL after 15 s. A SIGKILLed single-node KRaft broker needs ~10 s more to start."""
        if self.pid is not None:
            self.stack.stop(self.settings, "kafka", grace_s=15)
            self.pid = None

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None
        if self.pid is not None:
            self.stack.stop(self.settings, "kafka", grace_s=15)
            self.pid = None


# ---------------------------------------------------------------------------------------------------------
# the application: identical for both systems; an adapter builds the clients


@dataclass(frozen=True)
class AppSettings:
    """What the application asks of its clients, in neutral terms; each adapter translates it."""

    topic: str
    group: str
    tls: bool = False
    gapless: bool = False
    max_poll_interval_ms: int = 6000
    session_timeout_ms: int = 4000


class Adapter(Protocol):
    """Builds one system's clients; they answer confluent-kafka's method names."""

    name: str

    def topic(self, settings: AppSettings) -> str: ...

    def producer(self, settings: AppSettings, on_error: Callable[[Any], None]) -> Any: ...

    def consumer(self, settings: AppSettings, on_error: Callable[[Any], None]) -> Any: ...


def producer_common() -> dict[str, Any]:
    # Durability settings of the application, the same for both systems.
    return {"acks": "all", "enable.idempotence": True, "compression.type": "lz4", "linger.ms": 5}


def consumer_common(settings: AppSettings) -> dict[str, Any]:
    return {
        "group.id": settings.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "max.poll.interval.ms": settings.max_poll_interval_ms,
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": 1000,
    }


class RawAdapter:
    """confluent-kafka as a typical application configures it."""

    name = "raw"

    def __init__(self, broker: FaultBroker) -> None:
        self.broker = broker

    def _connection(self, settings: AppSettings) -> dict[str, Any]:
        if not settings.tls:
            return {"bootstrap.servers": self.broker.bootstrap}
        certs = self.broker.certs
        return {
            "bootstrap.servers": self.broker.ssl_bootstrap,
            "security.protocol": "ssl",
            "ssl.ca.location": str(certs.ca),
            "ssl.certificate.location": str(certs.client_cert),
            "ssl.key.location": str(certs.client_key),
        }

    def topic(self, settings: AppSettings) -> str:
        return settings.topic

    def producer(self, settings: AppSettings, on_error: Callable[[Any], None]) -> Any:
        import confluent_kafka

        config = {**self._connection(settings), **producer_common(), "error_cb": on_error, "log_level": 0}
        if settings.gapless:
            config["enable.gapless.guarantee"] = True
        return confluent_kafka.Producer(config)

    def consumer(self, settings: AppSettings, on_error: Callable[[Any], None]) -> Any:
        import confluent_kafka

        config = {**self._connection(settings), **consumer_common(settings), "error_cb": on_error, "log_level": 0}
        return confluent_kafka.Consumer(config)


class PscAdapter:
    """PSC with the same settings under ``psc.*`` keys; the cluster comes from a discovery file."""

    name = "psc"

    def __init__(self, broker: FaultBroker) -> None:
        self.broker = broker
        self.discovery = broker.home / "discovery.json"
        self.discovery.write_text(
            json.dumps(
                {
                    f"plaintext:/{CLUSTER}": {"connect": broker.bootstrap},
                    f"secure:/{CLUSTER}": {"connect": broker.ssl_bootstrap},
                }
            )
        )

    def _generic(self, settings: AppSettings) -> dict[str, Any]:
        config: dict[str, Any] = {"psc.project": "faults", "psc.discovery.file": str(self.discovery)}
        if settings.tls:
            certs = self.broker.certs
            config["psc.ssl.ca.location"] = str(certs.ca)
            config["psc.ssl.certificate.location"] = str(certs.client_cert)
            config["psc.ssl.key.location"] = str(certs.client_key)
        return config

    def topic(self, settings: AppSettings) -> str:
        return f"{'secure' if settings.tls else 'plaintext'}:/{CLUSTER}{settings.topic}"

    def producer(self, settings: AppSettings, on_error: Callable[[Any], None]) -> Any:
        import psc

        del on_error  # PSC handles client-level errors itself and raises what it cannot
        native = producer_common()  # librdkafka's log_level is not accepted by PSC config
        if settings.gapless:
            native["enable.gapless.guarantee"] = True
        return psc.Producer({**self._generic(settings), **_prefixed("psc.producer.", native)})

    def consumer(self, settings: AppSettings, on_error: Callable[[Any], None]) -> Any:
        import psc

        del on_error
        native = consumer_common(settings)
        return psc.Consumer({**self._generic(settings), **_prefixed("psc.consumer.", native)})


def _prefixed(prefix: str, native: Mapping[str, Any]) -> dict[str, Any]:
    return {prefix + key: str(value).lower() if isinstance(value, bool) else value for key, value in native.items()}


def describe_error(error: Any) -> tuple[str, bool]:
    """(name, fatal) of a confluent-kafka ``KafkaError``/``KafkaException``, a PSC error, or anything else."""
    if isinstance(error, BaseException) and error.args and callable(getattr(error.args[0], "name", None)):
        error = error.args[0]  # KafkaException wraps its KafkaError
    name = getattr(error, "name", None)
    if callable(name):
        fatal = getattr(error, "fatal", None)
        return str(name()), bool(fatal()) if callable(fatal) else False
    if isinstance(name, str) and name:
        return name, bool(getattr(error, "fatal", False))
    return type(error).__name__, False


@dataclass
class Ledger:
    """Sequence numbers acknowledged by the broker and consumed by the application."""

    acked: set[int] = field(default_factory=set)
    consumed: list[int] = field(default_factory=list)
    consumed_set: set[int] = field(default_factory=set)
    ack_times: dict[int, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, seq: int) -> None:
        with self.lock:
            self.acked.add(seq)
            self.ack_times[seq] = time.monotonic()

    def consume(self, seq: int) -> None:
        with self.lock:
            self.consumed.append(seq)
            self.consumed_set.add(seq)

    def lag(self) -> int:
        with self.lock:
            return len(self.acked - self.consumed_set)


STALL_S = 15.0  # no progress for this long with work waiting: the application restarts its client
CLOSE_TIMEOUT_S = 8.0
RATE_PER_S = 1000
COMMIT_EVERY_S = 1.0


class App:
    """Producer and consumer loops in two threads, with the error handling and restarts of a typical app."""

    def __init__(self, adapter: Adapter, settings: AppSettings) -> None:
        self.adapter = adapter
        self.settings = settings
        self.topic = adapter.topic(settings)
        self.ledger = Ledger()
        self.errors = EpisodeCounter()
        self.restarts = 0
        self.producing = threading.Event()
        self.stop = threading.Event()
        self.stall_consumer_s = 0.0  # set by the poll-stall fault: sleep this long before the next poll
        self.consumer_ready = threading.Event()
        self._threads = [
            threading.Thread(target=self._guard, args=(self._produce_loop,), name="app-producer", daemon=True),
            threading.Thread(target=self._guard, args=(self._consume_loop,), name="app-consumer", daemon=True),
        ]
        self.crashes: list[str] = []
        self._generation = 0
        self._outstanding: set[int] = set()
        self._last_ack = time.monotonic()

    def start(self) -> None:
        self.producing.set()
        for thread in self._threads:
            thread.start()

    def join(self, timeout_s: float) -> None:
        self.stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))

    def _guard(self, loop: Callable[[], None]) -> None:
        try:
            loop()
        except Exception as exc:  # a bug in the harness must show, not hang the phase
            self.crashes.append(f"{loop.__name__}: {exc!r}")

    def error(self, role: str, error: Any) -> bool:
        """Count an error the application code received; True when it is fatal for the client."""
        name, fatal = describe_error(error)
        self.errors.record(role, name)
        return fatal

    # --- producer --------------------------------------------------------------------------------

    def _produce_loop(self) -> None:
        seq, fatal = 0, threading.Event()
        producer = self._new_producer(fatal)
        started = time.monotonic()
        while not self.stop.is_set():
            if self.producing.is_set():
                due = int((time.monotonic() - started) * RATE_PER_S)
                while seq < due and not fatal.is_set() and self._send(producer, seq, fatal):
                    seq += 1
            else:
                started = time.monotonic() - seq / RATE_PER_S  # no catch-up burst after a pause
            try:
                producer.poll(0.01)
            except Exception as exc:
                if self.error("producer", exc):
                    fatal.set()
                time.sleep(0.1)
            stuck = bool(self._outstanding) and time.monotonic() - self._last_ack > STALL_S
            if fatal.is_set() or stuck:
                self.restarts += 1
                self._generation += 1  # reports of the abandoned client are the restart's, not new errors
                self._outstanding.clear()
                close_quietly(producer, flush=False)
                fatal = threading.Event()
                producer = self._new_producer(fatal)
        close_quietly(producer, flush=True)

    def _new_producer(self, fatal: threading.Event) -> Any:
        generation = self._generation
        self._last_ack = time.monotonic()

        def on_error(err: Any) -> None:
            if generation == self._generation and self.error("producer", err):
                fatal.set()

        return self.adapter.producer(self.settings, on_error)

    def _send(self, producer: Any, seq: int, fatal: threading.Event) -> bool:
        generation = self._generation

        def delivered(err: Any, _msg: Any) -> None:
            if generation != self._generation:
                return
            self._outstanding.discard(seq)
            if err is None:
                self.ledger.ack(seq)
                self._last_ack = time.monotonic()
            elif self.error("producer", err):
                fatal.set()

        try:
            producer.produce(self.topic, value=str(seq).encode(), key=str(seq % 16).encode(), on_delivery=delivered)
        except BufferError:
            return False  # local queue full: the app backs off until the next round
        except Exception as exc:
            if self.error("producer", exc):
                fatal.set()
            time.sleep(0.1)  # back off rather than spin on a failing client
            return False
        self._outstanding.add(seq)
        return True

    # --- consumer --------------------------------------------------------------------------------

    def _consume_loop(self) -> None:
        fatal = threading.Event()
        consumer = self._new_consumer(fatal)
        last_progress, last_commit, uncommitted = time.monotonic(), time.monotonic(), False
        while not self.stop.is_set():
            if self.stall_consumer_s:
                time.sleep(self.stall_consumer_s)
                self.stall_consumer_s = 0.0
            got = self._poll(consumer, fatal)
            now = time.monotonic()
            if got or self.ledger.lag() == 0:
                last_progress = now
                uncommitted = uncommitted or got
            if uncommitted and now - last_commit >= COMMIT_EVERY_S:
                last_commit, uncommitted = now, False
                try:
                    consumer.commit(asynchronous=False)
                except Exception as exc:
                    if self.error("consumer", exc):
                        fatal.set()
            if fatal.is_set() or now - last_progress > STALL_S:
                self.restarts += 1
                close_quietly(consumer)
                fatal = threading.Event()
                consumer = self._new_consumer(fatal)
                last_progress = time.monotonic()
        close_quietly(consumer)

    def _new_consumer(self, fatal: threading.Event) -> Any:
        def on_error(err: Any) -> None:
            if self.error("consumer", err):
                fatal.set()

        consumer = self.adapter.consumer(self.settings, on_error)
        consumer.subscribe([self.topic])
        return consumer

    def _poll(self, consumer: Any, fatal: threading.Event) -> bool:
        try:
            msg = consumer.poll(0.2)
        except Exception as exc:
            if self.error("consumer", exc):
                fatal.set()
            time.sleep(0.1)
            return False
        if msg is None:
            return False
        if msg.error() is not None:
            if self.error("consumer", msg.error()):
                fatal.set()
            return False
        self.consumer_ready.set()
        self.ledger.consume(int(msg.value()))
        return True


def close_quietly(client: Any, flush: bool = False) -> None:
    """Close a client without letting a dead broker hang the application: bounded, errors ignored."""

    def close() -> None:
        with contextlib.suppress(Exception):
            if flush:
                client.flush(CLOSE_TIMEOUT_S / 2)
            elif hasattr(client, "purge"):
                client.purge()
            client.close()

    thread = threading.Thread(target=close, name="app-close", daemon=True)
    thread.start()
    thread.join(CLOSE_TIMEOUT_S)


# ---------------------------------------------------------------------------------------------------------
# the fault schedule

WARMUP_S = 3.0
OBSERVE_S = 20.0  # longer than STALL_S: a client stuck for good must show as a restart
DRAIN_S = 25.0
READY_TIMEOUT_S = 30.0
PARTITIONS = 3


@dataclass
class FaultContext:
    broker: FaultBroker
    admin: Any
    app: App
    topic: str  # the Kafka topic name
    excluded_before: float | None = None  # acknowledgements up to this moment may be destroyed by the fault


def fault_broker_restart(ctx: FaultContext) -> None:
    """Stop the broker (SIGTERM) mid-stream, leave it down for 6 s, start it again on the same data."""
    ctx.broker.terminate()
    time.sleep(6.0)
    ctx.broker.start()


def fault_topic_recreate(ctx: FaultContext) -> None:
    """Delete the topic while it is written and read, then create it again with the same partitions.

    What was acknowledged before the deletion finished and not yet read is destroyed by the operator, not
    lost by a client: those sequence numbers are excluded from the loss count.
    """
    for future in ctx.admin.delete_topics([ctx.topic], operation_timeout=30).values():
        future.result(30)
    ctx.excluded_before = time.monotonic() + 0.5
    time.sleep(2.0)
    create_topic(ctx.admin, ctx.topic, timeout_s=30)


def fault_poll_stall(ctx: FaultContext) -> None:
    """The consumer's processing takes 8 s once: past max.poll.interval.ms (6 s), so it leaves the group."""
    ctx.app.stall_consumer_s = 8.0
    time.sleep(8.5)


def fault_producer_fatal(ctx: FaultContext) -> None:
    """Drive the idempotent producer into a fatal error with a real broker-side rejection.

    The producer runs with ``enable.gapless.guarantee`` (idempotence that must never leave a gap). An operator
    lowers the topic's ``max.message.bytes`` to 120 bytes for 1.5 s: the broker rejects the next batches
    with MSG_SIZE_TOO_LARGE, a permanent error, and librdkafka raises the fatal ``_GAPLESS_GUARANTEE`` error
    because it cannot fail those messages without leaving a gap. The producer instance is unusable after.
    """
    set_topic_config(ctx.admin, ctx.topic, "max.message.bytes", "120")
    time.sleep(1.5)
    set_topic_config(ctx.admin, ctx.topic, "max.message.bytes", "1048588")


def fault_cert_rotation(ctx: FaultContext) -> None:
    """Replace the CA and every certificate; the TLS listener switches to them and connections drop.

    New client files are written over the old paths; the broker's listener gets the new keystore and a
    truststore holding only the new CA (dynamic broker config), so neither side accepts the old chain.
    """
    broker = ctx.broker
    generation = broker.rotate_files()
    prefix = "listener.name.ssl."
    set_broker_config(
        ctx.admin,
        {
            f"{prefix}ssl.keystore.location": str(broker.certs.keystore(generation)),
            f"{prefix}ssl.key.password": KEY_PASSWORD,
            f"{prefix}ssl.truststore.location": str(broker.certs.truststore(generation)),
        },
    )
    # The broker applies a dynamic config shortly after the controller commits it: drop only once the
    # listener serves the new chain, or clients would simply reconnect with the old one.
    if not wait_for(lambda: tls_handshake_ok(broker.certs), 15.0):
        raise RuntimeError("the TLS listener did not switch to the rotated certificates within 15s")
    assert broker.proxy is not None
    broker.proxy.drop_all()


def tls_handshake_ok(certs: Certs) -> bool:
    """True when the broker's TLS listener completes a handshake with the current client files."""
    import ssl

    context = ssl.create_default_context(cafile=str(certs.ca))
    context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    try:
        with (
            socket.create_connection(("127.0.0.1", SSL_BROKER_PORT), timeout=2) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.do_handshake()
            # With TLS 1.3 the server checks the client certificate after the handshake: wait for a verdict.
            tls.settimeout(0.3)
            with contextlib.suppress(TimeoutError):
                tls.recv(1)
            return True
    except (OSError, ssl.SSLError):
        return False


FAULTS: dict[str, Callable[[FaultContext], None]] = {
    "broker-restart": fault_broker_restart,
    "topic-recreate": fault_topic_recreate,
    "poll-stall": fault_poll_stall,
    "producer-fatal": fault_producer_fatal,
    "cert-rotation": fault_cert_rotation,
}


def create_topic(admin: Any, topic: str, timeout_s: float) -> None:
    """Create ``topic``, retrying while a deletion of the same name is still being completed."""
    from confluent_kafka.admin import NewTopic

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(30)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def set_topic_config(admin: Any, topic: str, name: str, value: str) -> None:
    _alter(admin, "TOPIC", topic, {name: value})


def set_broker_config(admin: Any, configs: Mapping[str, str]) -> None:
    _alter(admin, "BROKER", "1", configs)


def _alter(admin: Any, kind: str, name: str, configs: Mapping[str, str]) -> None:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs.items()]
    resource = ConfigResource(kind, name, incremental_configs=entries)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(30)


def phase_settings(phase: str, system: str) -> AppSettings:
    topic = f"faults-{phase}-{system}"
    return AppSettings(
        topic=topic, group=f"{topic}-app", tls=phase == "cert-rotation", gapless=phase == "producer-fatal"
    )


def run_phase(broker: FaultBroker, adapter: Adapter, phase: str) -> PhaseResult:
    """One system through one fault: steady traffic, the fault, more traffic, then a bounded drain."""
    from confluent_kafka.admin import AdminClient

    settings = phase_settings(phase, adapter.name)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 0})
    create_topic(admin, settings.topic, timeout_s=30)
    app = App(adapter, settings)
    ctx = FaultContext(broker, admin, app, settings.topic)
    notes: list[str] = []
    app.start()
    if not app.consumer_ready.wait(READY_TIMEOUT_S):
        notes.append(f"consumer read nothing within {READY_TIMEOUT_S:.0f}s of start")
    time.sleep(WARMUP_S)
    say(f"{phase} [{adapter.name}]: injecting the fault")
    FAULTS[phase](ctx)
    time.sleep(OBSERVE_S)
    app.producing.clear()
    drained = wait_for(lambda: not app._outstanding and _pending(app, ctx) == 0, DRAIN_S)
    if not drained:
        notes.append(f"not drained within {DRAIN_S:.0f}s: {_pending(app, ctx)} acknowledged messages unread")
    app.join(timeout_s=CLOSE_TIMEOUT_S * 2)
    notes.extend(app.crashes)
    return account(phase, adapter.name, app, ctx.excluded_before, notes)


def _pending(app: App, ctx: FaultContext) -> int:
    with app.ledger.lock:
        unread = app.ledger.acked - app.ledger.consumed_set
        if ctx.excluded_before is not None:
            unread = {s for s in unread if app.ledger.ack_times[s] > ctx.excluded_before}
        return len(unread)


def account(phase: str, system: str, app: App, excluded_before: float | None, notes: list[str]) -> PhaseResult:
    ledger = app.ledger
    with ledger.lock:
        acked, consumed = set(ledger.acked), list(ledger.consumed)
        excluded: set[int] = set()
        if excluded_before is not None:
            excluded = {s for s in acked if ledger.ack_times[s] <= excluded_before} - set(consumed)
    lost, duplicated = loss_and_duplicates(acked, consumed, excluded)
    return PhaseResult(
        phase=phase,
        system=system,
        exceptions=app.errors.episodes,
        restarts=app.restarts,
        lost=lost,
        duplicated=duplicated,
        acked=len(acked),
        consumed=len(consumed),
        error_events=app.errors.events,
        excluded=len(excluded),
        errors=dict(app.errors.by_name),
        notes=notes,
    )


def wait_for(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval_s)
    return check()


# ---------------------------------------------------------------------------------------------------------
# command line


def run_schedule(phases: Sequence[str], systems: Sequence[str]) -> list[PhaseResult]:
    broker = FaultBroker()
    atexit.register(broker.stop)
    previous = signal.signal(signal.SIGTERM, _terminate)
    results: list[PhaseResult] = []
    try:
        say(f"starting the fault broker on 127.0.0.1:{PLAINTEXT_PORT} (TLS {SSL_PORT}), data in {broker.home}")
        broker.prepare()
        broker.start()
        adapters: dict[str, Adapter] = {"raw": RawAdapter(broker), "psc": PscAdapter(broker)}
        for phase in phases:
            for system in systems:  # interleaved, so drift on the machine hits both systems alike
                started = time.monotonic()
                result = run_phase(broker, adapters[system], phase)
                say(f"{phase} [{system}]: {result.failures} failures, {result.lost} lost, "
                    f"{result.duplicated} duplicated ({time.monotonic() - started:.0f}s) {result.errors}")  # fmt: skip
                results.append(result)
    finally:
        broker.stop()
        signal.signal(signal.SIGTERM, previous)
    return results


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops the broker


def write_json(results: Sequence[PhaseResult], path: Path) -> None:
    raw, psc = totals(results, "raw"), totals(results, "psc")
    document = {
        "results": [asdict(r) | {"failures": r.failures} for r in results],
        "totals": {s: asdict(t) | {"failures": t.failures} for s, t in (("raw", raw), ("psc", psc))},
        "failure_reduction_percent": reduction_percent(raw.failures, psc.failures),
        "settings": {"rate_per_s": RATE_PER_S, "stall_restart_s": STALL_S, "partitions": PARTITIONS},
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--only", action="append", choices=PHASES, help="run only this phase (repeatable)")
    parser.add_argument("--system", action="append", choices=SYSTEMS, help="run only this system (repeatable)")
    args = parser.parse_args(argv)
    from psc.common.log import configure_logging

    # Remediation warnings number in the thousands under these faults: keep stderr readable.
    configure_logging("ERROR", "console")
    results = run_schedule(args.only or list(PHASES), args.system or list(SYSTEMS))
    print(format_report(results))
    for r in results:
        for note in r.notes:
            print(f"note: {r.phase} [{r.system}]: {note}")
    if args.json:
        write_json(results, args.json)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
