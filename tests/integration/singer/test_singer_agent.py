"""Singer as a real process against the real broker: rotation, copytruncate, SIGKILL, broken config."""

from __future__ import annotations

import signal
import struct
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from benchmarks.singer_faults import LineWriter as Writer
from benchmarks.singer_faults import SingerProcess, distinct_lines, line, read_topic, rotate, run_mode
from singer._thrift import LogMessage, frame
from tests.services import Services


@pytest.fixture
def singer(tmp_path: Path, services: Services) -> Iterator[SingerProcess]:
    agent = SingerProcess(tmp_path, services)
    yield agent
    agent.kill_if_running()


def test_create_rotation_while_writing_loses_no_line(
    singer: SingerProcess, tmp_path: Path, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    topic = new_topic(partitions=3)
    singer.stream("app", logs, topic)
    writer = Writer(logs / "app.log", 20_000)
    writer.start()
    singer.start()
    for _ in range(4):
        time.sleep(0.4)
        rotate(logs, "create", tmp_path / "lr.state")
    writer.join()
    records = read_topic(kafka_bootstrap, topic, distinct_lines(20_000))
    assert {v for v, _ in records} == {line(i) for i in range(20_000)}
    assert len(list(logs.glob("app.log.*"))) >= 3  # it did rotate
    assert singer.stop() == 0
    assert '"stopped"' in singer.log_text()


def test_copytruncate_is_detected_and_counted(
    singer: SingerProcess, tmp_path: Path, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    topic = new_topic()
    singer.stream("app", logs, topic)
    path = logs / "app.log"
    path.write_bytes(b"".join(line(i) for i in range(1000)))
    singer.start()
    read_topic(kafka_bootstrap, topic, distinct_lines(1000))
    with path.open("ab") as f:  # written, then truncated away by copytruncate; the copy keeps them
        f.write(b"".join(line(i) for i in range(1000, 1100)))
    rotate(logs, "copytruncate", tmp_path / "lr.state")
    with path.open("ab") as f:
        f.write(b"".join(line(i) for i in range(1100, 1200)))
    records = read_topic(kafka_bootstrap, topic, distinct_lines(1200))
    assert {v for v, _ in records} == {line(i) for i in range(1200)}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(s.get("copytruncate") for s in singer.status().values()):
        time.sleep(0.2)
    assert [s["copytruncate"] for s in singer.status().values()] == [1]
    assert "copytruncate" in singer.log_text()


def test_sigkill_and_restart_loses_nothing_and_duplicates_carry_the_same_id(
    singer: SingerProcess, tmp_path: Path, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    topic = new_topic(partitions=2)
    singer.stream("app", logs, topic)
    writer = Writer(logs / "app.log", 30_000, per_burst=100, pause_s=0.002)
    writer.start()
    for cycle in range(3):
        singer.start()
        time.sleep(0.8 + 0.3 * cycle)
        assert singer.stop(signal.SIGKILL) == -signal.SIGKILL
        if cycle == 1:
            rotate(logs, "create", tmp_path / "lr.state")
    writer.join()
    singer.start()
    records = read_topic(kafka_bootstrap, topic, distinct_lines(30_000), limit_s=90)
    assert {v for v, _ in records} == {line(i) for i in range(30_000)}
    by_id: dict[bytes, set[bytes]] = defaultdict(set)
    for value, record_id in records:
        by_id[record_id].add(value)
    assert len(by_id) == 30_000 and all(len(values) == 1 for values in by_id.values())


def test_broken_stream_config_is_reported_while_others_ship(
    singer: SingerProcess, tmp_path: Path, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    topic = new_topic()
    singer.stream("good", good, topic)
    (singer.config / "conf.d" / "bad.toml").write_text(f'dir = "{bad}"\npattern = "(unclosed"\nbatch_records = -1\n')
    (good / "app.log").write_bytes(b"".join(line(i) for i in range(100)))
    singer.start()
    records = read_topic(kafka_bootstrap, topic, distinct_lines(100))
    assert {v for v, _ in records} == {line(i) for i in range(100)}
    text = singer.log_text()
    assert "stream configuration invalid" in text
    for problem in (
        "bad.toml",
        "pattern: Value error, not a valid regex",
        "topic_uri: Field required",
        "batch_records",
    ):
        assert problem in text
    # Fixing the file starts the stream without a restart.
    (bad / "app.log").write_bytes(b"fixed\n")
    time.sleep(0.05)
    singer.stream("bad", bad, topic)
    records = read_topic(kafka_bootstrap, topic, lambda r: b"fixed\n" in {v for v, _ in r})
    assert b"fixed\n" in {v for v, _ in records}


@pytest.mark.parametrize("mode", ["create", "copytruncate"])
def test_short_fault_schedule(services: Services, tmp_path: Path, mode: str) -> None:
    """``python -m benchmarks.singer_faults`` in short: 4 SIGKILLs while logrotate rotates every 0.3 s. Every
    duplicate carries its original's id and no other line's, a crash resends at most one batch, and only
    what copytruncate itself loses (lines in none of the files) is missing."""
    outcome = run_mode(services, tmp_path, mode, cycles=4, lines=20_000, seed=7)
    assert outcome.duplicates_share_id and outcome.duplicates_identifiable, outcome
    assert outcome.bound_holds, outcome
    assert outcome.lost_on_disk == 0
    if mode == "create":
        assert outcome.lost == 0, outcome.lost_where
        assert outcome.logrotate_backups == 0  # nothing written went out of the stream by logrotate's hand
    else:
        assert outcome.truncations > 0 and outcome.copytruncate_events > 0, outcome


def test_thrift_log_with_a_torn_frame_ships_every_record_with_key_and_timestamp(
    singer: SingerProcess, tmp_path: Path, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    topic = new_topic()
    singer.stream("thrift", logs, topic, format="thrift", partitioner={"type": "murmur3"})
    frames = [frame(LogMessage(b"msg %d" % i, key=b"k%d" % (i % 7), timestamp_ns=1_000 + i)) for i in range(200)]
    data = b"".join(frames)
    cut = len(data) - len(frames[-1]) // 2
    path = logs / "app.log"
    path.write_bytes(data[:cut])  # the last frame torn in half
    singer.start()
    first = read_topic(kafka_bootstrap, topic, lambda r: len(r) >= 199, limit_s=30)
    assert len(first) == 199
    with path.open("ab") as f:
        f.write(data[cut:])  # the frame completes
    records = read_topic(kafka_bootstrap, topic, lambda r: len(r) >= 200, limit_s=30)
    assert sorted(v for v, _ in records) == sorted(b"msg %d" % i for i in range(200))
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "g-" + topic, "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    msg = None
    while msg is None or msg.error():
        msg = consumer.poll(10)
    consumer.close()
    key, value = msg.key(), msg.value()
    assert key is not None and key.startswith(b"k") and value is not None
    index = int(value.split()[1])
    assert dict(msg.headers() or [])["_ots"] == struct.pack(">q", 1_000 + index)
