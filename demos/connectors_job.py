"""The demo's stream job: counts orders per customer, exactly once (``connectors run demos.connectors_job:job``).

Topics and the broker come from the environment: ``KAFKA_BOOTSTRAP_SERVERS``, ``DEMO_JOB_SOURCE`` (default
``demo-orders``) and ``DEMO_JOB_OUT`` (default ``demo-orders-counted``); they are created when missing, so
the compose job service needs nothing set up before it.
"""

from __future__ import annotations

import os

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from connectors import Job, KafkaSink, KafkaSource, State

PARTITIONS = 3


def count_per_customer(value: bytes, state: State) -> bytes:
    """``order-17`` becomes ``order-17 #3``: the third order of this record's key (customer)."""
    seen = state.get("orders", 0) + 1
    state.set("orders", seen)
    return value + b" #" + str(seen).encode()


def ensure_topics(bootstrap: str, topics: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics]).values():
        try:
            future.result(30)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def job() -> Job:
    servers = {"bootstrap.servers": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")}
    source = os.environ.get("DEMO_JOB_SOURCE", "demo-orders")
    out = os.environ.get("DEMO_JOB_OUT", "demo-orders-counted")
    ensure_topics(servers["bootstrap.servers"], [source, out])
    built = Job("demo-order-counts", checkpoints="file:./checkpoints", checkpoint_interval_s=0.5)
    built.source("orders", KafkaSource([source], config=servers)).map(count_per_customer, state="key").sink(
        "counted", KafkaSink(out, guarantee="exactly_once", partitioning="source", config=servers)
    )
    return built
