"""Shared conventions: settings validation, metrics registry, structured logging, error base."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from pydantic import Field

from psc.common import LogThrottle, MetricsRegistry, ToolkitError, ToolkitSettings, configure_logging, get_logger
from psc.common.settings import SettingsError


class BrokerSettings(ToolkitSettings):
    port: int = Field(ge=1, le=65535)
    name: str
    batch_bytes: int = 1024


def test_settings_report_every_problem_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        BrokerSettings.load({"port": "abc", "unknown_key": 1})
    problems = info.value.problems
    assert len(problems) == 3
    assert any(p.startswith("port:") and "'abc'" in p for p in problems)
    assert any(p.startswith("name:") for p in problems)
    assert any(p.startswith("unknown_key:") for p in problems)
    assert "3 problem(s)" in str(info.value)


def test_settings_are_typed_and_frozen() -> None:
    settings = BrokerSettings.load({"port": "9092", "name": "b1"})
    assert settings.port == 9092 and settings.batch_bytes == 1024
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its own frozen error type
        settings.port = 1  # type: ignore[misc]


def test_metrics_registry_hands_out_each_metric_once() -> None:
    registry = MetricsRegistry("unit")
    first = registry.counter("events_total", "events", ["kind"])
    assert registry.counter("events_total", "events", ["kind"]) is first
    first.labels(kind="a").inc(3)
    assert registry.registry.get_sample_value("unit_events_total", {"kind": "a"}) == 3
    registry.histogram("latency_seconds", "latency").observe(0.002)
    assert b"unit_latency_seconds_bucket" in registry.exposition()


def test_json_logging_emits_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("INFO", "json")
    try:
        get_logger("unit.test", node=7).info("started", port=9092)
        get_logger("unit.test").debug("hidden")
        lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
        assert len(lines) == 1
        record = json.loads(lines[0])
        assert record["event"] == "started" and record["port"] == 9092
        assert record["component"] == "unit.test" and record["node"] == 7 and record["level"] == "info"
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)


def test_unknown_log_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure_logging("LOUD", "json")


def test_toolkit_error_keeps_structured_context() -> None:
    error = ToolkitError("bad frame", offset=12, reason="crc")
    assert str(error) == "bad frame" and error.context == {"offset": 12, "reason": "crc"}


class LinesLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, object]]] = []

    def __getattr__(self, level: str) -> object:
        return lambda event, **fields: self.lines.append((level, event, fields))


def test_log_throttle_writes_a_kind_once_per_interval_and_counts_the_rest() -> None:
    now = [0.0]
    log = LinesLog()
    throttle = LogThrottle(log, interval_s=10.0, clock=lambda: now[0])
    for i in range(5):
        throttle.log("warning", "down", "broker down", attempt=i)
    throttle.log("error", "other", "another kind")
    assert log.lines == [("warning", "broker down", {"attempt": 0}), ("error", "another kind", {})]
    now[0] = 10.0
    throttle.log("warning", "down", "broker down", attempt=5)
    assert log.lines[-1] == ("warning", "broker down", {"attempt": 5, "repeated": 4})
    now[0] = 25.0
    throttle.log("warning", "down", "broker down", attempt=6)  # nothing held back since the last line
    assert log.lines[-1] == ("warning", "broker down", {"attempt": 6})


def test_log_throttle_flush_writes_what_is_held_back() -> None:
    log = LinesLog()
    throttle = LogThrottle(log, interval_s=10.0, clock=lambda: 0.0)
    for i in range(3):
        throttle.log("warning", "down", "broker down", attempt=i)
    throttle.log("warning", "alone", "said once")
    throttle.flush()
    assert log.lines[2:] == [("warning", "broker down", {"attempt": 2, "repeated": 2})]
    throttle.flush()
    assert len(log.lines) == 3
