"""The agent's data path against a fake producer: batches, watermarks, rewinds, poison records, reload."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from psc import ClusterMetadata, PartitionMetadata, TopicMetadata
from psc.backends.base import BrokerMetadata
from psc.common.settings import SettingsError
from singer._agent import Agent
from singer._config import AgentSettings, StreamSettings, load_agent, load_stream
from singer._metrics import SingerMetrics
from singer._watermark import WatermarkStore

URI = "plaintext:/rn:kafka:local:local_dev::cluster01:logs"
DLQ = "plaintext:/rn:kafka:local:local_dev::cluster01:dead"


class FakeMessage:
    def __init__(self, headers: list[tuple[str, bytes]]) -> None:
        self._headers = headers

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers


class FakeProducer:
    """Acknowledges on poll; ``fail`` decides which records fail (by value)."""

    instances: list[FakeProducer] = []

    def __init__(self, config: Mapping[str, str]) -> None:
        self.config = dict(config)
        self.queued: list[tuple[str, bytes, Any, Callable[..., None]]] = []
        self.delivered: list[tuple[str, bytes, int, list[tuple[str, bytes]]]] = []
        self.fail: Callable[[str, bytes], str | None] = lambda topic, value: None
        self.hold = False  # keep records queued (a broker that does not answer)
        FakeProducer.instances.append(self)

    def produce(self, topic: str, value: bytes, key: Any = None, partition: int = -1, headers: Any = None,
                on_delivery: Callable[..., None] | None = None) -> None:  # fmt: skip
        self.queued.append((topic, value, (partition, headers), on_delivery or (lambda e, m: None)))

    def poll(self, timeout: float = 0) -> int:
        if self.hold:
            return 0
        queued, self.queued = self.queued, []
        for topic, value, (partition, headers), callback in queued:
            error = self.fail(topic, value)
            if error is None:
                self.delivered.append((topic, value, partition, headers or []))
            callback(error, FakeMessage(headers or []))
        return len(queued)

    def list_topics(self, uri: str, timeout: float) -> ClusterMetadata:
        parts = {i: PartitionMetadata(i, 1, (1,), (1,)) for i in range(3)}
        return ClusterMetadata("c", None, 1, {1: BrokerMetadata(1, "b", 9092)}, {uri: TopicMetadata(uri, parts)})

    def flush(self, timeout: float | None = None) -> int:
        self.poll()
        return len(self.queued)

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    FakeProducer.instances = []
    config, logs = tmp_path / "conf", tmp_path / "logs"
    (config / "conf.d").mkdir(parents=True)
    logs.mkdir()
    (config / "singer.toml").write_text("poll_interval_s = 0.01\nreload_interval_s = 0.01\nuse_inotify = false\n")
    write_stream(config, "app", logs)
    return config, logs


def write_stream(config: Path, name: str, logs: Path, **extra: Any) -> None:
    lines = [f'dir = "{logs}"', "pattern = 'app\\.log(\\.\\d+)?'", f'topic_uri = "{URI}"']
    for key, value in {"batch_records": 2, **extra}.items():
        if isinstance(value, dict):  # a TOML inline table
            lines.append(f"{key} = {{{', '.join(f'{k} = {json.dumps(v)}' for k, v in value.items())}}}")
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    (config / "conf.d" / f"{name}.toml").write_text("\n".join(lines) + "\n")


def make_agent(config: Path) -> Agent:
    return Agent(config, load_agent(config), producer_factory=FakeProducer, metrics=SingerMetrics())


def turns(agent: Agent, n: int = 20, start: float = 100.0, step: float = 0.05) -> float:
    now = start
    for _ in range(n):
        agent.run_once(now)
        now += step
    return now


def offsets(agent: Agent) -> dict[str, int]:
    store = WatermarkStore(agent.settings.state_dir or Path())
    return {k: m.offset for k in agent.streams if (m := store.load(k)) is not None}


def test_ships_lines_with_headers_and_saves_the_watermark(setup: tuple[Path, Path]) -> None:
    config, logs = setup
    (logs / "app.log").write_bytes(b"a\nb\nc\n")
    agent = make_agent(config)
    turns(agent)
    producer = FakeProducer.instances[0]
    assert [d[1] for d in producer.delivered] == [b"a\n", b"b\n", b"c\n"]
    inode = (logs / "app.log").stat().st_ino
    headers = dict(producer.delivered[1][3])
    assert headers["_mid"] == struct.pack(">QQ", inode, 4) and headers["host"] == agent.settings.host.encode()
    assert len(headers["_ots"]) == 8
    assert headers["_fid"] == hashlib.sha256(b"a\nb\n").digest()[:8]  # the file's first bytes up to the record
    assert dict(producer.delivered[2][3])["_fid"] == hashlib.sha256(b"a\nb\nc\n").digest()[:8]
    assert set(d[2] for d in producer.delivered) <= {0, 1, 2}
    assert list(offsets(agent).values()) == [6]
    assert producer.config["psc.producer.compression.type"] == "lz4"


def test_watermark_waits_for_every_record_of_the_batch(setup: tuple[Path, Path]) -> None:
    config, logs = setup
    (logs / "app.log").write_bytes(b"a\nb\n")
    agent = make_agent(config)
    agent.reload()
    producer = FakeProducer.instances[0]
    producer.hold = True
    turns(agent, 5)
    assert offsets(agent) == {} and len(producer.queued) == 2
    producer.hold = False
    turns(agent, 3)
    assert list(offsets(agent).values()) == [4]


def test_failed_batch_rewinds_and_is_sent_again(setup: tuple[Path, Path]) -> None:
    config, logs = setup
    (logs / "app.log").write_bytes(b"a\nb\nc\nd\n")
    agent = make_agent(config)
    agent.reload()
    producer = FakeProducer.instances[0]
    producer.fail = lambda topic, value: "_TRANSPORT: broker down"
    turns(agent, 5)
    assert offsets(agent) == {}
    producer.fail = lambda topic, value: None
    turns(agent, 200)  # past the backoff
    values = [d[1] for d in producer.delivered]
    assert set(values) == {b"a\n", b"b\n", b"c\n", b"d\n"} and list(offsets(agent).values()) == [8]


def test_batch_times_out_as_a_whole(setup: tuple[Path, Path]) -> None:
    config, logs = setup
    write_stream(config, "app", logs, batch_timeout_s=1.0)
    (logs / "app.log").write_bytes(b"a\n")
    agent = make_agent(config)
    agent.reload()
    producer = FakeProducer.instances[0]
    producer.hold = True
    turns(agent, 70, step=0.1)  # the timeout, then the grace given to the producer's own failure reports
    assert agent.metrics.batch_retries.labels(next(iter(agent.streams)))._value.get() >= 1
    assert offsets(agent) == {}


def test_poison_record_goes_to_the_dead_letter_topic(setup: tuple[Path, Path]) -> None:
    config, logs = setup
    write_stream(config, "app", logs, dead_letter_topic_uri=DLQ, retry_backoff_s=0.01)
    (logs / "app.log").write_bytes(b"ok1\nBAD\nok2\nok3\n")
    agent = make_agent(config)
    agent.reload()
    producer = FakeProducer.instances[0]
    producer.fail = lambda topic, value: "MSG_SIZE_TOO_LARGE" if value == b"BAD\n" and topic == URI else None
    turns(agent, 60)
    key = next(iter(agent.streams))
    assert (DLQ, b"BAD\n") in [(d[0], d[1]) for d in producer.delivered]
    assert {d[1] for d in producer.delivered if d[0] == URI} == {b"ok1\n", b"ok2\n", b"ok3\n"}
    assert agent.metrics.dead_lettered.labels(key)._value.get() == 1
    assert list(offsets(agent).values()) == [16]


def test_poison_record_without_dead_letters_is_skipped_and_counted(setup: tuple[Path, Path]) -> None:
    config, logs = setup
    write_stream(config, "app", logs, retry_backoff_s=0.01)
    (logs / "app.log").write_bytes(b"ok1\nBAD\n")
    agent = make_agent(config)
    agent.reload()
    FakeProducer.instances[0].fail = lambda topic, value: "rejected" if value == b"BAD\n" else None
    turns(agent, 80)
    assert agent.metrics.skipped.labels(next(iter(agent.streams)))._value.get() == 1
    assert list(offsets(agent).values()) == [8]


def test_inflight_bytes_are_capped(setup: tuple[Path, Path]) -> None:
    config, logs = setup
    (config / "singer.toml").write_text("max_inflight_bytes = 1024\nuse_inotify = false\npoll_interval_s = 0.01\n")
    (logs / "app.log").write_bytes(b"x" * 99 + b"\n" * 1 + (b"y" * 99 + b"\n") * 5000)
    write_stream(config, "app", logs, batch_records=5)
    agent = make_agent(config)
    agent.reload()
    FakeProducer.instances[0].hold = True
    for stream in agent.streams.values():
        stream.tail.make_reader = _small_chunks(stream.tail.make_reader)
    turns(agent, 50)
    assert sum(s.inflight_bytes for s in agent.streams.values()) <= 1024 + 4096 + 4096 // 100 * 512


def test_what_was_acknowledged_since_the_last_turn_leaves_room_in_this_one(setup: tuple[Path, Path]) -> None:
    """At the cap, a turn settles before it measures the room: a stream behind reads in every turn, and the
    agent never sleeps while it has data to read."""
    config, logs = setup
    (config / "singer.toml").write_text("max_inflight_bytes = 1024\nuse_inotify = false\npoll_interval_s = 0.01\n")
    (logs / "app.log").write_bytes((b"y" * 99 + b"\n") * 5000)
    write_stream(config, "app", logs, batch_records=5)
    agent = make_agent(config)
    agent.reload()
    for stream in agent.streams.values():
        stream.tail.make_reader = _small_chunks(stream.tail.make_reader)
    assert [agent.run_once(100.0 + i * 0.05) for i in range(10)] == [True] * 10  # the producer acks at turn end


@pytest.mark.parametrize(
    ("batch_records", "counts", "sizes"),
    [(100, [2, 2, 2, 3], [10, 10, 26, 9]), (2, [2, 2, 2, 2, 1], [10, 10, 26, 6, 3])],
)
def test_a_chunk_is_cut_into_batches_by_records_and_by_the_record_that_reaches_batch_bytes(
    setup: tuple[Path, Path], batch_records: int, counts: list[int], sizes: list[int]
) -> None:
    config, logs = setup
    (logs / "app.log").write_bytes(b"aaaa\n" * 5 + b"b" * 20 + b"\n" + b"cc\n" * 3)
    # A window wide enough for the whole chunk: every batch is in flight at once.
    write_stream(config, "app", logs, batch_records=batch_records, batch_bytes=10, max_inflight_batches=16)
    agent = make_agent(config)
    agent.reload()
    FakeProducer.instances[0].hold = True
    turns(agent, 3)
    [stream] = agent.streams.values()
    assert [(b.count, b.bytes) for b in stream.inflight] == list(zip(counts, sizes, strict=True))
    assert [b.watermark.offset for b in stream.inflight][-1] == 5 * 5 + 21 + 9


def test_the_cap_counts_what_each_record_holds_beyond_its_value(setup: tuple[Path, Path]) -> None:
    """Short lines: their headers and the producer's bookkeeping outweigh them, and are held as long."""
    config, logs = setup
    (config / "singer.toml").write_text("max_inflight_bytes = 1024\nuse_inotify = false\npoll_interval_s = 0.01\n")
    (logs / "app.log").write_bytes(b"y\n" * 5000)
    write_stream(config, "app", logs, batch_records=5)
    agent = make_agent(config)
    agent.reload()
    FakeProducer.instances[0].hold = True
    for stream in agent.streams.values():
        stream.tail.make_reader = _small_chunks(stream.tail.make_reader, 64)
    turns(agent, 50)
    assert len(FakeProducer.instances[0].queued) <= 32  # one 64-byte chunk, then the cap is reached


