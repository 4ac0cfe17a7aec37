"""Jobs the integration tests run as real processes (``python -m connectors run ...``), set up by environment."""

from __future__ import annotations

import os
from typing import Any

from connectors import Job, KafkaSink, KafkaSource, PscSink, PscSource, State

CLUSTER_URI = "plaintext:/rn:kafka:local:local_dev::cluster01:"


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise KeyError(f"environment variable {name} is not set")
    return value


def tag(value: bytes, state: State) -> bytes:
    """Appends a per-key running count, so replayed or skipped records would show in the output."""
    fail_on = os.environ.get("CONN_FAIL_ON")
    if fail_on and value == fail_on.encode():
        raise ValueError(f"refusing {value!r}")
    count = state.get("count", 0) + 1
    state.set("count", count)
    return value + b"|" + str(count).encode()


def pass_through() -> Job:
    family = _env("CONN_FAMILY", "kafka")
    job = Job(
        _env("CONN_JOB"),
        checkpoints=_env("CONN_CHECKPOINTS"),
        checkpoint_interval_s=float(_env("CONN_INTERVAL", "0.5")),
        on_error=_env("CONN_ON_ERROR", "stop"),  # type: ignore[arg-type]
        dead_letter_topic=os.environ.get("CONN_DLQ"),
        max_restarts=2,
        restart_backoff_s=0.2,
    )
    stop: Any = "latest" if os.environ.get("CONN_BOUNDED") else None
    guarantee: Any = _env("CONN_GUARANTEE", "exactly_once")
    timeout = float(_env("CONN_TXN_TIMEOUT", "30"))
    source_topic, out_topic = _env("CONN_SOURCE"), _env("CONN_OUT")
    if family == "kafka":
        servers = {"bootstrap.servers": _env("KAFKA_BOOTSTRAP_SERVERS")}
        stream = job.source("in", KafkaSource([source_topic], stop=stop, config=servers))
        stream.map(tag, state="key").sink(
            "out",
            KafkaSink(
                out_topic, guarantee=guarantee, partitioning="source", transaction_timeout_s=timeout, config=servers
            ),
        )
    else:
        config = {"psc.project": "connectors-it", "psc.cluster.uri": CLUSTER_URI}
        stream = job.source("in", PscSource([CLUSTER_URI + source_topic], stop=stop, config=config))
        stream.map(tag, state="key").sink(
            "out",
            PscSink(
                CLUSTER_URI + out_topic,
                guarantee=guarantee,
                partitioning="source",
                transaction_timeout_s=timeout,
                config={"psc.project": "connectors-it"},
            ),
        )
    return job
