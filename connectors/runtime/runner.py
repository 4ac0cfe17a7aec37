"""The job loop: restore, read, apply user functions, write, checkpoint; restart after failures.

Exactly-once checkpoint ``n``: flush the sink, write checkpoint ``n`` with its pending transaction and a
witness, then commit the transaction, which also commits the source offsets to the job's consumer group
with the witness as their metadata. A crash between the file and the commit leaves a checkpoint whose
transaction may or may not have committed; the restore fences the transactional id first and then reads
the group's committed metadata, which the transaction wrote, to decide.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from connectors._bounded import bounded
from connectors._ports import ConsumerPort, Record
from connectors.checkpointing.format import Checkpoint
from connectors.checkpointing.manager import CheckpointManager
from connectors.checkpointing.state import PendingTransaction, SinkState, Split
from connectors.checkpointing.stores import CheckpointStore, open_store
from connectors.errors import (
    ConnectorError,
    FencedError,
    JobConfigError,
    NoValidCheckpointError,
    StateMigrationError,
    UserFunctionError,
)
from connectors.runtime.job import Job, State, Step
from connectors.runtime.metrics import JobMetrics
from connectors.sinks.base import SinkWriter
from connectors.sources.base import SourceReader
from psc.common.log import get_logger

BATCH = 500
CLOSE_TIMEOUT_S = 5.0  # a consumer's close waits for outstanding offset commits: not worth more
COMMITTED_TIMEOUT_S = 30.0
_FATAL = (JobConfigError, NoValidCheckpointError, StateMigrationError, UserFunctionError, FencedError)
_WITNESS_PREFIX = "connectors"


def is_fenced(exc: BaseException | None) -> bool:
    """Whether a failure, or one it was raised from, says a newer producer fenced ours."""
    while exc is not None:
        text = str(exc).lower()
        if "fenced" in text or "old epoch" in text or "invalid_producer_epoch" in text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def witness_of(job: str, checkpoint_id: int, incarnation: str) -> str:
    return f"{_WITNESS_PREFIX}:{job}:{checkpoint_id}:{incarnation}"


def witnessed_checkpoint(metadata: str | None, job: str) -> int | None:
    """The checkpoint id a committed offset's metadata names, if this job's transaction wrote it."""
    parts = (metadata or "").split(":")
    if len(parts) == 4 and parts[0] == _WITNESS_PREFIX and parts[1] == job and parts[2].isdigit():
        return int(parts[2])
    return None


class Runner:
    def __init__(self, job: Job, *, instance: int = 0, instances: int = 1, metrics: JobMetrics | None = None) -> None:
        self.job = job
        self.source_name, self.source, self.sink_name, self.sink = job.validate()
        if instances < 1 or not 0 <= instance < instances:
            raise JobConfigError(
                f"job {job.name!r}: instance {instance} of {instances} (need 0 <= instance < instances)"
            )
        self.instance = instance
        self.instances = instances
        self.incarnation = secrets.token_hex(4)
        self.transactional_id = f"{job.name}-{instance}"
        self.metrics = metrics or JobMetrics(job.name)
        # instances share a job: each owns some partitions and keeps its own checkpoints
        namespace = f"{job.name}/i{instance}"
        store = (
            job.checkpoints if isinstance(job.checkpoints, CheckpointStore) else open_store(job.checkpoints, namespace)
        )
        self.checkpoints = CheckpointManager(store, job.name, keep=job.keep_checkpoints, metrics=self.metrics)
        self._log = get_logger("connectors.job", job=job.name, instance=instance)
        self.completed_checkpoints = 0

    def run(self) -> None:
        """Run until the source is finished or a stop is asked for; restart in-process after failures.
        An attempt that completed a checkpoint made progress: the failures before it no longer count."""
        self.checkpoints.store.check_writable()
        failures = 0
        while True:
            completed = self.completed_checkpoints
            try:
                self._attempt()
                return
            except _FATAL:
                raise
            except Exception as exc:
                if is_fenced(exc):
                    raise self._fenced(exc) from exc
                if self.completed_checkpoints > completed:
                    failures = 0
                failures += 1
                self.metrics.restarts.inc()
                if failures > self.job.max_restarts:
                    self._log.error("job_failed", failures=failures, error=repr(exc))
                    raise
                delay = min(30.0, self.job.restart_backoff_s * 2 ** (failures - 1))
                self._log.warning("job_restarting", error=repr(exc), failures=failures, backoff_s=delay)
                if self.job.stop_event.wait(delay):
                    return

    def _fenced(self, exc: BaseException) -> FencedError:
        self._log.error("fenced", transactional_id=self.transactional_id, error=repr(exc))
        return FencedError(f"transactional id {self.transactional_id!r} was taken over by another instance: {exc}")

    # --- one attempt: restore, then loop -------------------------------------------------------------

    def _attempt(self) -> None:
        writer = SinkWriter(self.sink, self.transactional_id)
        port = None
        try:
            writer.start()  # fences a previous owner of the transactional id before the witness is read
            port = self.source.open_port(self.job.name)
            checkpoint, splits = self._restore(port)
            reader = SourceReader(self.source, port, splits, self.instance, self.instances)
            self._loop(reader, writer, checkpoint)
        finally:
            self.close_quietly(port, writer)

    def close_quietly(self, port: ConsumerPort | None, writer: SinkWriter) -> None:
        """Close the consumer and the writer of a finished or failed attempt, each within a deadline."""
        if port is not None:
            try:
                bounded(CLOSE_TIMEOUT_S, "consumer close", port.close)
            except Exception as exc:
                self._log.warning("source_close_failed", error=repr(exc))
        try:
            writer.close()
        except Exception as exc:
            # a fenced producer may first fail as undelivered (purged) records; aborting names the fencing
            if is_fenced(exc):
                raise self._fenced(exc) from exc
            self._log.warning("sink_close_failed", error=repr(exc))

    def _restore(self, port: Any) -> tuple[Checkpoint | None, list[Split]]:
        """The newest checkpoint whose transaction committed.

        Checkpoint n is written only after n-1's transaction committed, so only the newest can be
        uncommitted. Its witness decides; if the group holds no witness of this job at all (its offsets
        expired, or nothing ever committed) the newest cannot be proven, and the one before it is taken:
        a possible replay rather than a possible gap.
        """
        proven_before = False
        for checkpoint in self.checkpoints.valid():
            section = self._section(checkpoint, self.source_name)
            if section.get("instances", 1) != self.instances:
                raise JobConfigError(
                    f"checkpoint {checkpoint.checkpoint_id} was taken with {section.get('instances', 1)} instances, "
                    f"this run has {self.instances}: changing the instance count is not supported"
                )
            splits = self.source.restore(section, self.source_name)
            sink_section = checkpoint.operators.get(self.sink_name)
            sink_state = self.sink.restore(sink_section, self.sink_name) if sink_section else SinkState(None, None)
            pending = sink_state.pending
            if pending is not None and not proven_before:
                verdict = self._witness(port, splits, pending)
                if verdict != "committed":
                    self._log.warning(
                        "checkpoint_not_committed" if verdict == "not_committed" else "checkpoint_unproven",
                        checkpoint=checkpoint.checkpoint_id,
                        transactional_id=pending.transactional_id,
                    )
                    self.checkpoints.discard(checkpoint)
                    proven_before = True
                    continue
            self._log.info("restored", checkpoint=checkpoint.checkpoint_id, splits=len(splits))
            return checkpoint, splits
        self._log.info("starting_fresh")
        return None, []

    def _section(self, checkpoint: Checkpoint, operator: str) -> dict[str, Any]:
        section = checkpoint.operators.get(operator)
        if section is None:
            raise StateMigrationError(
                f"checkpoint {checkpoint.checkpoint_id} has no state for operator {operator!r} "
                f"(it has {sorted(checkpoint.operators)}); operators are matched by name"
            )
        return section

    def _witness(self, port: Any, splits: list[Split], pending: PendingTransaction) -> str:
        """``committed``: the group's offsets name this transaction or a later checkpoint;
        ``not_committed``: they name an earlier one; ``unknown``: they name none of this job's."""
        pairs = [(s.topic, s.partition) for s in splits]
        committed = (
            bounded(COMMITTED_TIMEOUT_S + 5, "committed", lambda: port.committed(pairs, COMMITTED_TIMEOUT_S))
            if pairs
            else {}
        )
        seen = [witnessed_checkpoint(found.metadata, self.job.name) for found in committed.values()]
        if any(found.metadata == pending.witness for found in committed.values()):
            return "committed"
        later = [cid for cid in seen if cid is not None and cid > pending.checkpoint_id]
        if later:
            self._log.warning("restoring_older_than_committed", checkpoint=pending.checkpoint_id, committed=max(later))
            return "committed"
        return "not_committed" if any(cid is not None for cid in seen) else "unknown"

    def _loop(self, reader: SourceReader, writer: SinkWriter, restored: Checkpoint | None) -> None:
        job = self.job
        next_id = max(self.checkpoints.max_id(), restored.checkpoint_id if restored else 0) + 1
        interval = job.checkpoint_interval_s
        due = time.monotonic() + interval
        process = self._processor(reader, writer)
        records_in, records_out = self.metrics.records_in, self.metrics.records_out
        while True:
            if job.stop_event.is_set():
                self._checkpoint(reader, writer, next_id)
                self._log.info("stopped", checkpoint=next_id)
                return
            batch = reader.poll(BATCH, 0.1)
            if batch:
                records_in.inc(len(batch))
                records_out.inc(process(batch))
            else:
                reader.catch_up_positions()
            if reader.finished:
                self._checkpoint(reader, writer, next_id)
                self._log.info("finished", checkpoint=next_id)
                return
            if time.monotonic() >= due:
                self._checkpoint(reader, writer, next_id)
                next_id += 1
                due = time.monotonic() + interval

    def _checkpoint(self, reader: SourceReader, writer: SinkWriter, checkpoint_id: int) -> None:
        started = time.monotonic()
        writer.flush()
        witness = witness_of(self.job.name, checkpoint_id, self.incarnation)
        exactly_once = writer.transactional_id is not None
        pending = PendingTransaction(self.transactional_id, checkpoint_id, witness) if exactly_once else None
        checkpoint = Checkpoint(
            self.job.name,
            checkpoint_id,
            self.incarnation,
            int(time.time() * 1000),
            {
                self.source_name: {**self.source.snapshot(list(reader.splits.values())), "instances": self.instances},
                self.sink_name: self.sink.snapshot(SinkState(writer.transactional_id, pending)),
            },
        )
        name = self.checkpoints.save(checkpoint)
        offsets = reader.offsets()
        if exactly_once:
            writer.commit(reader.port.transaction_offsets(offsets, witness), reader.port.group_metadata())
        else:
            try:  # for monitoring only: the checkpoint, not the group, holds the offsets
                reader.port.commit(offsets, witness, asynchronous=True)
            except Exception as exc:
                self._log.warning("offset_commit_failed", error=repr(exc))
        self.checkpoints.prune()
        duration = time.monotonic() - started
        self.metrics.checkpoint_done(duration)
        self.completed_checkpoints += 1
        try:
            self.metrics.lag.set(reader.lag())
        except Exception as exc:
            self._log.debug("lag_unknown", error=repr(exc))
        self._log.info("checkpoint_completed", checkpoint=checkpoint_id, file=name, duration_s=round(duration, 4))

    # --- user functions --------------------------------------------------------------------------------

    def _processor(self, reader: SourceReader, writer: SinkWriter) -> Callable[[Sequence[Record]], int]:
        """The function that takes a batch of records through the user functions to the sink, returning
        how many records it wrote."""
        steps = list(enumerate(self.job.steps))
        if not steps:
            return writer.copy
        dead_letter = self.job.dead_letter_topic if self.job.on_error == "dead_letter" else None
        dead_letters = self.metrics.dead_letters
        log = self._log
        split_of = reader.split_of

        def state_for(index: int, step: Step, record: Record, split: Split) -> State:
            slot = split.state.setdefault(f"step{index}", {})
            if step.state == "split":
                return State(slot)
            raw_key = record.key()
            key = raw_key.hex() if isinstance(raw_key, bytes) else str(raw_key or "")
            return State(slot.setdefault(key, {}))

        def apply(record: Record, split: Split) -> list[Any]:
            values = [record.value()]
            for index, step in steps:
                fn = step.fn
                results: list[Any] = []
                for value in values:
                    res = fn(value, state_for(index, step, record, split)) if step.state else fn(value)
                    if step.kind == "map":
                        results.append(res)
                    elif step.kind == "filter":
                        if res:
                            results.append(value)
                    else:
                        results.extend(res)
                values = results
            return values

        write = writer.writer_for_sink_topic()

        def process_one(record: Record) -> int:
            split = split_of(record)
            try:
                values = apply(record, split)
            except Exception as exc:
                where = f"{record.topic()} [{record.partition()}] @ {record.offset()}"
                if dead_letter is None:
                    raise UserFunctionError(f"a user function raised on record {where}: {exc!r}") from exc
                log.warning("dead_letter", record=where, error=repr(exc), topic=dead_letter)
                dead_letters.inc()
                writer.write(record.value(), record.key(), split.partition, topic=dead_letter)
                return 0
            key, partition = record.key(), split.partition
            for value in values:
                write(value, key, partition)
            return len(values)

        def process(records: Sequence[Record]) -> int:
            return sum(process_one(record) for record in records)

        return process


__all__ = ["ConnectorError", "Runner"]