def _small_chunks(make: Callable[[int, int], Any], size: int = 4096) -> Callable[[int, int], Any]:
    def factory(fd: int, offset: int) -> Any:
        reader = make(fd, offset)
        reader.chunk_bytes = size
        return reader

    return factory


def test_reload_adds_changes_and_removes_streams_and_reports_broken_files(setup: tuple[Path, Path]) -> None:
    config, logs = setup
    other = logs.parent / "other"
    other.mkdir()
    (other / "app.log").write_bytes(b"o\n")
    (logs / "app.log").write_bytes(b"a\n")
    agent = make_agent(config)
    now = turns(agent, 5)
    write_stream(config, "other", other)
    (config / "conf.d" / "broken.toml").write_text('dir = 5\npattern = "("\n')
    now = turns(agent, 5, now)
    assert len(agent.streams) == 2 and agent.metrics.config_errors._value.get() == 1
    sent = [d[1] for d in FakeProducer.instances[0].delivered]
    assert b"o\n" in sent and b"a\n" in sent
    (config / "conf.d" / "app.toml").unlink()
    turns(agent, 5, now)
    assert [k.split("@")[0] for k in agent.streams] == ["other"]


def test_config_reports_every_problem_at_once(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('dir = 5\npattern = "("\ntopic_uri = "nonsense"\nformat = "xml"\nmax_message_bytes = 1\n')
    with pytest.raises(SettingsError) as info:
        load_stream(path)
    text = str(info.value)
    assert str(path) in text
    for key in ("dir", "pattern", "topic_uri", "format", "max_message_bytes"):
        assert f"\n  - {key}:" in text
    path.write_text(f'dir = "/x"\npattern = "a"\ntopic_uri = "{URI}"\n[partitioner]\ntype = "fixed"\ncount = 0\n')
    with pytest.raises(SettingsError, match="at least 1"):
        load_stream(path)
    (tmp_path / "singer.toml").write_text("max_inflight_bytes = 1\nbogus = 1\n")
    with pytest.raises(SettingsError, match="bogus"):
        load_agent(tmp_path)


def test_migrates_the_reference_watermark_and_resumes_after_it(setup: tuple[Path, Path]) -> None:
    config, logs = setup
    (logs / "app.log").write_bytes(b"sent-by-reference\nnew\n")
    inode = (logs / "app.log").stat().st_ino
    (logs / ".app.app.log").write_text(f'{{"1":{{"rec":{{"1":{{"i64":{inode}}}}}}},"2":{{"i64":18}}}}')
    write_stream(config, "app", logs, reference_watermark=".app.app.log")
    agent = make_agent(config)
    turns(agent)
    assert [d[1] for d in FakeProducer.instances[0].delivered] == [b"new\n"]
    assert list(offsets(agent).values()) == [22]


def test_thrift_stream_moves_the_watermark_over_dropped_records(setup: tuple[Path, Path]) -> None:
    from singer._thrift import LogMessage, frame

    config, logs = setup
    write_stream(config, "app", logs, format="thrift", max_message_bytes=16)
    data = frame(LogMessage(b"k" * 100)) + frame(LogMessage(b"ok", key=b"key", timestamp_ns=42))
    (logs / "app.log").write_bytes(data)
    agent = make_agent(config)
    turns(agent)
    delivered = FakeProducer.instances[0].delivered
    assert [d[1] for d in delivered] == [b"ok"]
    assert dict(delivered[0][3])["_ots"] == struct.pack(">q", 42)
    assert list(offsets(agent).values()) == [len(data)]
    key = next(iter(agent.streams))
    agent.run_once(1000.0)  # a refresh turn publishes the reader's counters
    assert agent.metrics.skipped.labels(key)._value.get() == 1


def test_heartbeat_status_and_metrics(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    config, logs = setup
    with (config / "singer.toml").open("a") as f:
        f.write(f'[heartbeat]\ntopic_uri = "{URI}-hb"\ninterval_s = 1\n')
    (logs / "app.log").write_bytes(b"a\nb\n")
    agent = make_agent(config)
    turns(agent)
    beats = [d for p in FakeProducer.instances for d in p.delivered if d[0].endswith("-hb")]
    assert beats and json.loads(beats[0][1])["host"] == agent.settings.host
    text = generate_latest(agent.metrics.registry).decode()
    for name in ("singer_lag_bytes", "singer_records_sent_total", "singer_heartbeats_total", "singer_stuck_streams"):
        assert name in text
    from singer.cli import main

    capsys.readouterr()
    assert main(["status", "--config", str(config), "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert row["lag_bytes"] == 0 and row["watermark"]["offset"] == 4
    (logs / "app.log").write_bytes(b"a\nb\nmore\n")
    assert main(["status", "--config", str(config)]) == 0
    assert "lag 5 B" in capsys.readouterr().out


def test_drain_waits_for_batches_in_flight_and_saves_their_watermark(setup: tuple[Path, Path]) -> None:
    config, logs = setup
    (logs / "app.log").write_bytes(b"a\nb\n")
    agent = make_agent(config)
    agent.reload()
    producer = FakeProducer.instances[0]
    producer.hold = True
    turns(agent, 3)
    assert offsets(agent) == {}
    producer.hold = False
    assert agent.drain() == 0
    store = WatermarkStore(agent.settings.state_dir or Path())
    assert [m.offset for m in (store.load(k) for k in agent.streams) if m] == [4]


def test_single_partitioner_is_one_partition_per_topic_across_streams(setup: tuple[Path, Path]) -> None:
    config, logs = setup
    for name in ("a", "b", "c"):
        (logs / name).mkdir()
        (logs / name / "app.log").write_bytes(b"x\n" * 20)
    write_stream(config, "app", logs / "*", partitioner={"type": "single"})
    agent = make_agent(config)
    turns(agent)
    assert len(agent.streams) == 3
    assert len({d[2] for d in FakeProducer.instances[0].delivered}) == 1
    assert len(FakeProducer.instances[0].delivered) == 60


def test_a_missing_config_directory_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from singer.cli import main

    assert main(["status", "--config", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err and not (tmp_path / "nope").exists()
    with pytest.raises(SettingsError, match="not a directory"):
        load_agent(tmp_path / "nope")  # what singer run reports before anything starts
    assert not (tmp_path / "nope").exists()


def test_watermark_is_saved_in_the_turn_after_its_batch_is_acknowledged(setup: tuple[Path, Path]) -> None:
    """A crash resends only the batches in flight: none acknowledged in an earlier turn."""
    config, logs = setup
    agent = make_agent(config)
    agent.reload()
    producer = FakeProducer.instances[0]
    now, written = 100.0, b""
    for i in range(10):
        written += b"line %d\n" % i
        (logs / "app.log").write_bytes(written)
        agent.run_once(now)  # reads, sends, and the producer acknowledges at the end of the turn
        acknowledged = sum(len(d[1]) for d in producer.delivered)
        now += 0.01
        agent.run_once(now)  # settles
        assert list(offsets(agent).values()) == [acknowledged]
        now += 0.01


def test_no_rewind_while_the_producer_still_holds_records_of_the_stream(setup: tuple[Path, Path]) -> None:
    """Re-sending records the producer still holds would deliver them twice, outside the in-flight cap."""
    config, logs = setup
    write_stream(config, "app", logs, batch_records=1, retry_backoff_s=0.01, max_inflight_batches=2)
    (logs / "app.log").write_bytes(b"a\nb\n")
    agent = make_agent(config)
    agent.reload()
    producer = FakeProducer.instances[0]
    producer.hold = True
    agent.run_once(100.0)
    (_, _, (_, headers), report_a), held_b = producer.queued
    producer.queued = [held_b]
    report_a("broker down", FakeMessage(headers))  # the first batch fails; the second is still in the producer
    key = next(iter(agent.streams))
    turns(agent, 20, start=100.1)
    assert agent.metrics.batch_retries.labels(key)._value.get() == 0
    assert producer.queued == [held_b]  # nothing re-sent yet
    producer.hold = False
    turns(agent, 20, start=102.0)
    assert agent.metrics.batch_retries.labels(key)._value.get() == 1
    assert [d[1] for d in producer.delivered] == [b"b\n", b"a\n", b"b\n"]
    assert list(offsets(agent).values()) == [4]


def test_the_next_batch_waits_for_the_watermark_of_the_one_in_flight(setup: tuple[Path, Path]) -> None:
    """By default one batch is un-watermarked at a time, so a crash resends at most one."""
    config, logs = setup
    write_stream(config, "app", logs, batch_records=2)
    (logs / "app.log").write_bytes(b"".join(b"%d\n" % i for i in range(7)))
    agent = make_agent(config)
    agent.reload()
    producer = FakeProducer.instances[0]
    producer.hold = True
    store = WatermarkStore(config / "state")
    key = next(iter(agent.streams))
    now = 100.0
    for sent in (2, 4, 6, 7):
        for _ in range(3):  # the window stays shut while the batch is unacknowledged
            agent.run_once(now)
            now += 0.01
        assert len(producer.queued) == (2 if sent < 7 else 1)
        saved = store.load(key)
        assert (saved.offset if saved else 0) == sum(len(b"%d\n" % i) for i in range(sent - len(producer.queued)))
        producer.hold = False
        producer.poll()
        producer.hold = True
        agent.run_once(now)  # settles and writes the watermark, then sends the next batch
        now += 0.01
    assert [d[1] for d in producer.delivered] == [b"%d\n" % i for i in range(7)]
    assert list(offsets(agent).values()) == [14]


def test_a_wider_window_pipelines_batches(setup: tuple[Path, Path]) -> None:
    config, logs = setup
    write_stream(config, "app", logs, batch_records=2, max_inflight_batches=3)
    (logs / "app.log").write_bytes(b"".join(b"%d\n" % i for i in range(10)))
    agent = make_agent(config)
    agent.reload()
    producer = FakeProducer.instances[0]
    producer.hold = True
    turns(agent, 5)
    assert [v for _, v, _, _ in producer.queued] == [b"%d\n" % i for i in range(6)]
    assert agent.streams[next(iter(agent.streams))].inflight_bytes > 0  # the records waiting are counted too


def test_the_producer_keeps_no_copies_of_records_singer_retries_itself() -> None:
    agent = AgentSettings.load({"producer": {"psc.producer.linger.ms": "5"}})
    settings = StreamSettings.load({"dir": "/logs", "pattern": "app.log", "topic_uri": URI, "batch_timeout_s": 10})
    config = settings.producer_config(agent)
    assert config["psc.auto.resolution.enabled"] == "false"
    assert config["psc.producer.delivery.timeout.ms"] == "10000"
    assert config["psc.producer.linger.ms"] == "5"
    assert (
        settings.model_copy(update={"producer": {"psc.producer.delivery.timeout.ms": "5000"}}).producer_config(agent)[
            "psc.producer.delivery.timeout.ms"
        ]
        == "5000"
    )


def test_a_producer_that_fails_fatally_is_replaced(setup: tuple[Path, Path]) -> None:
    config, logs = setup
    (logs / "app.log").write_bytes(b"a\n")
    agent = make_agent(config)
    agent.reload()
    broken = FakeProducer.instances[0]

    def fatal(timeout: float = 0) -> int:
        raise RuntimeError("fatal: producer fenced")

    broken.poll = fatal  # type: ignore[method-assign]
    broken.purge = lambda: None  # type: ignore[attr-defined]
    turns(agent, 5)
    assert len(FakeProducer.instances) == 2 and getattr(broken, "closed", False)
