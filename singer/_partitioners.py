"""Partitioners: which partition of a topic a record goes to.

Each is registered under the ``singer.partitioners`` entry-point group and built from a stream's
``partitioner`` table (``type`` plus the class's keyword arguments). One instance serves one topic for the
life of the process, so "single" means one partition per topic per host, not per stream.

The key-hash partitioners reproduce the reference agent's Java arithmetic exactly: signed 32-bit hashes,
``Math.abs`` (which leaves ``Integer.MIN_VALUE`` negative) and ``%`` truncating towards zero.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import itertools
import random
import struct
import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ENTRY_POINT_GROUP = "singer.partitioners"


@dataclass(frozen=True)
class Partitions:
    """A topic's partition ids (sorted) and, where the broker reports it, each leader's rack."""

    ids: tuple[int, ...]
    racks: Mapping[int, str] = field(default_factory=dict)


class Partitioner(ABC):
    wants_racks = False  # whether ``partitions.racks`` should be filled in: it costs a request of its own

    @abstractmethod
    def partition(self, key: bytes | None, partitions: Partitions) -> int:
        """The partition id for a record with ``key``; ``partitions.ids`` is never empty."""

    def partition_many(self, keys: Sequence[bytes | None], partitions: Partitions) -> list[int]:
        """The partition of each of a batch's records, in order; override where one call can do them all."""
        return [self.partition(key, partitions) for key in keys]


def _cycle(ids: Sequence[int], start: int, count: int) -> list[int]:
    """``count`` ids in turn from ``ids[start % len(ids)]``, without a Python call per id."""
    first = start % len(ids)
    return list(itertools.islice(itertools.cycle([*ids[first:], *ids[:first]]), count))


def _runs(ids: Sequence[int], start: int, count: int) -> list[int]:
    """``count`` records in one contiguous run per id, from ``ids[start % len(ids)]`` on: each id gets as many as
    ``count`` turns from there would give it (the first runs one more where they do not divide evenly)."""
    first = start % len(ids)
    share, extra = divmod(count, len(ids))
    runs: list[int] = []
    for turn, pid in enumerate([*ids[first:], *ids[:first]]):
        runs += [pid] * (share + (turn < extra))
    return runs


class RoundRobin(Partitioner):
    """Every partition in turn. A batch is split into one contiguous run per partition, each as long as turns
    record by record would make it, so the spread is the same; librdkafka then fills one partition's message
    set at a time and sends each as soon as it is full, instead of filling all of them together until the
    batch's end. (Measured on 3 partitions: a sixth to a fifth less CPU per line, and batches that spend
    less time waiting to be sent; see docs/singer-benchmarks.md.)"""

    def __init__(self) -> None:
        self._next = random.randrange(1 << 16)

    def partition(self, key: bytes | None, partitions: Partitions) -> int:
        self._next += 1
        return partitions.ids[(self._next - 1) % len(partitions.ids)]

    def partition_many(self, keys: Sequence[bytes | None], partitions: Partitions) -> list[int]:
        start, self._next = self._next, self._next + len(keys)
        return _runs(partitions.ids, start, len(keys))


class Random(Partitioner):
    def partition(self, key: bytes | None, partitions: Partitions) -> int:
        return random.choice(partitions.ids)

    def partition_many(self, keys: Sequence[bytes | None], partitions: Partitions) -> list[int]:
        return random.choices(partitions.ids, k=len(keys))


class Fixed(Partitioner):
    """``count`` distinct partitions drawn once (again only if the topic's partitions change), then used
    ``random``-ly or in ``round_robin`` order. ``count=1`` is the single-partition partitioner."""

    def __init__(self, count: int = 1, mode: str = "random") -> None:
        if count < 1:
            raise ValueError(f"partitioner count must be at least 1, got {count}")
        if mode not in ("random", "round_robin"):
            raise ValueError(f"partitioner mode must be 'random' or 'round_robin', got {mode!r}")
        self.count = count
        self.round_robin = mode == "round_robin"
        self._drawn_from: tuple[int, ...] = ()
        self._chosen: list[int] = []
        self._next = 0

    def partition(self, key: bytes | None, partitions: Partitions) -> int:
        return self.partition_many((key,), partitions)[0]

    def partition_many(self, keys: Sequence[bytes | None], partitions: Partitions) -> list[int]:
        if partitions.ids != self._drawn_from:
            self._drawn_from = partitions.ids
            self._chosen = random.sample(partitions.ids, min(self.count, len(partitions.ids)))
        if len(self._chosen) == 1:
            return self._chosen * len(keys)
        if self.round_robin:
            start, self._next = self._next, self._next + len(keys)
            return _cycle(self._chosen, start, len(keys))
        return random.choices(self._chosen, k=len(keys))


