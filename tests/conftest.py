"""Test wiring shared by every package.

Tests under ``tests/unit`` are marked ``unit`` and must not touch the network; tests under
``tests/integration`` are marked ``integration`` and get real services from the ``services`` fixture.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.services import Services, resolve_services

ROOT = Path(__file__).resolve().parent

# Property tests check results, never speed: Hypothesis's per-example deadline would fail them on a busy machine.
settings.register_profile("kstream", deadline=None)
settings.load_profile("kstream")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).resolve().relative_to(ROOT).parts
        if parts and parts[0] in ("unit", "integration"):
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """Endpoints of the real Kafka, MySQL and S3 services for this test session."""
    with resolve_services() as found:
        yield found


@pytest.fixture(scope="session")
def kafka_bootstrap(services: Services) -> str:
    return services.kafka_bootstrap_servers


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Callable[..., str]:
    """Create a fresh, uniquely named topic and return its name: ``new_topic(partitions=3)``."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})

    def create(partitions: int = 1, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        futures[name].result(timeout=30)
        return name

    return create
