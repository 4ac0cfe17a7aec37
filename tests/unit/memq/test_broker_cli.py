"""The memq command line: help on every command, and bad broker configs named by file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memq._config import ConfigError, load_broker_config
from memq.cli import main


@pytest.mark.parametrize("argv", [["--help"], ["broker", "--help"], ["topics", "--help"], ["inspect", "--help"]])
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    assert "usage: memq" in capsys.readouterr().out


def test_a_bad_config_names_the_file_and_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broker.json"
    path.write_text(json.dumps({"topics": [{"name": "t", "notification_topic": "n", "batch_max_bytes": -1}]}))
    assert main(["broker", "--config", str(path)]) == 2
    error = capsys.readouterr().err
    assert str(path) in error and "topics.0.batch_max_bytes" in error


def test_config_files_are_toml_or_json(tmp_path: Path) -> None:
    toml = tmp_path / "broker.toml"
    toml.write_text('port = 20001\n[[topics]]\nname = "t"\nnotification_topic = "n"\n')
    assert load_broker_config(toml).topic("t") is not None
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1")
    with pytest.raises(ConfigError, match=r"broken\.toml is not valid"):
        load_broker_config(broken)
    with pytest.raises(ConfigError, match="cannot read"):
        load_broker_config(tmp_path / "missing.toml")
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"prot": 1}))
    with pytest.raises(ConfigError, match="prot: Extra inputs are not permitted"):
        load_broker_config(unknown)
    bad_cluster = tmp_path / "cluster.json"
    bad_cluster.write_text(json.dumps({"notification_cluster": "kafka:/nope"}))
    with pytest.raises(ConfigError, match="notification_cluster"):
        load_broker_config(bad_cluster)
