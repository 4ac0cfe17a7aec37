from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.checkpointing import Checkpoint, CheckpointManager, LocalDirectoryStore, decode, encode, open_store
from connectors.checkpointing.state import (
    PSC_VERSION,
    PendingTransaction,
    SinkState,
    Split,
    read_sink,
    read_splits,
    sink_section,
    splits_section,
)
from connectors.errors import CheckpointCorruptError, JobConfigError, NoValidCheckpointError, StateMigrationError

CLUSTER = "plaintext:/rn:kafka:local:local_dev::cluster01:"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
splits = st.builds(
    Split,
    topic=st.from_regex(r"[a-z][a-z0-9._-]{0,20}", fullmatch=True),
    partition=st.integers(0, 1000),
    next_offset=st.none() | st.integers(0, 2**62),
    stop_offset=st.none() | st.integers(0, 2**62),
    state=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
)


def checkpoint(cid: int = 1, operators: dict[str, Any] | None = None, job: str = "job") -> Checkpoint:
    return Checkpoint(job, cid, "0badcafe", 1_700_000_000_000, operators or {})


@given(st.lists(splits, max_size=5), st.integers(0, 2**62))
def test_format_round_trips_any_split_state(split_list: list[Split], cid: int) -> None:
    cp = checkpoint(cid, {"src": splits_section("kafka", split_list)})
    back = decode(encode(cp), "x", "job")
    assert back == cp
    assert read_splits("kafka", back.operators["src"], "src") == split_list


@given(st.lists(splits, max_size=5))
def test_kafka_state_restores_into_psc_at_the_same_offsets(split_list: list[Split]) -> None:
    restored = read_splits("psc", splits_section("kafka", split_list), "src", CLUSTER)
    assert [(s.partition, s.next_offset, s.stop_offset, s.state) for s in restored] == [
        (s.partition, s.next_offset, s.stop_offset, s.state) for s in split_list
    ]
    assert [s.topic for s in restored] == [CLUSTER + s.topic for s in split_list]


def test_psc_state_round_trips_and_kafka_refuses_it() -> None:
    section = splits_section("psc", [Split(CLUSTER + "t", 3, 10, 20)])
    assert section["version"] == PSC_VERSION
    assert read_splits("psc", section, "src") == [Split(CLUSTER + "t", 3, 10, 20)]
    with pytest.raises(StateMigrationError, match="reverse migration from PSC to Kafka"):
        read_splits("kafka", section, "src")


def test_migration_needs_the_cluster_uri() -> None:
    with pytest.raises(StateMigrationError, match=r"psc\.cluster\.uri"):
        read_splits("psc", splits_section("kafka", [Split("t", 0, 5)]), "src", None)


@pytest.mark.parametrize(
    ("family", "version", "message"),
    [
        ("kafka", 7, "unknown Kafka state version 7"),
        ("psc", 7, "unknown Kafka state version 7"),
        ("psc", 100_001, "unknown PSC state version 100001"),
    ],
)
def test_unknown_versions_are_named(family: Any, version: int, message: str) -> None:
    with pytest.raises(StateMigrationError, match=message):
        read_splits(family, {"kind": "x", "version": version, "splits": []}, "src", CLUSTER)


def test_sink_state_migrates_unchanged() -> None:
    state = SinkState("job-0", PendingTransaction("job-0", 4, "job:4:0badcafe"))
    assert read_sink("psc", sink_section("kafka", state), "out") == state
    with pytest.raises(StateMigrationError, match="reverse migration"):
        read_sink("kafka", sink_section("psc", state), "out")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b[: len(b) // 2], "not JSON"),
        (lambda b: b.replace(b'"checkpoint_id":3', b'"checkpoint_id":4'), "sha256 does not match"),
        (lambda b: b"[]", "not a JSON object"),
        (lambda b: b"\xff\xfe", "not JSON"),
    ],
)
def test_corruption_is_detected_and_named(mutate: Any, reason: str) -> None:
    with pytest.raises(CheckpointCorruptError, match=reason) as info:
        decode(mutate(encode(checkpoint(3))), "chk-3", "job")
    assert info.value.name == "chk-3"


def test_unknown_format_version_and_foreign_job_are_refused() -> None:
    doc = json.loads(encode(checkpoint(3)))
    with pytest.raises(CheckpointCorruptError, match="written by job 'job'"):
        decode(encode(checkpoint(3)), "n", "other")
    doc.pop("sha256")
    doc["format_version"] = 9
    import hashlib

    body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    doc["sha256"] = hashlib.sha256(body).hexdigest()
    with pytest.raises(CheckpointCorruptError, match="format_version 9"):
        decode(json.dumps(doc).encode(), "n", "job")


def test_manager_passes_over_a_corrupt_newest_and_keeps_k(tmp_path: Path) -> None:
    manager = CheckpointManager(LocalDirectoryStore(tmp_path), "job", keep=2)
    names = [manager.save(checkpoint(i)) for i in (1, 2, 3)]
    manager.prune()
    assert manager.names() == [names[2], names[1]]
    (tmp_path / names[2]).write_bytes(b'{"trunc')
    assert [c.checkpoint_id for c in manager.valid()] == [2]
    assert [e.name for e in manager.corrupt_seen] == [names[2]]


def test_manager_refuses_when_every_checkpoint_is_corrupt(tmp_path: Path) -> None:
    manager = CheckpointManager(LocalDirectoryStore(tmp_path), "job")
    for i in (1, 2):
        (tmp_path / manager.save(checkpoint(i))).write_bytes(b"")
    with pytest.raises(NoValidCheckpointError, match="none of the 2 checkpoints"):
        manager.valid()
    assert CheckpointManager(LocalDirectoryStore(tmp_path / "empty"), "job").valid() == []


def test_local_store_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalDirectoryStore(tmp_path / "d")
    store.put("a", b"1")
    store.put("a", b"2")
    assert store.get("a") == b"2"
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["a"]


def test_open_store_parses_urls(tmp_path: Path) -> None:
    store = open_store(f"file:{tmp_path}", "job")
    assert isinstance(store, LocalDirectoryStore) and store.path == tmp_path / "job"
    with pytest.raises(JobConfigError, match="unknown scheme 'ftp'"):
        open_store("ftp://x/y", "job")
    with pytest.raises(JobConfigError, match="names no bucket"):
        open_store("s3:///prefix", "job")


def test_s3_store_keeps_checkpoints_under_the_job_prefix() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="chk-bucket")
        from connectors.checkpointing import S3Store

        manager = CheckpointManager(S3Store("chk-bucket", "root/job", client=client), "job", keep=1)
        manager.save(checkpoint(1))
        manager.save(checkpoint(2))
        manager.prune()
        assert [c.checkpoint_id for c in manager.valid()] == [2]
        keys = [o["Key"] for o in client.list_objects_v2(Bucket="chk-bucket")["Contents"]]
        assert keys == ["root/job/chk-00000000000000000002-0badcafe.json"]


def test_a_store_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    store = LocalDirectoryStore(blocker / "sub")
    with pytest.raises(JobConfigError, match="is not writable"):
        store.check_writable()
    LocalDirectoryStore(tmp_path / "ok").check_writable()
    assert list((tmp_path / "ok").iterdir()) == []
