"""The ``psc`` command line against the real broker: produce stdin lines, consume them back, describe."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

from tests.services import Services

TIMEOUT_S = 90


def psc(services: Services, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "psc", *argv, "--discovery-file", services.psc_discovery_file]
    return subprocess.run(
        [*command, "--log-level", "warning"],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def test_produce_then_consume_from_beginning_as_json(services: Services, new_topic: Callable[..., str]) -> None:
    uri = services.cluster_prefix + new_topic(partitions=1)
    produced = psc(services, "produce", uri, "--key-separator", ":", stdin="k1:one\nk2:two\nk3:three\n")
    assert produced.returncode == 0, produced.stderr
    assert f"delivered 3, failed 0 to {uri}" in produced.stdout

    consumed = psc(services, "consume", uri, "--from-beginning", "--max-messages", "3", "--format", "json")
    assert consumed.returncode == 0, consumed.stderr
    records = [json.loads(line) for line in consumed.stdout.splitlines()]
    assert [(r["key"], r["value"]) for r in records] == [("k1", "one"), ("k2", "two"), ("k3", "three")]
    assert [r["message_id"] for r in records] == [
        {"topic_uri": uri, "partition": 0, "offset": offset} for offset in range(3)
    ]
    assert all(r["headers"] == [] and r["timestamp"] > 0 for r in records)


def test_line_without_separator_fails_the_run(services: Services, new_topic: Callable[..., str]) -> None:
    uri = services.cluster_prefix + new_topic()
    result = psc(services, "produce", uri, "--key-separator", "=", stdin="a=1\nno separator\n")
    assert result.returncode == 1
    assert "delivered 1, failed 1" in result.stdout


def test_consume_stops_after_idle_timeout(services: Services, new_topic: Callable[..., str]) -> None:
    uri = services.cluster_prefix + new_topic()
    result = psc(services, "consume", uri, "--from-beginning", "--timeout", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_describe_shows_partitions_with_leaders_and_watermarks(
    services: Services, new_topic: Callable[..., str]
) -> None:
    uri = services.cluster_prefix + new_topic(partitions=3)
    assert psc(services, "produce", uri, stdin="a\nb\n").returncode == 0

    result = psc(services, "describe", uri, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["uri"] == uri and report["service"] == "kafka"
    assert report["cluster_prefix"] == services.cluster_prefix
    assert report["endpoint"]["bootstrap"] == services.kafka_bootstrap_servers
    assert report["endpoint"]["security.protocol"] == "PLAINTEXT"
    partitions = report["partitions"]
    assert [p["partition"] for p in partitions] == [0, 1, 2]
    assert all(p["leader"] >= 0 and p["low"] == 0 for p in partitions)
    assert sum(p["high"] for p in partitions) == 2

    text = psc(services, "describe", uri)
    assert text.returncode == 0 and "partitions (3):" in text.stdout and "leader" in text.stdout


def test_describe_cluster_lists_topics(services: Services, new_topic: Callable[..., str]) -> None:
    topic = new_topic()
    result = psc(services, "describe", services.cluster_prefix, "--json")
    assert result.returncode == 0, result.stderr
    listed = {t["topic_uri"] for t in json.loads(result.stdout)["topics"]}
    assert services.cluster_prefix + topic in listed
