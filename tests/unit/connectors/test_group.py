"""Split state by position, as the group mode keeps it."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors import JobConfigError, KafkaSink, KafkaSource, LocalDirectoryStore, NoValidCheckpointError, Split
from connectors.runtime.group import GroupRunner, SplitStates, split_file
from connectors.runtime.job import Job


def states(tmp_path: Path) -> SplitStates:
    source = KafkaSource(["plaintext:/rn:kafka:x"], config={})
    return SplitStates(LocalDirectoryStore(tmp_path), "job", "in", source, "0badcafe")


def test_state_is_found_by_the_committed_offset_and_older_positions_are_pruned(tmp_path: Path) -> None:
    store = states(tmp_path)
    topic = "plaintext:/rn:kafka:x"
    store.save(Split(topic, 2, 10, None, {"step0": {"k": {"count": 1}}}))
    store.save(Split(topic, 2, 25, None, {"step0": {"k": {"count": 4}}}))
    store.save(Split(topic, 1, 7, None, {}))
    assert store.load(topic, 2, 25).state == {"step0": {"k": {"count": 4}}}
    assert store.load(topic, 2, 10).state == {"step0": {"k": {"count": 1}}}
    store.prune([Split(topic, 2, 25)])
    assert sorted(p.name for p in tmp_path.iterdir()) == [split_file(topic, 1, 7), split_file(topic, 2, 25)]
    assert "/" not in split_file(topic, 2, 25)


def test_a_committed_offset_without_its_state_is_refused(tmp_path: Path) -> None:
    store = states(tmp_path)
    store.save(Split("t", 0, 5))
    with pytest.raises(NoValidCheckpointError, match=r"committed t \[0\] at offset 6 but its split state"):
        store.load("t", 0, 6)
    (tmp_path / split_file("t", 0, 5)).write_bytes(b"{}")
    with pytest.raises(NoValidCheckpointError, match="is unusable"):
        store.load("t", 0, 5)


def test_the_group_mode_refuses_a_bounded_source_and_a_cooperative_assignor(tmp_path: Path) -> None:
    def job(**source: object) -> Job:
        built = Job("j", checkpoints=f"file:{tmp_path}")
        built.source("in", KafkaSource(["t"], **source)).sink("out", KafkaSink("o"))  # type: ignore[arg-type]
        return built

    with pytest.raises(JobConfigError, match="unbounded"):
        GroupRunner(job(stop="latest"), instance=0)
    with pytest.raises(JobConfigError, match="eager assignor"):
        GroupRunner(job(config={"partition.assignment.strategy": "cooperative-sticky"}), instance=0)
