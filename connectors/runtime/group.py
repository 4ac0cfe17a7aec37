"""The group mode: instances share a job through Kafka's consumer group protocol.

Each instance joins the job's consumer group (eager ``roundrobin`` assignment) under its own stable
transactional id. The group's committed offsets are the truth: every checkpoint commits them inside the
sink's transaction, so a partition's committed offset is always the position just after the last output
that became visible. Eager rebalancing revokes every partition at once, which makes each rebalance a clean
barrier: the revoke callback commits the open transaction (outputs and offsets together) before any
partition is given away, and the new assignment starts from the group's committed offsets. A zombie (an
instance the group has already replaced) is fenced by ``send_offsets_to_transaction`` carrying its stale
group generation: its transaction fails and is aborted.

Per-split user state is stored by position: ``split-<topic>-<partition>-<next offset>.json``, written
before the transaction that commits that offset. On assignment the file at the committed offset holds the
state that goes with it; files at other offsets are leftovers of aborted transactions or history.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from urllib.parse import quote, unquote

from connectors._bounded import bounded
from connectors._ports import ConsumerPort, Record
from connectors.checkpointing.format import Checkpoint, decode, encode
from connectors.checkpointing.state import Split
from connectors.checkpointing.stores import CheckpointStore, open_store
from connectors.errors import CheckpointCorruptError, JobConfigError, NoValidCheckpointError
from connectors.runtime.job import Job
from connectors.runtime.metrics import JobMetrics
from connectors.runtime.runner import Runner, witness_of
from connectors.sinks.base import CALL_TIMEOUT_S, SinkWriter
from connectors.sources.base import Source, SourceReader
from psc.common.log import get_logger

_SPLIT_FILE = re.compile(r"^split-(.+)-(\d{6})-(\d{20})\.json$")


def split_file(topic: str, partition: int, next_offset: int) -> str:
    return f"split-{quote(topic, safe='')}-{partition:06d}-{next_offset:020d}.json"


class SplitStates:
    """Per-split user state keyed by position, in the job's checkpoint store (``<job>/splits``)."""

    def __init__(self, store: CheckpointStore, job: str, operator: str, source: Source, incarnation: str) -> None:
        self.store = store
        self.job = job
        self.operator = operator
        self.source = source
        self.incarnation = incarnation

    def save(self, split: Split) -> None:
        assert split.next_offset is not None
        section = self.source.snapshot([split])
        checkpoint = Checkpoint(
            self.job, split.next_offset, self.incarnation, int(time.time() * 1000), {self.operator: section}
        )
        self.store.put(split_file(split.topic, split.partition, split.next_offset), encode(checkpoint))

    def load(self, topic: str, partition: int, next_offset: int) -> Split:
        """The state that goes with a committed offset; its absence is refused, not taken as empty."""
        name = split_file(topic, partition, next_offset)
        try:
            data = self.store.get(name)
        except Exception as exc:
            raise NoValidCheckpointError(
                f"job {self.job!r}: the group committed {topic} [{partition}] at offset {next_offset} but its split "
                f"state {name!r} cannot be read from {self.store!r} ({exc}); refusing to continue without it"
            ) from exc
        try:
            splits = self.source.restore(decode(data, name, self.job).operators[self.operator], self.operator)
        except (CheckpointCorruptError, KeyError) as exc:
            raise NoValidCheckpointError(f"job {self.job!r}: split state {name!r} is unusable: {exc}") from exc
        found = [s for s in splits if s.partition == partition and s.next_offset == next_offset]
        if len(found) != 1:
            raise NoValidCheckpointError(f"job {self.job!r}: split state {name!r} is not {topic} [{partition}]")
        return found[0]

    def prune(self, splits: Sequence[Split]) -> None:
        """Delete every file of these splits but the one at their committed offset."""
        keep = {(s.topic, s.partition): s.next_offset for s in splits}
        for name in self.store.list():
            match = _SPLIT_FILE.match(name)
            if match is None:
                continue
            key = (unquote(match.group(1)), int(match.group(2)))
            if key in keep and int(match.group(3)) != keep[key]:
                self.store.delete(name)


