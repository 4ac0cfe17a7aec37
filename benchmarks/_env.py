"""Services for benchmarks: the same resolution as the tests (environment, containers, local launcher)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, NewTopic

from tests.services import Services, resolve_services


@dataclass(frozen=True)
class BenchEnv:
    services: Services

    @property
    def bootstrap(self) -> str:
        return self.services.kafka_bootstrap_servers

    def create_topic(self, prefix: str, partitions: int = 3) -> str:
        name = f"bench-{prefix}-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)
        return name

    def delete_topics(self, names: list[str]) -> None:
        if names:
            admin = AdminClient({"bootstrap.servers": self.bootstrap})
            for future in admin.delete_topics(names).values():
                with contextlib.suppress(Exception):
                    future.result(30)


@contextlib.contextmanager
def bench_env() -> Iterator[BenchEnv]:
    with resolve_services() as services:
        yield BenchEnv(services)
