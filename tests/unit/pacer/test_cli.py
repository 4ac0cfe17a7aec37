"""The ``pacer`` command: schema and queue administration on the embedded store, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacer.cli import main
from pacer.storage.base import SCHEMA_VERSION


def test_schema_and_queues_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    storage = f"sqlite:///{tmp_path}/jobs.db"
    assert main(["schema", "version", "--storage", storage]) == 0
    assert capsys.readouterr().out.strip() == "None"
    assert main(["schema", "create", "--storage", storage]) == 0
    assert main(["schema", "upgrade", "--storage", storage]) == 0
    assert f"schema version {SCHEMA_VERSION}" in capsys.readouterr().out
    assert main(["queue", "create", "mail", "--storage", storage, "--partitions", "2", "--rate", "0"]) == 0
    assert main(["queue", "list", "--storage", storage]) == 0
    assert capsys.readouterr().out.split() == ["mail"]
    assert main(["queue", "create", "Bad-Name", "--storage", storage]) == 2
    assert "queue name" in capsys.readouterr().err
    assert main(["queue", "delete", "mail", "--storage", storage]) == 0


def test_bad_broker_config_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "broker.toml"
    config.write_text('storage = "sqlite:///x.db"\ncontrol_topic = "t"\n')
    assert main(["broker", "--config", str(config)]) == 2
    assert "control_partitions" in capsys.readouterr().err
