"""The docker-compose files parse and declare the services and ports the toolkit expects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

COMPOSE = Path(__file__).resolve().parents[3] / "compose"


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((COMPOSE / name).read_text())
    assert isinstance(data, dict)
    return data


def published_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(p).split(":")[-2]) for p in service.get("ports", [])}


def test_base_stack_declares_kafka_mysql_minio_with_expected_ports() -> None:
    services = load("docker-compose.yml")["services"]
    assert {"kafka", "mysql", "minio"} <= set(services)
    assert 9092 in published_ports(services["kafka"])
    assert 3306 in published_ports(services["mysql"])
    assert 9000 in published_ports(services["minio"])


def test_kafka_service_is_single_node_kraft_with_replication_factor_one() -> None:
    env = load("docker-compose.yml")["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    assert "EXTERNAL://127.0.0.1:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_every_service_has_a_healthcheck() -> None:
    for name, service in load("docker-compose.yml")["services"].items():
        assert "healthcheck" in service, f"{name} has no healthcheck"


def test_toolkit_services_wait_for_healthy_dependencies() -> None:
    toolkit = load("docker-compose.toolkit.yml")["services"]
    declared = set(load("docker-compose.yml")["services"]) | set(toolkit)
    for name, service in toolkit.items():
        depends = service.get("depends_on", {})
        assert set(depends) <= declared, f"{name} depends on an undeclared service"
        for dep_name, dep in depends.items():
            # A one-shot service (no healthcheck, it exits) is waited for until it has completed.
            one_shot = dep_name in toolkit and "healthcheck" not in toolkit[dep_name]
            assert dep["condition"] == ("service_completed_successfully" if one_shot else "service_healthy")
        assert (COMPOSE / service["build"]["dockerfile"].split("/")[-1]).exists()