class Single(Fixed):
    def __init__(self) -> None:
        super().__init__(count=1)


# --- key hashes, as the reference computes them ---------------------------------------------------


def _to_int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def java_abs(value: int) -> int:
    """``Math.abs`` on an int: ``Integer.MIN_VALUE`` has no positive counterpart and stays negative."""
    return _to_int32(abs(value))


def java_rem(a: int, b: int) -> int:
    """Java's ``%``: the remainder has the dividend's sign (truncating division)."""
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def crc32_hash(key: bytes) -> int:
    """``java.util.zip.CRC32`` of the key, cast to int."""
    return _to_int32(zlib.crc32(key))


def murmur3_32(data: bytes, seed: int = 0) -> int:
    """Guava's ``Hashing.murmur3_32().hashBytes(data).asInt()``: MurmurHash3 x86 32-bit, signed result."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    whole = len(data) - len(data) % 4
    for (k,) in struct.iter_unpack("<I", data[:whole]):
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        h ^= (k * c2) & mask
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    k = 0
    for i, byte in enumerate(data[whole:]):
        k ^= byte << (8 * i)  # tail bytes as unsigned, as Guava does
    if k:
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        h ^= (k * c2) & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return _to_int32(h)


def md5_hash(key: bytes) -> int:
    """The reference's string-key MD5: the key as UTF-8 text, MD5, first 4 digest bytes little-endian, signed."""
    text = key.decode("utf-8", errors="replace").encode("utf-8")
    (value,) = struct.unpack_from("<i", hashlib.md5(text).digest())
    return int(value)


class _KeyHash(Partitioner):
    """Null keys go to a random partition, as in the reference."""

    def partition(self, key: bytes | None, partitions: Partitions) -> int:
        n = len(partitions.ids)
        if key is None:
            return random.choice(partitions.ids)
        return partitions.ids[self.index(key, n)]

    @abstractmethod
    def index(self, key: bytes, n: int) -> int: ...


class Crc32(_KeyHash):
    def index(self, key: bytes, n: int) -> int:
        return java_abs(java_rem(java_abs(crc32_hash(key)), n))


class Murmur3(_KeyHash):
    def index(self, key: bytes, n: int) -> int:
        return java_abs(java_rem(java_abs(murmur3_32(key)), n))


class Md5(_KeyHash):
    def index(self, key: bytes, n: int) -> int:
        index = java_rem(md5_hash(key), n)
        return index + n if index < 0 else index


class LocalityAware(Partitioner):
    """Prefer partitions whose leader is in this host's ``rack``; all partitions when none is (or the
    broker reports no racks). ``inner`` picks among the preferred ones: any partitioner type by name."""

    wants_racks = True

    def __init__(self, rack: str, inner: str = "random", **inner_params: Any) -> None:
        self.rack = rack
        self.inner = create(inner, inner_params)
        self.missing_local = False  # the last call found no local partition

    def partition(self, key: bytes | None, partitions: Partitions) -> int:
        return self.partition_many((key,), partitions)[0]

    def partition_many(self, keys: Sequence[bytes | None], partitions: Partitions) -> list[int]:
        local = tuple(p for p in partitions.ids if partitions.racks.get(p) == self.rack)
        self.missing_local = not local
        return self.inner.partition_many(keys, Partitions(local) if local else partitions)


def available() -> dict[str, Any]:
    """Partitioner types by name, from the ``singer.partitioners`` entry points."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def create(kind: str, params: Mapping[str, Any]) -> Partitioner:
    """Build the partitioner registered as ``kind`` with ``params``; errors name the type and the problem."""
    entry = available().get(kind)
    if entry is None:
        raise ValueError(f"unknown partitioner {kind!r}; installed: {', '.join(sorted(available()))}")
    cls = entry.load()
    try:
        instance = cls(**params)
    except TypeError as exc:
        raise ValueError(f"partitioner {kind!r}: {exc}") from None
    if not isinstance(instance, Partitioner):
        raise ValueError(f"partitioner {kind!r} ({entry.value}) is not a singer Partitioner")
    return instance
