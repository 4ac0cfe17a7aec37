"""The partitioner benchmark's metrics: skew, librdkafka statistics, the 30-broker layout, DescribeLogDirs."""

from __future__ import annotations

import json
import struct
from dataclasses import asdict
from pathlib import Path

import pytest

from benchmarks.singer_partitioners import (
    AccessLog,
    Outcome,
    Recording,
    connections,
    draw,
    layout_connections,
    main,
    parse_log_dirs,
    produce_requests,
    skew,
    table,
)
from singer._partitioners import Partitions, create


def test_skew_is_the_largest_partition_over_the_mean_of_all() -> None:
    assert skew([10, 10, 10, 10]) == 1.0
    assert skew([40, 0, 0, 0]) == 4.0  # empty partitions count in the mean
    assert skew([30, 10, 0, 0]) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="holding bytes"):
        skew([0, 0])


STATS = {
    "name": "singer#producer-3",
    "brokers": {
        "127.0.0.1:9092/bootstrap": {"state": "INIT", "nodeid": -1, "req": {"Metadata": 1}},
        "127.0.0.1:9092/1": {"state": "UP", "nodeid": 1, "req": {"Produce": 41, "Metadata": 3}},
        "127.0.0.1:9094/2": {"state": "UP", "nodeid": 2, "req": {"Produce": 9}},
        "127.0.0.1:9095/3": {"state": "DOWN", "nodeid": 3, "req": {"Produce": 2}},
    },
}


def test_produce_requests_sum_every_broker_and_only_produce() -> None:
    assert produce_requests(STATS) == 52
    assert produce_requests({"brokers": {}}) == 0


def test_connections_count_brokers_that_are_up() -> None:
    assert connections(STATS) == 2


def test_layout_connections_are_distinct_leaders_per_host() -> None:
    # Partitions 0 and 30 share broker 0 on 30 brokers; 31 is on broker 1.
    assert layout_connections([{0, 30, 31}, {5}]) == 3
    assert layout_connections([set(range(120))]) == 30


def _log_dirs_body(entries: list[tuple[str, int, int, bool]]) -> bytes:
    """A DescribeLogDirs v1 body with one log directory holding ``(topic, partition, size, future)``."""

    def string(text: str) -> bytes:
        return struct.pack(">h", len(text)) + text.encode()

    topics: dict[str, list[tuple[int, int, bool]]] = {}
    for topic, partition, size, future in entries:
        topics.setdefault(topic, []).append((partition, size, future))
    body = struct.pack(">ii", 0, 1) + struct.pack(">h", 0) + string("/data") + struct.pack(">i", len(topics))
    for topic, parts in topics.items():
        body += string(topic) + struct.pack(">i", len(parts))
        body += b"".join(struct.pack(">iqq?", p, size, 0, future) for p, size, future in parts)
    return body


def test_parse_log_dirs_reads_sizes_of_the_topic_only() -> None:
    body = _log_dirs_body([("t", 0, 1000, False), ("t", 1, 50, False), ("other", 0, 7, False), ("t", 1, 9, True)])
    assert parse_log_dirs(body, "t") == {0: 1000, 1: 50}


def test_parse_log_dirs_names_a_broker_error() -> None:
    body = struct.pack(">iih", 0, 1, 58) + struct.pack(">h", 0) + struct.pack(">i", 0)
    with pytest.raises(RuntimeError, match="error code 58"):
        parse_log_dirs(body, "t")


def test_access_log_is_deterministic_per_seed_and_host() -> None:
    first = AccessLog(7, 3).lines(200)
    assert first == AccessLog(7, 3).lines(200)
    assert first != AccessLog(7, 4).lines(200)
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in first)
    assert all(b' HTTP/1.1" ' in line and b"upstream=web-003:8080" in line for line in first)


def test_recording_keeps_the_agents_choice() -> None:
    parts = Partitions(tuple(range(12)))
    single = Recording(create("single", {}))
    chosen = {single.partition(None, parts) for _ in range(50)}
    assert single.chosen == chosen and len(chosen) == 1
    fixed = Recording(create("fixed", {"count": 4}))
    for _ in range(400):
        fixed.partition(None, parts)
    assert len(fixed.chosen) == 4


def _outcome(name: str, ratio: float, skew_value: float) -> Outcome:
    return Outcome(name, 30, 120, 100, 1000, int(1000 / ratio), ratio, 10, 30, 30, 30, skew_value, 1.0)


def test_table_gives_ratios_relative_to_the_first_row() -> None:
    text = table([_outcome("round-robin", 2.0, 1.0), _outcome("single", 2.5, 8.0)])
    rows = text.splitlines()
    assert rows[0].split()[:3] == ["partitioner", "ratio", "vs"]
    assert rows[2].split()[:3] == ["single", "2.50", "1.25"]


def test_draw_writes_a_png(tmp_path: Path) -> None:
    path = tmp_path / "figure.png"
    draw([_outcome("round-robin", 2.0, 1.0), _outcome("single", 2.5, 8.0)], path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_saved_run_is_reported_again_without_a_broker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps([asdict(_outcome("round-robin", 2.0, 1.0)), asdict(_outcome("single", 3.0, 8.0))]))
    assert main(["--from-json", str(saved), "--png", str(tmp_path / "f.png")]) == 0
    assert "single" in capsys.readouterr().out.splitlines()[2]
    assert (tmp_path / "f.png").exists()
