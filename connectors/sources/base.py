"""Sources: a Source names topics and a start/stop policy; its reader owns the splits and reads them."""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

from connectors._ports import ConsumerPort, Record
from connectors.checkpointing.state import Family, Split, read_splits, splits_section
from connectors.errors import JobConfigError
from psc.common.log import get_logger

Start = Literal["earliest", "latest"]


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode`` (over UTF-16 code units, as a signed 32-bit int)."""
    h = 0
    for unit in struct.unpack(f">{len(text.encode('utf-16-be')) // 2}H", text.encode("utf-16-be")):
        h = (31 * h + unit) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def split_owner(topic_name: str, partition: int, instances: int) -> int:
    """Flink's Kafka split owner rule, on the bare topic name so a Kafka → PSC switch moves no partition."""
    start = ((java_string_hash(topic_name) * 31) & 0x7FFFFFFF) % instances
    return (start + partition) % instances


class Source(ABC):
    """Reads ``topics`` from ``start`` for partitions without checkpointed state; with ``stop="latest"``
    the source is bounded by each partition's end offset when it is first seen, and the job exits once
    every split reaches its stop offset."""

    family: Family

    def __init__(
        self,
        topics: Sequence[str],
        *,
        start: Start = "earliest",
        stop: Literal["latest"] | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(topics, str) or not topics:
            raise JobConfigError(f"{type(self).__name__}: topics must be a non-empty list, got {topics!r}")
        if start not in ("earliest", "latest"):
            raise JobConfigError(f"{type(self).__name__}: start must be 'earliest' or 'latest', got {start!r}")
        if stop not in (None, "latest"):
            raise JobConfigError(f"{type(self).__name__}: stop must be None or 'latest', got {stop!r}")
        self.topics = list(topics)
        self.start = start
        self.stop = stop
        self.config = dict(config or {})

    @abstractmethod
    def open_port(self, group_id: str) -> ConsumerPort: ...

    def topic_name(self, topic: str) -> str:
        """The bare topic name of one of this source's topics."""
        return topic

    def restore(self, section: dict[str, Any], operator: str) -> list[Split]:
        return read_splits(self.family, section, operator)

    def snapshot(self, splits: Sequence[Split]) -> dict[str, Any]:
        return splits_section(self.family, list(splits))


class SourceReader:
    """Reads every partition of the source's topics, keeping each split's next offset as records pass."""

    def __init__(
        self, source: Source, port: ConsumerPort, restored: Sequence[Split], instance: int = 0, instances: int = 1
    ) -> None:
        self.port = port
        self.bounded = source.stop is not None
        self._log = get_logger("connectors.source")
        known = {(s.topic, s.partition): s for s in restored}
        self.splits: dict[tuple[str, int], Split] = {}
        for topic in source.topics:
            for partition in port.partitions(topic):
                if split_owner(source.topic_name(topic), partition, instances) != instance:
                    continue
                split = known.pop((topic, partition), None) or Split(topic, partition)
                self.splits[(topic, partition)] = split
                self._settle(source, split)
        for split in known.values():
            self._log.warning("split_not_subscribed", topic=split.topic, partition=split.partition)
        self.port.assign([(s.topic, s.partition, s.next_offset or 0) for s in self.splits.values()])

    def _settle(self, source: Source, split: Split) -> None:
        """Concrete offsets for a new split, so a checkpoint never depends on where 'latest' was later."""
        if split.next_offset is None or (source.stop == "latest" and split.stop_offset is None):
            low, high = self.port.watermarks(split.topic, split.partition, 30)
            if split.next_offset is None:
                split.next_offset = low if source.start == "earliest" else high
            if source.stop == "latest" and split.stop_offset is None:
                split.stop_offset = high

    def poll(self, max_records: int, timeout: float) -> Sequence[Record]:
        """The next records, each split advanced past its last one. Work per record is one dict store:
        records arrive in offset order per partition, so only each partition's last record moves its split."""
        records = self.port.consume(max_records, timeout)
        if not records:
            return records
        last: dict[tuple[str, int], Record] = {}
        for record in records:
            last[record.topic(), record.partition()] = record  # type: ignore[index]
        splits, beyond = self.splits, False
        for key, record in last.items():
            split = splits[key]
            split.next_offset = record.offset() + 1  # type: ignore[operator]
            stop = split.stop_offset
            if stop is not None and split.next_offset > stop:
                split.next_offset, beyond = stop, True
        if beyond:  # a bounded source read past its stop offsets: drop what lies beyond
            return [r for r in records if not self._beyond_stop(r)]
        return records

    def _beyond_stop(self, record: Record) -> bool:
        stop = self.split_of(record).stop_offset
        return stop is not None and record.offset() >= stop  # type: ignore[operator]

    def split_of(self, record: Record) -> Split:
        return self.splits[record.topic(), record.partition()]  # type: ignore[index]

    def catch_up_positions(self) -> None:
        """After an empty poll: positions skip transaction markers that no record reports."""
        open_splits = [key for key, s in self.splits.items() if not s.finished]
        if not open_splits:
            return
        for key, position in self.port.positions(open_splits).items():
            split = self.splits[key]
            if position >= 0 and split.next_offset is not None and position > split.next_offset:
                split.next_offset = min(position, split.stop_offset) if split.stop_offset is not None else position

    @property
    def finished(self) -> bool:
        """A bounded source is done when every split reached its stop offset (at once if it owns none)."""
        return self.bounded and all(s.finished for s in self.splits.values())

    def offsets(self) -> list[tuple[str, int, int]]:
        return [(s.topic, s.partition, s.next_offset or 0) for s in self.splits.values()]

    def lag(self) -> int:
        """Records behind the end offsets last seen by fetches (no broker round trip)."""
        total = 0
        for split in self.splits.values():
            _, high = self.port.watermarks(split.topic, split.partition, 1, cached=True)
            if high >= 0:
                total += max(0, high - (split.next_offset or 0))
        return total
