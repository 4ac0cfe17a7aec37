"""The local stack launcher: settings, Kafka configuration, readiness checks and clear failures."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

STACK_PY = Path(__file__).resolve().parents[3] / "compose" / "stack.py"


@pytest.fixture(scope="module")
def stack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stack", STACK_PY)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["stack"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_settings_reject_a_port_that_is_not_a_number(stack: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACK_KAFKA_PORT", "ninety")
    with pytest.raises(stack.StackError, match=r"STACK_KAFKA_PORT='ninety' is not a TCP port"):
        stack.Settings.from_env()


def test_settings_take_ports_and_home_from_environment(
    stack: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STACK_HOME", str(tmp_path))
    monkeypatch.setenv("STACK_MYSQL_PORT", "13306")
    settings = stack.Settings.from_env()
    assert settings.home == tmp_path
    assert settings.mysql_port == 13306
    assert stack.endpoints(settings)["MYSQL_URL"] == "mysql://root@127.0.0.1:13306/test"


def test_taken_port_gives_a_clear_message(stack: ModuleType, listening_port: int) -> None:
    with pytest.raises(stack.StackError) as info:
        stack.require_free(listening_port, "kafka", "STACK_KAFKA_PORT")
    assert f"port {listening_port}" in str(info.value)
    assert "STACK_KAFKA_PORT=<port>" in str(info.value)


def test_kafka_properties_are_single_broker_kraft(stack: ModuleType, tmp_path: Path) -> None:
    settings = stack.Settings(tmp_path, tmp_path, "4.1.1", 19092, 19093, 3306, 5000)
    props = dict(
        line.split("=", 1) for line in stack.kafka_properties(settings, tmp_path / "data").splitlines() if line
    )
    assert props["process.roles"] == "broker,controller"
    assert props["broker.rack"] == stack.KAFKA_RACK
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"


def test_readiness_checks_fail_fast_on_a_closed_port(stack: ModuleType) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert stack.kafka_metadata_ok(closed) is False
    assert stack.s3_bucket_call_ok(closed) is False


def test_wait_until_reports_a_dead_process_instead_of_hanging(stack: ModuleType, tmp_path: Path) -> None:
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", "print('boom: cannot bind')"], stdout=subprocess.DEVNULL)
    proc.wait()
    log = tmp_path / "svc.log"
    log.write_text("boom: cannot bind\n")
    with pytest.raises(stack.StackError, match="exited during start-up"):
        stack.wait_until("svc", lambda: False, proc.pid, log, timeout_s=30)


def test_env_prints_shell_assignments_and_json(
    stack: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = stack.Settings(tmp_path, tmp_path, "4.1.1", 9092, 9093, 3306, 5000)
    stack.cmd_env(settings, "shell")
    lines = capsys.readouterr().out.splitlines()
    assert "export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092" in lines
    assert f"export PSC_DISCOVERY_FILE={tmp_path / 'psc-discovery.json'}" in lines
    stack.cmd_env(settings, "json")
    assert json.loads(capsys.readouterr().out)["S3_ENDPOINT_URL"] == "http://127.0.0.1:5000"


def test_down_without_up_stops_nothing(stack: ModuleType, tmp_path: Path) -> None:
    settings = stack.Settings(tmp_path, tmp_path, "4.1.1", 9092, 9093, 3306, 5000)
    assert stack.stop(settings, "kafka") is False


def test_unknown_service_name_is_rejected(stack: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        stack.main(["up", "zookeeper"])
    assert "unknown service(s) zookeeper" in capsys.readouterr().err


def test_memq_broker_config_is_valid_and_points_at_the_stack(stack: ModuleType, tmp_path: Path) -> None:
    from memq._config import BrokerConfig

    settings = stack.Settings(tmp_path, tmp_path, "4.1.1", 19092, 19093, 3306, 5000, 19192)
    config = BrokerConfig.model_validate(stack.memq_broker_config(settings, "memq-demo-notifications-1"))
    assert config.port == 19192
    assert config.storage == (tmp_path / "memq" / "objects").as_uri()
    assert config.notification_bootstrap == "127.0.0.1:19092"
    assert config.notification_cluster == stack.LOCAL_CLUSTER_PREFIX
    assert [t.name for t in config.topics] == ["demo"]


def test_discovery_file_maps_kafka_and_memq_prefixes(stack: ModuleType, tmp_path: Path) -> None:
    settings = stack.Settings(tmp_path, tmp_path, "4.1.1", 19092, 19093, 3306, 5000, 19192)
    stack.write_discovery_file(settings)
    entries = json.loads((tmp_path / "psc-discovery.json").read_text())
    assert entries[stack.LOCAL_CLUSTER_PREFIX] == {"connect": "127.0.0.1:19092"}
    assert entries[stack.MEMQ_CLUSTER_PREFIX] == {"connect": "127.0.0.1:19192"}
    assert stack.endpoints(settings)["MEMQ_BROKERS"] == "127.0.0.1:19192"


def test_memq_port_comes_from_the_environment_and_status_lists_it(
    stack: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STACK_HOME", str(tmp_path))
    monkeypatch.setenv("STACK_MEMQ_PORT", "19333")
    settings = stack.Settings.from_env()
    assert settings.memq_port == 19333
    assert stack.cmd_status(settings) == 1  # nothing runs under an empty home
    out = capsys.readouterr().out
    memq_lines = [line for line in out.splitlines() if line.startswith("memq ")]
    assert len(memq_lines) == 1 and "stopped" in memq_lines[0] and "127.0.0.1:19333" in memq_lines[0]
    assert stack.stop(settings, "memq") is False


def test_memq_refuses_a_taken_port_by_name(stack: ModuleType, tmp_path: Path, listening_port: int) -> None:
    settings = stack.Settings(tmp_path, tmp_path, "4.1.1", 19092, 19093, 3306, 5000, listening_port)
    with pytest.raises(stack.StackError, match="STACK_MEMQ_PORT=<port>"):
        stack.start_memq(settings)


def test_memq_notification_topic_is_new_per_home_and_kept_by_it(stack: ModuleType, tmp_path: Path) -> None:
    config = tmp_path / "broker.json"
    first, second = stack.memq_notification_topic(config), stack.memq_notification_topic(config)
    assert first != second and first.startswith("memq-demo-notifications-")
    settings = stack.Settings(tmp_path, tmp_path, "4.1.1", 19092, 19093, 3306, 5000, 19192)
    config.write_text(json.dumps(stack.memq_broker_config(settings, first)))
    assert stack.memq_notification_topic(config) == first
    config.write_text("not json")
    assert stack.memq_notification_topic(config).startswith("memq-demo-notifications-")
