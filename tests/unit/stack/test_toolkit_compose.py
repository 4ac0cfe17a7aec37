"""docker-compose.toolkit.yml runs the project's own commands with configuration files that exist and load."""

from __future__ import annotations

import importlib
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = ROOT / "compose"
IN_IMAGE = "/app/"  # compose/Dockerfile: WORKDIR /app, the repository's files copied under it


def services() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load((COMPOSE / "docker-compose.toolkit.yml").read_text())
    found: dict[str, dict[str, Any]] = data["services"]
    return found


def entry_points() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def repo_path(argument: str) -> Path:
    return ROOT / argument.removeprefix(IN_IMAGE)


def test_toolkit_declares_memq_singer_pacer_brokers_and_a_worker() -> None:
    commands = {name: service["command"][:2] for name, service in services().items()}
    assert ["memq", "broker"] in commands.values()
    assert ["singer", "run"] in commands.values()
    assert list(commands.values()).count(["pacer", "broker"]) == 2
    assert ["pacer", "worker"] in commands.values()
    assert ["connectors", "run"] in commands.values()


def test_every_command_is_a_project_entry_point_or_the_demo() -> None:
    scripts = entry_points()
    for name, service in services().items():
        command = service["command"]
        assert command[0] in scripts or command == ["python", "demo.py"], f"{name}: {command[0]} is not ours"
        assert (COMPOSE / service["build"]["dockerfile"].removeprefix("compose/")).exists()


def test_every_referenced_file_exists() -> None:
    for name, service in services().items():
        for argument in service["command"]:
            if argument.startswith(IN_IMAGE):
                assert repo_path(argument).exists(), f"{name} names {argument}, which is not in the repository"
        discovery = service["environment"].get("PSC_DISCOVERY_FILE")
        assert discovery is None or repo_path(discovery).exists()


def test_the_configuration_files_load_with_the_projects_own_parsers() -> None:
    from memq._config import load_broker_config
    from pacer.broker._config import BrokerConfig
    from singer._config import load_agent, load_stream

    loaded = 0
    for service in services().values():
        command = service["command"]
        config = repo_path(command[command.index("--config") + 1]) if "--config" in command else None
        if command[:2] == ["memq", "broker"]:
            assert config is not None and load_broker_config(config).topics
        elif command[:2] == ["pacer", "broker"]:
            assert config is not None and BrokerConfig.load(config).advertised_url
        elif command[:2] == ["singer", "run"]:
            assert config is not None and load_agent(config).producer
            assert [load_stream(path).topic_uri for path in (config / "conf.d").glob("*.toml")]
        else:
            continue
        loaded += 1
    assert loaded == 4


def test_pacer_brokers_advertise_their_own_service_names() -> None:
    from pacer.broker._config import BrokerConfig

    for name, service in services().items():
        if service["command"][:2] == ["pacer", "broker"]:
            config = BrokerConfig.load(repo_path(service["command"][3]))
            assert config.advertised_url == f"http://{name}:{config.port}"


def test_worker_handler_imports_and_brokers_are_declared() -> None:
    from pacer.worker import load_handler

    declared = set(services())
    for name, service in services().items():
        command = service["command"]
        if command[:2] == ["pacer", "worker"]:
            assert callable(load_handler(command[2]))
            urls = [command[i + 1] for i, arg in enumerate(command) if arg == "--broker"]
            assert len(urls) == 2, name
            assert {url.split("//")[1].split(":")[0] for url in urls} <= declared


def test_the_stream_job_loads_and_keeps_its_checkpoints_in_a_volume() -> None:
    for name, service in services().items():
        command = service["command"]
        if command[:2] == ["connectors", "run"]:
            module, _, attribute = command[2].partition(":")
            assert callable(getattr(importlib.import_module(module), attribute)), name  # built at start: no broker
            store = command[command.index("--checkpoints") + 1].removeprefix("file:")
            mounts = {volume.split(":")[1] for volume in service["volumes"]}
            assert store in mounts, f"{name}: checkpoints in {store}, not in a volume"
            assert command[command.index("--metrics-port") + 1] in str(service["healthcheck"]["test"])
            return
    pytest.fail("no connectors job service")


def test_discovery_file_names_the_compose_services() -> None:
    entries = json.loads((COMPOSE / "psc-discovery.json").read_text())
    hosts = {entry["connect"].split(":")[0] for entry in entries.values()}
    assert hosts <= {"kafka"} | set(services())


@pytest.mark.parametrize("module", ["memq.cli", "singer.cli", "pacer.cli", "connectors.cli"])
def test_entry_point_modules_import(module: str) -> None:
    assert callable(importlib.import_module(module).main)
