"""PSC logs like a library: through stdlib ``logging`` only, silent until the application configures it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from psc.backends.kafka import NativeLogger, with_logger
from psc.common import configure_logging, get_logger

ROOT = Path(__file__).resolve().parents[3]

# An application's life with PSC over the fake backend: clients created, used and closed, debug and info
# lines written by PSC (config logging), and a librdkafka warning line as confluent-kafka delivers it.
APP = """
import psc
from psc.backends.kafka import NativeLogger
from psc.common import get_logger
from tests.unit.psc.test_clients import A, CONFIG, FakeBackend, FakeRecord

backend = FakeBackend()
psc.register_backend("fake", backend)
config = {**CONFIG, "psc.config.logging.enabled": "true"}
with psc.Producer(config) as producer:
    producer.produce(A + "t1", b"x")
    producer.flush(1)
consumer_config = {**config, "psc.consumer.group.id": "g"}
with psc.Consumer(consumer_config) as consumer:
    consumer.subscribe([A + "t1"])
    backend.consumers[0].records.append(FakeRecord("t1", b"x"))
    assert consumer.poll(0).value() == b"x"
get_logger("psc.producer").debug("debug line", n=1)
NativeLogger(A, "producer").log(30, "%s [%s] %s", "GETPID", "unit#producer-1", "librdkafka line")
"""


def run_app(prelude: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", prelude + APP], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_importing_and_using_psc_prints_nothing() -> None:
    done = run_app()
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == ""


def test_the_same_app_logs_to_stderr_once_it_configures_logging() -> None:
    done = run_app("import logging; logging.basicConfig(level=logging.DEBUG)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "INFO:psc.configlog:psc client config" in done.stderr
    assert "DEBUG:psc.producer:debug line n=1" in done.stderr
    assert "WARNING:psc.librdkafka:librdkafka line" in done.stderr


def test_configure_logging_renders_json_lines_on_stderr_only() -> None:
    done = run_app("import psc; psc.configure_logging('DEBUG', 'json')\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    records = [json.loads(line) for line in done.stderr.splitlines()]
    native = next(r for r in records if r["logger"] == "psc.librdkafka")
    assert native["event"] == "librdkafka line" and native["level"] == "warning"
    assert native["facility"] == "GETPID" and native["client"] == "unit#producer-1"
    assert native["cluster_uri"] == "plaintext:/rn:fake:env:cloud_region::clusterA:"
    assert any(r["event"] == "psc client config" and r["client_type"] == "consumer" for r in records)


@pytest.mark.parametrize(("level", "name"), [(50, "CRITICAL"), (40, "ERROR"), (30, "WARNING"), (20, "INFO")])
def test_native_lines_become_records_with_the_client_and_cluster(
    caplog: pytest.LogCaptureFixture, level: int, name: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="psc")
    NativeLogger("plaintext:/rn:kafka:env:region::c1:", "consumer").log(
        level, "%s [%s] %s", "FAIL", "app#consumer-2", "Connect failed"
    )
    [record] = caplog.records
    assert record.name == "psc.librdkafka" and record.levelname == name
    assert record.cluster_uri == "plaintext:/rn:kafka:env:region::c1:"  # type: ignore[attr-defined]
    assert record.client_type == "consumer" and record.client == "app#consumer-2"  # type: ignore[attr-defined]
    assert record.getMessage().startswith("Connect failed ")


def test_an_application_logger_is_kept() -> None:
    mine = logging.getLogger("app.kafka")
    assert with_logger({"logger": mine}, "plaintext:/rn:kafka:env:region::c1:", "producer")["logger"] is mine
    assert isinstance(with_logger({}, "plaintext:/rn:kafka:env:region::c1:", "producer")["logger"], NativeLogger)


def test_fields_named_like_record_attributes_are_kept_renamed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="unit")
    get_logger("unit.fields").info("event", name="n", process=3)
    [record] = caplog.records
    assert record.name == "unit.fields"
    assert record.name_ == "n" and record.process_ == 3  # type: ignore[attr-defined]


def test_configure_logging_replaces_its_own_handler(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        configure_logging("INFO", "json")
        configure_logging("INFO", "json")
        get_logger("unit.twice").info("once")
        assert len([line for line in capsys.readouterr().err.splitlines() if "once" in line]) == 1
    finally:
        root.handlers[:] = before
        root.setLevel(level)