class GroupReader(SourceReader):
    """Reads the partitions the consumer group gives this instance; the runner commits on revoke."""

    def __init__(self, source: Source, port: ConsumerPort, states: SplitStates | None, runner: GroupRunner) -> None:
        self.port = port
        self.bounded = False
        self.splits = {}
        self._source = source
        self._states = states
        self._runner = runner
        self._log = get_logger("connectors.source")
        self.commit_on_revoke = True
        self.saved: dict[tuple[str, int], int] = {}  # the offset whose state file each split has
        port.subscribe(source.topics, self._assigned, self._revoked, self._lost)

    def _assigned(self, partitions: list[tuple[str, int]]) -> None:
        committed = self.port.committed(partitions, 30) if partitions else {}
        for topic, partition in partitions:
            found = committed.get((topic, partition))
            if found is not None and found.offset >= 0:
                split = (
                    self._states.load(topic, partition, found.offset)
                    if self._states is not None
                    else Split(topic, partition, found.offset)
                )
                self.saved[(topic, partition)] = found.offset
            else:
                split = Split(topic, partition)
                self._settle(self._source, split)
            self.splits[(topic, partition)] = split
        self.port.assign([(s.topic, s.partition, s.next_offset or 0) for s in self.splits.values()])
        self._log.info("partitions_assigned", partitions=sorted(f"{t}[{p}]" for t, p in partitions))

    def _revoked(self, partitions: list[tuple[str, int]]) -> None:
        if self.commit_on_revoke and self.splits:
            self._runner.commit_before_rebalance(self)
        self._give_back("partitions_revoked")

    def _lost(self, partitions: list[tuple[str, int]]) -> None:
        """The group already gave them to others: nothing of ours may commit for them."""
        self._runner.abort_after_loss()
        self._give_back("partitions_lost")

    def _give_back(self, event: str) -> None:
        self._log.info(event, partitions=sorted(f"{t}[{p}]" for t, p in self.splits))
        self.splits.clear()
        self.saved.clear()

    def poll(self, max_records: int, timeout: float) -> Sequence[Record]:
        """Records of the current assignment past each split's offset. A batch spanning a rebalance may hold
        records of partitions given away (skipped) and, for partitions kept, the start of the old fetch
        followed by the same records fetched again from the committed offset (skipped as already read)."""
        out: list[Record] = []
        splits = self.splits
        for record in self.port.consume(max_records, timeout):
            split = splits.get((record.topic(), record.partition()))  # type: ignore[arg-type]
            offset: int = record.offset()  # type: ignore[assignment]
            if split is None or split.next_offset is None or offset < split.next_offset:
                continue
            split.next_offset = offset + 1
            out.append(record)
        return out

    def changed(self) -> list[Split]:
        """Splits whose state file is not at their current offset."""
        return [s for key, s in self.splits.items() if self.saved.get(key) != s.next_offset]


class GroupRunner(Runner):
    """Runs one instance of a job in the group mode; ``instance`` names it and its transactional id."""

    def __init__(self, job: Job, *, instance: int = 0, metrics: JobMetrics | None = None) -> None:
        super().__init__(job, instance=instance, instances=instance + 1, metrics=metrics)
        if self.source.stop is not None:
            raise JobConfigError(f"job {job.name!r}: the group mode reads unbounded sources (stop=None)")
        strategy = str(self.source.config.get("partition.assignment.strategy", ""))
        if "cooperative" in strategy:
            raise JobConfigError(
                f"job {job.name!r}: partition.assignment.strategy={strategy!r}: the group mode needs an eager "
                "assignor (range or roundrobin), so that every rebalance commits all partitions at once"
            )
        store = (
            job.checkpoints
            if isinstance(job.checkpoints, CheckpointStore)
            else open_store(job.checkpoints, f"{job.name}/splits")
        )
        self.stateful = any(step.state for step in job.steps)
        self.states = (
            SplitStates(store, job.name, self.source_name, self.source, self.incarnation) if self.stateful else None
        )
        self.checkpoints.store = store
        self._writer: SinkWriter | None = None
        self._next_id = 1

    def _attempt(self) -> None:
        writer = SinkWriter(self.sink, self.transactional_id)
        port = None
        reader = None
        try:
            writer.start()  # fences an earlier incarnation of this instance and aborts its open transaction
            self._writer = writer
            port = self.source.open_port(self.job.name)
            reader = GroupReader(self.source, port, self.states, self)
            self._loop(reader, writer, None)
        finally:
            self._writer = None
            if reader is not None:
                reader.commit_on_revoke = False  # after a failure, offsets may be ahead of what was written
            self.close_quietly(port, writer)

    def _checkpoint(self, reader: SourceReader, writer: SinkWriter, checkpoint_id: int) -> None:
        assert isinstance(reader, GroupReader)
        started = time.monotonic()
        writer.flush()
        splits = list(reader.splits.values())
        changed = reader.changed()
        if self.states is not None:
            for split in changed:
                self.states.save(split)
        witness = witness_of(self.job.name, checkpoint_id, self.incarnation)
        offsets = reader.offsets()
        if writer.transactional_id is not None:
            writer.commit(reader.port.transaction_offsets(offsets, witness), reader.port.group_metadata())
        elif offsets:  # the group's offsets are the truth here
            port = reader.port
            bounded(CALL_TIMEOUT_S, "offset commit", lambda: port.commit(offsets, witness, asynchronous=False))
        for split in changed:
            reader.saved[(split.topic, split.partition)] = split.next_offset or 0
        if self.states is not None and changed:
            self.states.prune(changed)
        duration = time.monotonic() - started
        self.metrics.checkpoint_done(duration)
        self.completed_checkpoints += 1
        self._log.info(
            "checkpoint_completed", checkpoint=checkpoint_id, splits=len(splits), duration_s=round(duration, 4)
        )
        self._next_id = checkpoint_id + 1

    def commit_before_rebalance(self, reader: GroupReader) -> None:
        """Called from the revoke callback: outputs and offsets so far commit before the partitions move."""
        if self._writer is None:
            return
        self._checkpoint(reader, self._writer, self._next_id)

    def abort_after_loss(self) -> None:
        if self._writer is not None and self._writer.transactional_id is not None:
            self._writer.abort()
            self._log.warning("transaction_aborted_partitions_lost")
