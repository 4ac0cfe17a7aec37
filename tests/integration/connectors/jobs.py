"""Jobs the integration tests run as real processes (``python -m connectors run ...``), set up by environment.

``CONN_KILL_AT=put:N`` kills the process with SIGKILL right after its N-th checkpoint file is written (a
checkpoint prepared, its transaction still open); ``prune:N`` right after the N-th checkpoint's transaction
committed, before anything else happens.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from connectors import Job, KafkaSink, KafkaSource, LocalDirectoryStore, PscSink, PscSource, State

CLUSTER_URI = "plaintext:/rn:kafka:local:local_dev::cluster01:"


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise KeyError(f"environment variable {name} is not set")
    return value


class KillingStore(LocalDirectoryStore):
    """A local store that SIGKILLs its own process at one chosen step of one checkpoint."""

    def __init__(self, path: Path, kill_at: str) -> None:
        super().__init__(path)
        self.step, count = kill_at.split(":")
        self.remaining = {"put": int(count), "prune": int(count)}

    def _tick(self, step: str) -> None:
        if step == self.step:
            self.remaining[step] -= 1
            if self.remaining[step] == 0:
                os.kill(os.getpid(), signal.SIGKILL)

    def put(self, name: str, data: bytes) -> None:
        super().put(name, data)
        if name.startswith("chk-"):  # not the writability probe
            self._tick("put")

    def list(self) -> list[str]:
        names = super().list()
        if self.step == "prune" and self._pruning():
            self._tick("prune")
        return names

    @staticmethod
    def _pruning() -> bool:
        import inspect

        return any(frame.function == "prune" for frame in inspect.stack()[1:4])


def tag(value: bytes, state: State) -> bytes:
    """Appends a per-key running count, so replayed or skipped records would show in the output."""
    fail_on = os.environ.get("CONN_FAIL_ON")
    if fail_on and value == fail_on.encode():
        raise ValueError(f"refusing {value!r}")
    count = state.get("count", 0) + 1
    state.set("count", count)
    return value + b"|" + str(count).encode()


def pass_through() -> Job:
    name = _env("CONN_JOB")
    checkpoints: Any = _env("CONN_CHECKPOINTS")
    if os.environ.get("CONN_KILL_AT"):
        checkpoints = KillingStore(Path(checkpoints.removeprefix("file:")) / name / "i0", _env("CONN_KILL_AT"))
    job = Job(
        name,
        checkpoints=checkpoints,
        checkpoint_interval_s=float(_env("CONN_INTERVAL", "0.5")),
        on_error=_env("CONN_ON_ERROR", "stop"),  # type: ignore[arg-type]
        dead_letter_topic=os.environ.get("CONN_DLQ"),
        max_restarts=int(_env("CONN_MAX_RESTARTS", "2")),
        restart_backoff_s=0.2,
    )
    stop: Any = "latest" if os.environ.get("CONN_BOUNDED") else None
    guarantee: Any = _env("CONN_GUARANTEE", "exactly_once")
    timeout = float(_env("CONN_TXN_TIMEOUT", "30"))
    source_topic, out_topic = _env("CONN_SOURCE"), _env("CONN_OUT")
    if _env("CONN_FAMILY", "kafka") == "kafka":
        servers = {"bootstrap.servers": _env("KAFKA_BOOTSTRAP_SERVERS")}
        group = {"session.timeout.ms": int(os.environ["CONN_SESSION_MS"])} if os.environ.get("CONN_SESSION_MS") else {}
        stream = job.source("in", KafkaSource([source_topic], stop=stop, config={**servers, **group}))
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
