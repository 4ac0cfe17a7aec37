"""Local service stack for tests, benchmarks and the demo: Kafka (KRaft), MariaDB, an S3 endpoint and a MemQ broker.

Runs the four services as local processes, with no Docker engine needed:

    compose/stack up       start what is not running yet and wait until each answers
    compose/stack status   say what runs and where
    compose/stack env      print the endpoints as shell assignments (``--format json`` for programs)
    compose/stack down     stop what ``up`` started, and nothing else

Only the standard library is used, so the launcher works before the project's virtualenv exists.
Settings come from environment variables (defaults in brackets):

    STACK_HOME [<repo>/.stack]         pid files, logs and service data (git-ignored)
    STACK_CACHE_DIR [~/.cache/kstream-toolkit]   Kafka jars fetched with Maven, reused across runs
    STACK_KAFKA_VERSION [4.1.1]
    STACK_KAFKA_PORT [9092]  STACK_KAFKA_CONTROLLER_PORT [9093]  STACK_KAFKA_HEAP [2g]
    STACK_MYSQL_PORT [3306]  STACK_S3_PORT [5000]  STACK_MEMQ_PORT [9192]

The MemQ broker stores objects under ``<STACK_HOME>/memq/objects`` (``file://``), announces them on the
stack's Kafka (a topic named once per home), and serves the topic ``demo``; the PSC discovery file maps its
cluster prefix to it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL_CLUSTER_PREFIX = "plaintext:/rn:kafka:local:local_dev::cluster01:"
MEMQ_CLUSTER_PREFIX = "plaintext:/rn:memq:local:local_dev::memq01:"
SERVICES = ("kafka", "mysql", "s3", "memq")


class StackError(Exception):
    """A prerequisite is missing or a service failed to start; the message says what to do."""


def say(message: str) -> None:
    print(f"stack: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Settings:
    home: Path
    cache: Path
    kafka_version: str
    kafka_port: int
    controller_port: int
    mysql_port: int
    s3_port: int
    memq_port: int = 9192

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ

        def port(name: str, default: int) -> int:
            raw = env.get(name, str(default))
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise StackError(f"{name}={raw!r} is not a TCP port (1-65535)")
            return int(raw)

        return cls(
            home=Path(env.get("STACK_HOME", ROOT / ".stack")).resolve(),
            cache=Path(env.get("STACK_CACHE_DIR", Path.home() / ".cache" / "kstream-toolkit")).resolve(),
            kafka_version=env.get("STACK_KAFKA_VERSION", "4.1.1"),
            kafka_port=port("STACK_KAFKA_PORT", 9092),
            controller_port=port("STACK_KAFKA_CONTROLLER_PORT", 9093),
            mysql_port=port("STACK_MYSQL_PORT", 3306),
            s3_port=port("STACK_S3_PORT", 5000),
            memq_port=port("STACK_MEMQ_PORT", 9192),
        )


# ---------------------------------------------------------------------------------------------------------
# processes


def pid_file(settings: Settings, name: str) -> Path:
    return settings.home / f"{name}.pid"


def running_pid(settings: Settings, name: str) -> int | None:
    """The pid recorded for ``name`` if that process is still alive."""
    path = pid_file(settings, name)
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    except PermissionError:
        return pid
    return pid


def spawn(settings: Settings, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> int:
    """Start ``argv`` detached in its own session, logging to ``<home>/<name>.log``, and record its pid."""
    log = open(settings.home / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        list(argv),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    log.close()
    pid_file(settings, name).write_text(str(proc.pid))
    return proc.pid


def stop(settings: Settings, name: str, grace_s: float = 30.0) -> bool:
    """Stop the process group ``up`` started for ``name``; False if nothing of ours was running."""
    pid = running_pid(settings, name)
    if pid is None:
        pid_file(settings, name).unlink(missing_ok=True)
        return False
    signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.2)
    if alive(pid):
        say(f"{name} did not stop within {grace_s:.0f}s; killing it")
        signal_group(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.1)
    pid_file(settings, name).unlink(missing_ok=True)
    return True


def signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_free(port: int, service: str, variable: str) -> None:
    if port_open(port):
        raise StackError(
            f"{service} cannot start: port {port} on 127.0.0.1 is taken by another process. "
            f"Stop that process or choose another port with {variable}=<port>."
        )


def wait_until(
    service: str, check: Callable[[], bool], pid: int, log: Path, timeout_s: float, interval_s: float = 0.5
) -> None:
    """Poll ``check`` until it passes; fail fast if the process dies, and never wait past the timeout."""
    started = time.monotonic()
    last_report = started
    while True:
        if check():
            say(f"{service} ready in {time.monotonic() - started:.1f}s")
            return
        if not alive(pid):
            raise StackError(f"{service} exited during start-up; last lines of {log}:\n{tail(log)}")
        now = time.monotonic()
        if now - started > timeout_s:
            raise StackError(f"{service} did not answer within {timeout_s:.0f}s; see {log}:\n{tail(log)}")
        if now - last_report >= 5:
            say(f"waiting for {service} ({now - started:.0f}s)")
            last_report = now
        time.sleep(interval_s)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# ---------------------------------------------------------------------------------------------------------
# Kafka


POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.stack</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>2.24.3</version></dependency>
  </dependencies>
</project>
"""

LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = org.apache.kafka
logger.kafka.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def kafka_jars(settings: Settings) -> Path:
    """The broker's jars, fetched once from Maven Central with Maven into the cache directory."""
    libs = settings.cache / f"kafka-{settings.kafka_version}" / "libs"
    marker = libs.parent / "complete"
    if marker.exists():
        return libs
    if shutil.which("java") is None:
        raise StackError("Java is not installed; Kafka needs a JRE 17+: apt-get install -y openjdk-17-jre-headless")
    if shutil.which("mvn") is None:
        raise StackError("Maven is not installed; it fetches Kafka's jars: apt-get install -y maven")
    libs.parent.mkdir(parents=True, exist_ok=True)
    (libs.parent / "pom.xml").write_text(POM.format(version=settings.kafka_version))
    say(f"kafka: fetching Apache Kafka {settings.kafka_version} jars with Maven into {libs} (first run only)")
    command = [
        "mvn", "-B", "-f", str(libs.parent / "pom.xml"),
        "-Dmaven.wagon.http.retryHandler.count=2", "-Dmaven.wagon.rto=30000",
        "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={libs}",
    ]  # fmt: skip
    run_with_progress(command, timeout_s=900, what="Maven")
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise StackError(f"Maven finished but no Kafka jar is in {libs}")
    marker.write_text(settings.kafka_version)
    return libs


def run_with_progress(command: list[str], timeout_s: float, what: str) -> None:
    """Run a download command, reporting progress every few seconds and failing clearly on error."""
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    downloaded, output, last = 0, [], started
    for line in proc.stdout:
        output.append(line.rstrip())
        downloaded += "Downloaded from" in line
        if time.monotonic() - last > 3:
            say(f"{what}: {downloaded} files downloaded ({time.monotonic() - started:.0f}s)")
            last = time.monotonic()
        if time.monotonic() - started > timeout_s:
            proc.kill()
            raise StackError(f"{what} took longer than {timeout_s:.0f}s; is the package registry reachable?")
    if proc.wait() != 0:
        detail = "\n".join(line for line in output if "ERROR" in line)[-2000:]
        raise StackError(f"{what} failed (exit {proc.returncode}); check network access to Maven Central:\n{detail}")
    say(f"{what}: done, {downloaded} files downloaded in {time.monotonic() - started:.0f}s")


KAFKA_RACK = "local-a"


def kafka_properties(settings: Settings, data: Path) -> str:
    k, c = settings.kafka_port, settings.controller_port
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"broker.rack={KAFKA_RACK}",  # so that rack-aware clients (Singer's locality partitioner) have one
            f"controller.quorum.voters=1@127.0.0.1:{c}",
            f"listeners=PLAINTEXT://127.0.0.1:{k},CONTROLLER://127.0.0.1:{c}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{k}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={data}",
            # One broker: internal topics must not ask for more replicas than exist.
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "min.insync.replicas=1",
            "default.replication.factor=1",
            "num.partitions=1",
            # Tests create many short-lived groups: rebalance at once instead of after 3 s.
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "delete.topic.enable=true",
            "log.retention.hours=24",
            "log.segment.bytes=67108864",
            "",
        ]
    )


