"""Saving, listing, validating and pruning a job's checkpoints in a store."""

from __future__ import annotations

import re
from typing import Any

from connectors.checkpointing.format import Checkpoint, decode, encode
from connectors.checkpointing.stores import CheckpointStore
from connectors.errors import CheckpointCorruptError, NoValidCheckpointError
from psc.common.log import get_logger

_NAME = re.compile(r"^chk-(\d{20})-([0-9a-f]{8})\.json$")


def checkpoint_name(checkpoint: Checkpoint) -> str:
    return f"chk-{checkpoint.checkpoint_id:020d}-{checkpoint.incarnation}.json"


class CheckpointManager:
    """Keeps the newest ``keep`` checkpoints of one job and hands back the valid ones, newest first."""

    def __init__(self, store: CheckpointStore, job: str, *, keep: int = 3, metrics: Any = None) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.store = store
        self.job = job
        self.keep = keep
        self.corrupt_seen: list[CheckpointCorruptError] = []
        self._log = get_logger("connectors.checkpoints", job=job)
        self._metrics = metrics

    def names(self) -> list[str]:
        """Checkpoint file names, newest first (ordered by checkpoint id, then incarnation)."""
        return sorted((n for n in self.store.list() if _NAME.match(n)), reverse=True)

    def max_id(self) -> int:
        """The highest checkpoint id in the store, valid or not: new checkpoints are numbered above it."""
        names = self.names()
        match = _NAME.match(names[0]) if names else None
        return int(match.group(1)) if match else 0

    def save(self, checkpoint: Checkpoint) -> str:
        name = checkpoint_name(checkpoint)
        self.store.put(name, encode(checkpoint))
        return name

    def load(self, name: str) -> Checkpoint:
        try:
            data = self.store.get(name)
        except Exception as exc:
            raise CheckpointCorruptError(name, f"cannot be read ({exc})") from exc
        checkpoint = decode(data, name, self.job)
        if checkpoint_name(checkpoint) != name:
            raise CheckpointCorruptError(name, f"its content is checkpoint {checkpoint_name(checkpoint)!r}")
        return checkpoint

    def valid(self) -> list[Checkpoint]:
        """Every valid checkpoint, newest first; corrupt ones are logged by name and passed over.

        Raises ``NoValidCheckpointError`` when checkpoints exist but none is valid: starting from scratch
        then would silently reprocess or skip the job's input.
        """
        found: list[Checkpoint] = []
        self.corrupt_seen = []
        names = self.names()
        for name in names:
            try:
                found.append(self.load(name))
            except CheckpointCorruptError as exc:
                self.corrupt_seen.append(exc)
                self._log.error("checkpoint_corrupt", checkpoint=name, store=repr(self.store), reason=exc.reason)
                if self._metrics is not None:
                    self._metrics.corrupt_checkpoints.inc()
        if names and not found:
            reasons = "; ".join(str(e) for e in self.corrupt_seen)
            raise NoValidCheckpointError(
                f"job {self.job!r}: none of the {len(names)} checkpoints in {self.store!r} is valid, refusing to "
                f"start from scratch ({reasons}); move them away to start over"
            )
        return found

    def discard(self, checkpoint: Checkpoint) -> None:
        self.store.delete(checkpoint_name(checkpoint))

    def prune(self) -> None:
        """Delete all but the newest ``keep`` checkpoints."""
        for name in self.names()[self.keep :]:
            self.store.delete(name)
