"""The ``psc`` command line: arguments, help, configuration input and bad-input handling (no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from psc import cli
from psc._message import MessageId

TOPIC = "plaintext:/rn:kafka:local:local_dev::cluster01:t1"
SHAPE = "<protocol>:/rn:<service>:<environment>:<cloud>_<region>:<classifier>:<cluster>:<topic>"


@pytest.fixture
def discovery_file(tmp_path: Path) -> str:
    path = tmp_path / "discovery.json"
    path.write_text(json.dumps({"plaintext:/rn:kafka:local:local_dev::cluster01:": {"connect": "127.0.0.1:1"}}))
    return str(path)


def test_arguments_of_each_command() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["produce", TOPIC, "--key-separator", ":", "-c", "a.b=1", "--config", "c = x=y"])
    assert (args.command, args.topic_uri, args.key_separator) == ("produce", TOPIC, ":")
    assert args.config == [("a.b", "1"), ("c", "x=y")] and args.project == "psc-cli"
    args = parser.parse_args(["consume", TOPIC, "--from-beginning", "--max-messages", "3", "--format", "json"])
    assert args.from_beginning and args.max_messages == 3 and args.format == "json" and args.group is None
    args = parser.parse_args(["consume", TOPIC, "--group", "g1", "--timeout", "2.5", "--log-level", "warning"])
    assert args.group == "g1" and args.timeout == 2.5 and args.log_level == "WARNING"
    args = parser.parse_args(["describe", TOPIC, "--json", "--discovery-file", "d.json", "--project", "p"])
    assert args.json and args.discovery_file == "d.json" and args.project == "p"


@pytest.mark.parametrize(
    "argv",
    [
        ["consume", TOPIC, "--group", "g", "--from-beginning"],
        ["consume", TOPIC, "--max-messages", "0"],
        ["consume", TOPIC, "--timeout", "-1"],
        ["consume", TOPIC, "--format", "xml"],
        ["produce", TOPIC, "--config", "no-equals-sign"],
        ["describe"],
        [],
    ],
)
def test_invalid_arguments_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["produce", "--help"], ["consume", "--help"], ["describe", "-h"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: psc")
    assert ("COMMAND" if argv == ["--help"] else "--config KEY=VALUE") in out


def test_module_entry_point_prints_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "psc", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    assert "produce" in result.stdout and "consume" in result.stdout and "describe" in result.stdout


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("protocol://rn:kafka:env:aws_us-west-1::c1:t", "not '//'"),
        ("plaintext:/rn:kafka:env:aws_us-west-1::c1:t:more", "unexpected trailing segment(s) 'more'"),
        ("plaintext:/rn:kafka:env:aws_us-west-1:c1:t", "too few"),
        ("ftp:/rn:kafka:env:aws_us-west-1::c1:t", "Kafka URIs use protocol 'plaintext' or 'secure'"),
    ],
)
@pytest.mark.parametrize("command", ["produce", "consume", "describe"])
def test_bad_uri_is_one_line_and_exit_2(
    command: str, uri: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([command, uri, "--log-level", "error"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"psc: error: invalid topic URI {uri!r}") and reason in err and SHAPE in err


def test_bad_config_lists_every_problem_on_one_line(discovery_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["produce", TOPIC, "--discovery-file", discovery_file, "-c", "psc.producer.acks=7", "-c", "psc.bogus=1"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("psc: error: invalid PSC configuration: ")
    assert "psc.producer.acks='7'" in err and "'psc.bogus'" in err


def test_unknown_cluster_names_the_providers_tried(discovery_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    uri = "plaintext:/rn:kafka:local:local_dev::elsewhere:t1"
    assert cli.main(["consume", uri, "--discovery-file", discovery_file, "--log-level", "error"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "elsewhere" in err and discovery_file in err


def test_cluster_uri_cannot_be_produced_to(discovery_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    uri = "plaintext:/rn:kafka:local:local_dev::cluster01:"
    assert cli.main(["produce", uri, "--discovery-file", discovery_file, "--log-level", "error"]) == 2
    assert "names no topic" in capsys.readouterr().err


def test_missing_config_file_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["describe", TOPIC, "--config-file", str(tmp_path / "nope.properties")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("psc: error: config file") and "nope.properties" in err


def test_config_sources_merge_in_order(tmp_path: Path) -> None:
    props = tmp_path / "app.properties"
    props.write_text("# comment\n! also a comment\npsc.producer.acks = 1\npsc.client.id: from-file\n\n")
    args = cli.build_parser().parse_args(
        ["produce", TOPIC, "--config-file", str(props), "-c", "psc.producer.acks=all", "--discovery-file", "d"]
    )
    assert cli.client_config(args) == {
        "psc.project": "psc-cli",
        "psc.discovery.file": "d",
        "psc.producer.acks": "all",
        "psc.client.id": "from-file",
    }


def test_json_config_file(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text(json.dumps({"psc.producer.batch.duration.ms": 20, "psc.metrics.enabled": False, "x": None}))
    assert cli.read_config_file(path) == {
        "psc.producer.batch.duration.ms": "20",
        "psc.metrics.enabled": "false",
        "x": "",
    }


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("bad.json", "{not json", "is not valid JSON"),
        ("list.json", "[1, 2]", "must hold a JSON object"),
        ("nested.json", '{"a": {"b": 1}}', "values must be strings, numbers or booleans (a)"),
        ("bad.properties", "just-a-word\n", "line 1: expected key=value"),
    ],
)
def test_bad_config_files(tmp_path: Path, name: str, text: str, problem: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(cli.UsageError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        cli.read_config_file(path)


def test_read_lines_splits_on_line_breaks_across_chunks() -> None:
    read, write = os.pipe()
    os.write(write, b"a\r\nb:1\n\npartial")
    os.close(write)
    try:
        assert list(cli.read_lines(read, lambda: None)) == [b"a", b"b:1", b"", b"partial"]
    finally:
        os.close(read)


class FakeMessage:
    def __init__(self, key: bytes | None, value: bytes | None, headers: Any = None) -> None:
        self._key, self._value, self._headers = key, value, headers
        self.message_id = MessageId(TOPIC, 2, 41, 1700000000000)

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> Any:
        return self._headers


def test_json_format_holds_id_key_value_headers_timestamp() -> None:
    msg = FakeMessage(b"k", b"\xff\x00", [("h", b"v"), ("n", None)])
    line = cli._writer("json", None)(msg)
    assert line.endswith(b"\n")
    assert json.loads(line) == {
        "message_id": {"topic_uri": TOPIC, "partition": 2, "offset": 41},
        "key": "k",
        "value": {"base64": "/wA="},
        "headers": [["h", "v"], ["n", None]],
        "timestamp": 1700000000000,
    }


def test_text_format_with_and_without_key() -> None:
    msg = FakeMessage(b"k", b"v")
    assert cli._writer("text", None)(msg) == b"v\n"
    assert cli._writer("text", b"\t")(msg) == b"k\tv\n"
    assert cli._writer("text", b"\t")(FakeMessage(None, None)) == b"\t\n"


def test_description_never_shows_secrets_and_renders_partitions() -> None:
    report = {
        "uri": TOPIC,
        "service": "kafka",
        "cluster_prefix": TOPIC[: -len("t1")],
        "topic": "t1",
        "endpoint": {"bootstrap": "b:9092", "security.protocol": "PLAINTEXT", "provider": "file d"},
        "brokers": {"1": "b:9092"},
        "partitions": [
            {"partition": 0, "leader": 1, "replicas": [1], "isr": [1], "low": 0, "high": 3, "messages": 3,
             "error": None},
        ],
    }  # fmt: skip
    text = cli.render_description(report)
    assert "bootstrap" in text and "PLAINTEXT" in text
    assert text.splitlines()[-1].split() == ["0", "1", "1", "1", "0", "3", "3", "-"]
