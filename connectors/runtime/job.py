"""The ``Job`` API: one source, a chain of user functions, one sink, checkpointed together."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from connectors.checkpointing.stores import CheckpointStore
from connectors.errors import JobConfigError
from connectors.sinks.base import Sink
from connectors.sources.base import Source

Scope = Literal["key", "split"]
OnError = Literal["stop", "dead_letter"]


class State:
    """User state for one key or one split: JSON values, checkpointed with the split that owns them."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def get(self, name: str, default: Any = None) -> Any:
        return self._data.get(name, default)

    def set(self, name: str, value: Any) -> None:
        self._data[name] = value

    def delete(self, name: str) -> None:
        self._data.pop(name, None)


@dataclass(frozen=True)
class Step:
    kind: Literal["map", "filter", "flat_map"]
    fn: Callable[..., Any]
    state: Scope | None


class Stream:
    """Chains user functions. With ``state="key"`` or ``"split"`` a function gets ``(value, State)``."""

    def __init__(self, job: Job) -> None:
        self._job = job

    def map(self, fn: Callable[..., Any], *, state: Scope | None = None) -> Stream:
        return self._add(Step("map", fn, state))

    def filter(self, fn: Callable[..., bool], *, state: Scope | None = None) -> Stream:
        return self._add(Step("filter", fn, state))

    def flat_map(self, fn: Callable[..., Iterable[Any]], *, state: Scope | None = None) -> Stream:
        return self._add(Step("flat_map", fn, state))

    def sink(self, name: str, sink: Sink) -> Job:
        if self._job.sink_name is not None:
            raise JobConfigError(f"job {self._job.name!r} already has sink {self._job.sink_name!r}")
        self._job.sink_name, self._job.sink_op = self._job.check_name(name), sink
        return self._job

    def _add(self, step: Step) -> Stream:
        if step.state not in (None, "key", "split"):
            raise JobConfigError(f"{step.kind}: state must be None, 'key' or 'split', got {step.state!r}")
        self._job.steps.append(step)
        return self


class Job:
    """A stream job: ``Job(name, ...).source(...).map(...).sink(...)``, run by ``python -m connectors run``.

    ``checkpoints`` is ``file:DIR`` (default ``file:./checkpoints``), ``s3://bucket/prefix`` (both get a
    sub-directory or prefix named after the job) or a ``CheckpointStore``. A user
    function raising on a record stops the job (``on_error="stop"``) or sends the record to
    ``dead_letter_topic`` through the sink (``on_error="dead_letter"``).
    """

    def __init__(
        self,
        name: str,
        *,
        checkpoints: str | CheckpointStore = "file:./checkpoints",
        checkpoint_interval_s: float = 5.0,
        keep_checkpoints: int = 3,
        on_error: OnError = "stop",
        dead_letter_topic: str | None = None,
        max_restarts: int = 5,
        restart_backoff_s: float = 1.0,
    ) -> None:
        if not isinstance(name, str) or not name or not name.replace("-", "").replace("_", "").isalnum():
            raise JobConfigError(f"job name must be letters, digits, '-' or '_', got {name!r}")
        if checkpoint_interval_s <= 0:
            raise JobConfigError(f"job {name!r}: checkpoint_interval_s must be positive, got {checkpoint_interval_s}")
        if keep_checkpoints < 1:
            raise JobConfigError(f"job {name!r}: keep_checkpoints must be at least 1, got {keep_checkpoints}")
        if on_error not in ("stop", "dead_letter"):
            raise JobConfigError(f"job {name!r}: on_error must be 'stop' or 'dead_letter', got {on_error!r}")
        if on_error == "dead_letter" and not dead_letter_topic:
            raise JobConfigError(f"job {name!r}: on_error='dead_letter' needs dead_letter_topic")
        self.name = name
        self.checkpoints = checkpoints
        self.checkpoint_interval_s = checkpoint_interval_s
        self.keep_checkpoints = keep_checkpoints
        self.on_error = on_error
        self.dead_letter_topic = dead_letter_topic
        self.max_restarts = max_restarts
        self.restart_backoff_s = restart_backoff_s
        self.source_name: str | None = None
        self.source_op: Source | None = None
        self.sink_name: str | None = None
        self.sink_op: Sink | None = None
        self.steps: list[Step] = []
        self.stop_event = threading.Event()

    def check_name(self, name: str) -> str:
        if not isinstance(name, str) or not name or name in (self.source_name, self.sink_name):
            raise JobConfigError(f"job {self.name!r}: operator names must be unique non-empty strings, got {name!r}")
        return name

    def source(self, name: str, source: Source) -> Stream:
        if self.source_name is not None:
            raise JobConfigError(f"job {self.name!r} already has source {self.source_name!r}")
        self.source_name, self.source_op = self.check_name(name), source
        return Stream(self)

    def validate(self) -> tuple[str, Source, str, Sink]:
        """Everything the runner needs, checked together before any client is created."""
        if self.source_name is None or self.source_op is None:
            raise JobConfigError(f"job {self.name!r} has no source")
        if self.sink_name is None or self.sink_op is None:
            raise JobConfigError(f"job {self.name!r} has no sink")
        self.sink_op.validate(self.checkpoint_interval_s)
        if self.sink_op.exactly_once and self.keep_checkpoints < 2:
            raise JobConfigError(
                f"job {self.name!r}: exactly-once needs keep_checkpoints >= 2 (got {self.keep_checkpoints}): the "
                "newest checkpoint may belong to an unfinished transaction, and the one before it is the fallback"
            )
        if self.sink_op.exactly_once and self.sink_op.family != self.source_op.family:
            raise JobConfigError(
                f"job {self.name!r}: exactly-once needs the source and sink of one client family (the sink's "
                f"transaction commits the source's offsets); got a {self.source_op.family} source and a "
                f"{self.sink_op.family} sink"
            )
        return self.source_name, self.source_op, self.sink_name, self.sink_op

    def stop(self) -> None:
        """Ask a running job to take a final checkpoint and return (what SIGTERM does)."""
        self.stop_event.set()

    def run(self, *, instance: int = 0, instances: int = 1) -> None:
        from connectors.runtime.runner import Runner

        Runner(self, instance=instance, instances=instances).run()
