"""Flink Kafka source state, built byte by byte after Flink's documented layouts, imported and migrated."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.checkpointing.flink import (
    NO_STOPPING_OFFSET,
    flink_checkpoint,
    import_source_state,
    read_enum_state,
    read_split,
)
from connectors.checkpointing.state import Split, read_splits
from connectors.errors import StateMigrationError

CLUSTER = "plaintext:/rn:kafka:local:local_dev::cluster01:"


def utf(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def split(topic: str, partition: int, start: int, stop: int = NO_STOPPING_OFFSET) -> bytes:
    return utf(topic) + struct.pack(">iqq", partition, start, stop)


def framed(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


@given(st.from_regex(r"[a-zA-Z0-9._-]{1,40}", fullmatch=True), st.integers(0, 2**31 - 1), st.integers(0, 2**62))
def test_split_v0_round_trip(topic: str, partition: int, start: int) -> None:
    found = read_split(split(topic, partition, start, start + 5))
    assert (found.topic, found.partition, found.starting_offset, found.stopping_offset) == (
        topic,
        partition,
        start,
        start + 5,
    )


def test_enum_state_versions_0_to_3() -> None:
    v0 = struct.pack(">ii", 2, 0) + struct.pack(">ii", 0, 1) + framed(split("a", 0, 10))
    v0 += struct.pack(">ii", 1, 1) + framed(split("a", 1, 20))
    assert [(s.topic, s.partition, s.starting_offset) for s in read_enum_state(v0, 0)] == [("a", 0, 10), ("a", 1, 20)]
    v1 = struct.pack(">i", 1) + utf("b") + struct.pack(">i", 4)
    assert [(s.topic, s.partition) for s in read_enum_state(v1, 1)] == [("b", 4)]
    v2 = struct.pack(">i", 1) + utf("b") + struct.pack(">ii", 4, 1) + b"\x01"
    assert [(s.topic, s.partition) for s in read_enum_state(v2, 2)] == [("b", 4)]
    v3 = struct.pack(">ii", 1, 0) + framed(split("c", 2, 99, 120)) + struct.pack(">i", 0) + b"\x00"
    assert [(s.topic, s.partition, s.starting_offset, s.stopping_offset) for s in read_enum_state(v3, 3)] == [
        ("c", 2, 99, 120)
    ]


def test_bad_bytes_and_versions_are_named() -> None:
    with pytest.raises(StateMigrationError, match="version 4 is not supported"):
        read_enum_state(b"", 4)
    with pytest.raises(StateMigrationError, match="truncated"):
        read_split(split("a", 0, 1)[:-3])
    with pytest.raises(StateMigrationError, match="trailing bytes"):
        read_enum_state(struct.pack(">i", 0) + b"\x00\x00", 1)
    with pytest.raises(StateMigrationError, match="serializer version 1"):
        read_split(split("a", 0, 1), 1)


def test_import_merges_reader_progress_over_the_enumerator_and_migrates_to_psc() -> None:
    v3 = struct.pack(">ii", 2, 0)
    v3 += framed(split("t", 0, -2)) + struct.pack(">i", 0) + framed(split("t", 1, 7)) + struct.pack(">i", 0) + b"\x01"
    splits = import_source_state((3, v3), [(0, split("t", 0, 42))])
    assert splits == [Split("t", 0, 42), Split("t", 1, 7)]
    checkpoint = flink_checkpoint("job", "src", splits)
    migrated = read_splits("psc", checkpoint.operators["src"], "src", CLUSTER)
    assert [(s.topic, s.partition, s.next_offset) for s in migrated] == [(CLUSTER + "t", 0, 42), (CLUSTER + "t", 1, 7)]


def test_markers_leave_the_offset_to_the_source_and_committed_stops_are_refused() -> None:
    assert import_source_state(None, [(0, split("t", 0, -3, -1))]) == [Split("t", 0, None, None)]
    with pytest.raises(StateMigrationError, match="stopping offset -3"):
        import_source_state(None, [(0, split("t", 0, 5, -3))])


def test_the_cli_writes_the_import_as_the_jobs_first_checkpoint(tmp_path: Path) -> None:
    from connectors.checkpointing import CheckpointManager, LocalDirectoryStore
    from connectors.cli import main

    (tmp_path / "enum").write_bytes(
        struct.pack(">ii", 1, 0) + framed(split("t", 0, 5)) + struct.pack(">i", 0) + b"\x01"
    )
    (tmp_path / "split").write_bytes(split("t", 0, 9))
    args = ["import-flink", "job", "src", "--checkpoints", f"file:{tmp_path / 'chk'}"]
    assert main([*args, "--enum-state", f"3:{tmp_path / 'enum'}", "--split", f"0:{tmp_path / 'split'}"]) == 0
    [checkpoint] = CheckpointManager(LocalDirectoryStore(tmp_path / "chk" / "job" / "i0"), "job").valid()
    assert read_splits("psc", checkpoint.operators["src"], "src", CLUSTER)[0].next_offset == 9
    assert main([*args, "--split", f"0:{tmp_path / 'split'}"]) == 2  # the store is no longer empty
    assert main([*args, "--split", "zero:nowhere"]) == 2