def start_kafka(settings: Settings) -> None:
    if kafka_metadata_ok(settings.kafka_port) and running_pid(settings, "kafka"):
        say(f"kafka already running on 127.0.0.1:{settings.kafka_port}")
        return
    require_free(settings.kafka_port, "kafka", "STACK_KAFKA_PORT")
    require_free(settings.controller_port, "kafka controller", "STACK_KAFKA_CONTROLLER_PORT")
    libs = kafka_jars(settings)
    data = settings.home / "kafka" / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = settings.home / "kafka" / "server.properties"
    config.write_text(kafka_properties(settings, data))
    log4j = settings.home / "kafka" / "log4j2.properties"
    log4j.write_text(LOG4J2.format(log=settings.home / "kafka" / "server.log"))
    classpath = f"{libs}/*"
    if not (data / "meta.properties").exists():
        cluster_id = subprocess.run(
            ["java", "-cp", classpath, "kafka.tools.StorageTool", "random-uuid"],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        formatted = subprocess.run(
            ["java", "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)],
            capture_output=True, text=True,
        )  # fmt: skip
        if formatted.returncode != 0:
            raise StackError(f"formatting the Kafka log directory failed:\n{formatted.stdout}{formatted.stderr}")
    # A maximum, not a reservation: with less, a broker that has served the test suite's thousand-odd
    # partitions spends its old generation on metrics and runs 1 KiB produce benchmarks in slow and fast spells.
    heap = os.environ.get("STACK_KAFKA_HEAP", "2g")
    pid = spawn(
        settings,
        "kafka",
        [
            "java", f"-Xmx{heap}", "-Xms256m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}", f"-Dkafka.logs.dir={settings.home / 'kafka'}",
            "-cp", classpath, "kafka.Kafka", str(config),
        ],
    )  # fmt: skip
    say(f"kafka starting (pid {pid}) on 127.0.0.1:{settings.kafka_port}")
    wait_until("kafka", lambda: kafka_metadata_ok(settings.kafka_port), pid, settings.home / "kafka.log", 90)


def kafka_metadata_ok(port: int) -> bool:
    """True when a Metadata request (v4) to the broker returns at least one broker."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            client_id = b"stack"
            header = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id
            body = struct.pack(">ib", -1, 0)  # all topics, no auto-creation
            payload = header + body
            sock.sendall(struct.pack(">i", len(payload)) + payload)
            size = struct.unpack(">i", recv_exact(sock, 4))[0]
            response = recv_exact(sock, size)
            _correlation, _throttle, brokers = struct.unpack(">iii", response[:12])
            return bool(brokers >= 1)
    except (OSError, struct.error):
        return False


def recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(remaining)
        if not chunk:
            raise OSError("connection closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------------------------------------------------
# MariaDB


def mariadb_binaries() -> tuple[str, str, str]:
    """(server, install-db, client) paths, installing Debian's mariadb-server first if it is missing."""
    names = ("mariadbd", "mariadb-install-db", "mariadb")
    found = [shutil.which(n) or shutil.which(n, path="/usr/sbin:/usr/bin") for n in names]
    if all(found):
        return found[0], found[1], found[2]  # type: ignore[return-value]
    if os.geteuid() != 0:
        raise StackError("MariaDB is not installed; run as root or: sudo apt-get install -y mariadb-server")
    say("mysql: installing mariadb-server from Debian's packages (first run only)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "mariadb-server"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise StackError(f"{' '.join(command)} failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
    return mariadb_binaries()


def mysql_query(client: str, settings: Settings, sql: str, via_socket: bool = False) -> bool:
    target = (
        ["--socket", str(settings.home / "mysql" / "mysqld.sock")]
        if via_socket
        else ["-h", "127.0.0.1", "-P", str(settings.mysql_port)]
    )
    result = subprocess.run(
        [client, "-uroot", "--connect-timeout=2", *target, "-e", sql], capture_output=True, timeout=20
    )
    return result.returncode == 0


def start_mysql(settings: Settings) -> None:
    server, install_db, client = mariadb_binaries()
    if running_pid(settings, "mysql") and mysql_query(client, settings, "SELECT 1"):
        say(f"mysql already running on 127.0.0.1:{settings.mysql_port}")
        return
    require_free(settings.mysql_port, "mysql", "STACK_MYSQL_PORT")
    base = settings.home / "mysql"
    data = base / "data"
    base.mkdir(parents=True, exist_ok=True)
    user = "mysql" if os.geteuid() == 0 else os.environ.get("USER", "")
    if not (data / "mysql").exists():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(base, "mysql", "mysql")
            shutil.chown(data, "mysql", "mysql")
        result = subprocess.run(
            [install_db, f"--user={user}", f"--datadir={data}", "--auth-root-authentication-method=normal",
             "--skip-test-db"],
            capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise StackError(f"mariadb-install-db failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}")
    pid = spawn(
        settings,
        "mysql",
        [
            server, "--no-defaults", f"--user={user}", f"--datadir={data}", "--bind-address=127.0.0.1",
            f"--port={settings.mysql_port}", f"--socket={base / 'mysqld.sock'}", f"--pid-file={base / 'mysqld.pid'}",
            "--skip-name-resolve", "--innodb-buffer-pool-size=256M", "--max-connections=500",
            "--innodb-flush-log-at-trx-commit=2", "--character-set-server=utf8mb4",
        ],
    )  # fmt: skip
    say(f"mysql starting (pid {pid}) on 127.0.0.1:{settings.mysql_port}")
    wait_until(
        "mysql (socket)",
        lambda: mysql_query(client, settings, "SELECT 1", via_socket=True),
        pid, settings.home / "mysql.log", 60,
    )  # fmt: skip
    # TCP clients arrive as root@127.0.0.1, which a fresh data directory does not know.
    grant = (
        "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';"
        "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
        "CREATE DATABASE IF NOT EXISTS test;"
    )
    if not mysql_query(client, settings, grant, via_socket=True):
        raise StackError("could not grant root access over TCP to the local MariaDB")
    wait_until("mysql", lambda: mysql_query(client, settings, "SELECT 1"), pid, settings.home / "mysql.log", 30)


# ---------------------------------------------------------------------------------------------------------
# S3 (moto server)


def moto_server_path() -> str:
    candidates = [Path(sys.executable).parent / "moto_server", ROOT / ".venv" / "bin" / "moto_server"]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("moto_server")
    if found:
        return found
    raise StackError(
        "moto_server (the S3 endpoint) is not installed; install the project first: "
        "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]'  (or: make install)"
    )


def s3_bucket_call_ok(port: int) -> bool:
    """True when creating and listing a bucket works."""
    base = f"http://127.0.0.1:{port}"
    try:
        urllib.request.urlopen(urllib.request.Request(f"{base}/stack-ready", method="PUT"), timeout=2).close()
        with urllib.request.urlopen(f"{base}/", timeout=2) as response:
            return b"stack-ready" in response.read()
    except (OSError, urllib.error.URLError):
        return False


def start_s3(settings: Settings) -> None:
    if running_pid(settings, "s3") and s3_bucket_call_ok(settings.s3_port):
        say(f"s3 already running on 127.0.0.1:{settings.s3_port}")
        return
    require_free(settings.s3_port, "s3", "STACK_S3_PORT")
    pid = spawn(settings, "s3", [moto_server_path(), "-H", "127.0.0.1", "-p", str(settings.s3_port)])
    say(f"s3 starting (pid {pid}) on 127.0.0.1:{settings.s3_port}")
    wait_until("s3", lambda: s3_bucket_call_ok(settings.s3_port), pid, settings.home / "s3.log", 60)


# ---------------------------------------------------------------------------------------------------------
# MemQ broker


def toolkit_command(name: str) -> str:
    """A console script of the project (``memq``, ...) from the virtualenv the launcher runs in, or the repo's."""
    for candidate in (Path(sys.executable).parent / name, ROOT / ".venv" / "bin" / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise StackError(f"{name} is not installed; install the project first: make install")


def memq_broker_config(settings: Settings, notification_topic: str) -> dict[str, object]:
    """Settings for the stack's broker: embedded file storage, notifications on the stack's Kafka."""
    return {
        "port": settings.memq_port,
        "storage": (settings.home / "memq" / "objects").as_uri(),
        "notification_cluster": LOCAL_CLUSTER_PREFIX,
        "notification_bootstrap": f"127.0.0.1:{settings.kafka_port}",
        "topics": [{"name": "demo", "notification_topic": notification_topic, "batch_max_ms": 500}],
    }


def memq_notification_topic(config: Path) -> str:
    """The notification topic this home's objects were announced on; a new name for a new home.

    Notifications outlive objects when homes share a Kafka: a reader of another home's topic would meet
    announcements of objects it cannot find.
    """
    with contextlib.suppress(OSError, ValueError, KeyError, IndexError, TypeError):
        topic = json.loads(config.read_text())["topics"][0]["notification_topic"]
        if isinstance(topic, str) and topic:
            return topic
    return f"memq-demo-notifications-{uuid.uuid4().hex[:8]}"


def start_memq(settings: Settings) -> None:
    if running_pid(settings, "memq") and port_open(settings.memq_port):
        say(f"memq already running on 127.0.0.1:{settings.memq_port}")
        return
    require_free(settings.memq_port, "memq", "STACK_MEMQ_PORT")
    if not kafka_metadata_ok(settings.kafka_port):
        say(f"memq: no Kafka answers on 127.0.0.1:{settings.kafka_port}; writes fail until it does")
    command = toolkit_command("memq")
    (settings.home / "memq" / "objects").mkdir(parents=True, exist_ok=True)
    config = settings.home / "memq" / "broker.json"
    settings_for_home = memq_broker_config(settings, memq_notification_topic(config))
    config.write_text(json.dumps(settings_for_home, indent=2) + "\n")
    pid = spawn(settings, "memq", [command, "broker", "--config", str(config)])
    say(f"memq starting (pid {pid}) on 127.0.0.1:{settings.memq_port}")
    wait_until("memq", lambda: port_open(settings.memq_port), pid, settings.home / "memq.log", 60)


# ---------------------------------------------------------------------------------------------------------
# commands

STARTERS: dict[str, Callable[[Settings], None]] = {
    "kafka": start_kafka,
    "mysql": start_mysql,
    "s3": start_s3,
    "memq": start_memq,
}


def endpoints(settings: Settings) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{settings.kafka_port}",
        "MYSQL_URL": f"mysql://root@127.0.0.1:{settings.mysql_port}/test",
        "S3_ENDPOINT_URL": f"http://127.0.0.1:{settings.s3_port}",
        "PSC_DISCOVERY_FILE": str(settings.home / "psc-discovery.json"),
        "MEMQ_BROKERS": f"127.0.0.1:{settings.memq_port}",
    }


def write_discovery_file(settings: Settings) -> None:
    entry = {
        LOCAL_CLUSTER_PREFIX: {"connect": f"127.0.0.1:{settings.kafka_port}"},
        MEMQ_CLUSTER_PREFIX: {"connect": f"127.0.0.1:{settings.memq_port}"},
    }
    (settings.home / "psc-discovery.json").write_text(json.dumps(entry, indent=2) + "\n")


def cmd_up(settings: Settings, only: Sequence[str]) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    write_discovery_file(settings)
    for name in only:
        STARTERS[name](settings)
    cmd_status(settings)


def cmd_down(settings: Settings, only: Sequence[str]) -> None:
    for name in reversed(only):
        say(f"{name} stopped" if stop(settings, name) else f"{name} was not running")


def cmd_status(settings: Settings) -> int:
    env = endpoints(settings)
    where = {
        "kafka": env["KAFKA_BOOTSTRAP_SERVERS"],
        "mysql": env["MYSQL_URL"],
        "s3": env["S3_ENDPOINT_URL"],
        "memq": f"{env['MEMQ_BROKERS']} (storage {(settings.home / 'memq' / 'objects').as_uri()})",
    }
    down = 0
    for name in SERVICES:
        pid = running_pid(settings, name)
        state = f"running (pid {pid})" if pid else "stopped"
        down += pid is None
        print(f"{name:6} {state:22} {where[name]}")
    print(f"{'psc':6} {'discovery file':22} {env['PSC_DISCOVERY_FILE']} -> {LOCAL_CLUSTER_PREFIX}")
    print(f"{'psc':6} {'discovery file':22} {env['PSC_DISCOVERY_FILE']} -> {MEMQ_CLUSTER_PREFIX}")
    return 1 if down else 0


def cmd_env(settings: Settings, fmt: str) -> None:
    env = endpoints(settings)
    if fmt == "json":
        print(json.dumps(env))
    else:
        for key, value in env.items():
            print(f"export {key}={value}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="compose/stack",
        description="Start, inspect and stop the local Kafka, MariaDB, S3 and MemQ services.",
        epilog="Settings come from STACK_* environment variables; see the module docstring.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("up", "start services (idempotent)"), ("down", "stop what up started")):
        p = sub.add_parser(name, help=text)
        p.add_argument("services", nargs="*", metavar="SERVICE", help=f"any of {', '.join(SERVICES)} (default: all)")
    sub.add_parser("status", help="show what runs and where (exit 1 if anything is stopped)")
    env = sub.add_parser("env", help="print endpoints as shell assignments")
    env.add_argument("--format", choices=("shell", "json"), default="shell")
    args = parser.parse_args(argv)
    unknown = sorted(set(getattr(args, "services", None) or ()) - set(SERVICES))
    if unknown:
        parser.error(f"unknown service(s) {', '.join(unknown)}; choose from {', '.join(SERVICES)}")
    try:
        settings = Settings.from_env()
        if args.command == "up":
            cmd_up(settings, args.services or SERVICES)
        elif args.command == "down":
            cmd_down(settings, args.services or SERVICES)
        elif args.command == "status":
            return cmd_status(settings)
        else:
            cmd_env(settings, args.format)
    except StackError as exc:
        say(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
