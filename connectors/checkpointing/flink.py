"""Import a checkpoint of Flink's own Kafka source: its split and enumerator states as raw bytes.

Layouts (Java ``DataOutput``: big-endian, strings as a 2-byte length and modified UTF-8):

- split, serializer version 0: topic, partition (int32), starting offset (int64), stopping offset (int64,
  ``Long.MIN_VALUE`` when unbounded). A starting offset is the next offset to read, or a marker.
- enumerator state v0: subtask count, split serializer version, then per subtask its id and its splits
  (each length-prefixed); v1: partitions (topic, partition); v2: partitions with an assignment status,
  then "initial discovery finished"; v3: count, split serializer version, each split length-prefixed with
  its status, then the same flag.

The import yields Kafka source state (``kafka.source`` version 1) under an operator name, so the Kafka
source restores it, and the PSC source too under ``psc.cluster.uri``. Splits whose start is a marker
(earliest, latest, committed, or "migrated" in v1/v2 states) get no offset: the source's ``start`` applies.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from connectors.checkpointing.format import Checkpoint
from connectors.checkpointing.state import Split, splits_section
from connectors.errors import StateMigrationError

SPLIT_VERSIONS = (0,)
ENUM_VERSIONS = (0, 1, 2, 3)
NO_STOPPING_OFFSET = -(2**63)
LATEST = -1


@dataclass(frozen=True)
class FlinkSplit:
    topic: str
    partition: int
    starting_offset: int
    stopping_offset: int | None


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise StateMigrationError(f"{self.what}: truncated at byte {self.pos} (wanted {n} more)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int32(self) -> int:
        return int(struct.unpack(">i", self.take(4))[0])

    def int64(self) -> int:
        return int(struct.unpack(">q", self.take(8))[0])

    def boolean(self) -> bool:
        return self.take(1) != b"\x00"

    def utf(self) -> str:
        raw = self.take(int(struct.unpack(">H", self.take(2))[0]))
        # modified UTF-8: NUL as C0 80, characters beyond the BMP as two 3-byte surrogates
        text = raw.replace(b"\xc0\x80", b"\x00").decode("utf-8", "surrogatepass")
        return text.encode("utf-16", "surrogatepass").decode("utf-16")

    def end(self) -> None:
        if self.pos != len(self.data):
            raise StateMigrationError(f"{self.what}: {len(self.data) - self.pos} unexpected trailing bytes")


def read_split(data: bytes, version: int = 0) -> FlinkSplit:
    if version not in SPLIT_VERSIONS:
        raise StateMigrationError(f"Flink Kafka split serializer version {version} is not supported ({SPLIT_VERSIONS})")
    r = _Reader(data, "Flink Kafka split")
    topic, partition, start, stop = r.utf(), r.int32(), r.int64(), r.int64()
    r.end()
    return FlinkSplit(topic, partition, start, None if stop == NO_STOPPING_OFFSET else stop)


def read_enum_state(data: bytes, version: int) -> list[FlinkSplit]:
    """The partitions an enumerator state knows; v1/v2 carry no offsets (starting offset ``NO_STOPPING_OFFSET``)."""
    if version not in ENUM_VERSIONS:
        raise StateMigrationError(
            f"Flink Kafka enumerator state version {version} is not supported (this build reads {list(ENUM_VERSIONS)})"
        )
    r = _Reader(data, f"Flink Kafka enumerator state v{version}")
    found: list[FlinkSplit] = []
    if version == 0:
        subtasks, split_version = r.int32(), r.int32()
        for _ in range(subtasks):
            r.int32()  # subtask id
            for _ in range(r.int32()):
                found.append(read_split(r.take(r.int32()), split_version))
    elif version == 3:
        count, split_version = r.int32(), r.int32()
        for _ in range(count):
            found.append(read_split(r.take(r.int32()), split_version))
            r.int32()  # assignment status
        r.boolean()
    else:
        for _ in range(r.int32()):
            topic, partition = r.utf(), r.int32()
            if version == 2:
                r.int32()  # assignment status
            found.append(FlinkSplit(topic, partition, NO_STOPPING_OFFSET, None))
        if version == 2:
            r.boolean()
    r.end()
    return found


def import_source_state(
    enum_state: tuple[int, bytes] | None, reader_splits: Iterable[tuple[int, bytes]] = ()
) -> list[Split]:
    """Splits from a Flink Kafka source checkpoint: readers' splits (with their progress) win over the
    enumerator's entries for the same partition."""
    merged: dict[tuple[str, int], FlinkSplit] = {}
    if enum_state is not None:
        for split in read_enum_state(enum_state[1], enum_state[0]):
            merged[(split.topic, split.partition)] = split
    for version, data in reader_splits:
        split = read_split(data, version)
        merged[(split.topic, split.partition)] = split
    out = []
    for split in merged.values():
        if split.stopping_offset is not None and split.stopping_offset < 0 and split.stopping_offset != LATEST:
            raise StateMigrationError(
                f"Flink split {split.topic}-{split.partition}: stopping offset {split.stopping_offset} "
                "(committed offsets) cannot be imported"
            )
        stop = None if split.stopping_offset in (None, LATEST) else split.stopping_offset
        start = split.starting_offset if split.starting_offset >= 0 else None
        out.append(Split(split.topic, split.partition, start, stop))
    return sorted(out, key=lambda s: (s.topic, s.partition))


def flink_checkpoint(job: str, operator: str, splits: list[Split], checkpoint_id: int = 1) -> Checkpoint:
    """A checkpoint holding imported splits as the source ``operator``; save it with a ``CheckpointManager``
    into an empty store and the job starts from it."""
    import time

    return Checkpoint(
        job, checkpoint_id, "00f11c00", int(time.time() * 1000), {operator: splits_section("kafka", splits)}
    )
