from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import psc
from memq import CorruptObjectError
from memq._consumer import Consumer, ConsumerRecord, pack_offset, unpack_offset
from memq._format import Compression, Notification, Record, build_object, encode_message
from memq.storage import FileStorage, S3Storage

URI = "plaintext:/rn:kafka:dev:local::c1:memq-notify"


@dataclass
class FakeMessage:
    uri: str
    part: int
    off: int
    raw: bytes

    def topic(self) -> str:
        return self.uri

    def partition(self) -> int:
        return self.part

    def offset(self) -> int:
        return self.off

    def value(self) -> bytes:
        return self.raw

    def error(self) -> None:
        return None


@dataclass
class FakeNotifications:
    """A notification topic in memory, with a consumer group's committed offsets and metadata."""

    partitions: dict[int, list[bytes]] = field(default_factory=lambda: {0: []})
    committed_offsets: dict[int, psc.TopicUriPartition] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)
    subscribed: bool = False

    def subscribe(self, topic_uris: Sequence[str], on_assign: Any = None, on_revoke: Any = None) -> None:
        assert list(topic_uris) == [URI]
        self.subscribed = True
        self.positions = {
            p: self.committed_offsets[p].offset if p in self.committed_offsets else 0 for p in self.partitions
        }
        if on_assign:
            on_assign(self, [psc.TopicUriPartition(URI, p) for p in self.partitions])

    def poll(self, timeout: float | None = None) -> FakeMessage | None:
        for partition, notes in self.partitions.items():
            offset = self.positions[partition]
            if offset < len(notes):
                self.positions[partition] = offset + 1
                return FakeMessage(URI, partition, offset, notes[offset])
        return None

    def commit(self, *, offsets: Sequence[psc.TopicUriPartition], asynchronous: bool = True) -> None:
        for tp in offsets:
            self.committed_offsets[tp.partition] = tp

    def committed(
        self, partitions: Sequence[psc.TopicUriPartition], timeout: float = -1
    ) -> list[psc.TopicUriPartition]:
        return [self.committed_offsets.get(tp.partition, psc.TopicUriPartition(URI, tp.partition)) for tp in partitions]

    def seek(self, partition: psc.TopicUriPartition) -> None:
        notes = self.partitions[partition.partition]
        offset = partition.offset
        self.positions[partition.partition] = {psc.OFFSET_BEGINNING: 0, psc.OFFSET_END: len(notes)}.get(offset, offset)

    def assignment(self) -> list[psc.TopicUriPartition]:
        return [psc.TopicUriPartition(URI, p) for p in self.partitions] if self.subscribed else []

    def close(self) -> None:
        pass


class SpyStorage(FileStorage):
    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.reads: list[tuple[str, int, int]] = []

    def read(self, key: str, start: int, length: int) -> bytes:
        self.reads.append((key, start, length))
        return super().read(key, start, length)


def _records(tag: str, count: int) -> list[Record]:
    return [
        Record(f"{tag}-{i}".encode(), key=tag.encode(), headers=(("h", b"v"),), timestamp_ms=i) for i in range(count)
    ]


def _store(storage: FileStorage, name: str, messages: list[list[Record]]) -> tuple[bytes, bytes]:
    """Write an object of `messages`; return (notification JSON, object bytes)."""
    encoded = [
        encode_message(records, compression=Compression.ZSTD, producer_epoch=1, request_id=i, address=b"\x7f\0\0\1")
        for i, records in enumerate(messages)
    ]
    obj = build_object(encoded)
    key = f"00/topic/{name}"
    storage.put(key, [obj])
    header_size = 8 + 12 * len(encoded)
    notification = storage.notification(
        key,
        topic="topic",
        header_size=header_size,
        messages_size=len(obj) - header_size,
        message_count=len(encoded),
        attempts=0,
    )
    return notification.to_json().encode(), obj


def _consumer(topic: FakeNotifications, spy: SpyStorage | None = None, **options: Any) -> Consumer:
    consumer = Consumer(notification_consumer=topic, **options)
    if spy is not None:
        consumer._storages["file:"] = spy
    consumer.subscribe([URI])
    return consumer


def _drain(consumer: Consumer) -> list[ConsumerRecord]:
    out = []
    while (record := consumer.poll(0)) is not None:
        out.append(record)
    return out


def test_offsets_pack_as_psc_does() -> None:
    assert pack_offset(3, 5) == 3 * 2**19 + 5
    assert unpack_offset(pack_offset(123456789, 524287)) == (123456789, 524287)
    with pytest.raises(ValueError):
        pack_offset(1, 2**19)


def test_reads_every_record_in_order_with_packed_offsets(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    first, _ = _store(storage, "a", [_records("a0", 3), _records("a1", 2)])
    second, _ = _store(storage, "b", [_records("b0", 1)])
    topic = FakeNotifications({0: [first, second]})
    records = _drain(_consumer(topic))
    assert [r.value for r in records] == [b"a0-0", b"a0-1", b"a0-2", b"a1-0", b"a1-1", b"b0-0"]
    assert [unpack_offset(r.offset) for r in records] == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0)]
    assert [r.message_index for r in records] == [0, 0, 0, 1, 1, 0]
    assert [r.last_in_object for r in records] == [False, False, False, False, True, True]
    assert records[0].key == b"a0" and records[0].headers == (("h", b"v"),) and records[0].topic == "topic"
    assert records[0].object_location.startswith("file://")


def test_objects_are_read_in_ranges_index_first(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    note, obj = _store(storage, "big", [_records(f"m{i}", 50) for i in range(6)])
    spy = SpyStorage("/")
    message_size = (len(obj) - (8 + 12 * 6)) // 6
    records = _drain(_consumer(FakeNotifications({0: [note]}), spy, fetch_bytes=2 * message_size + 10))
    assert len(records) == 300
    assert spy.reads[0] == (str(tmp_path / "00/topic/big").lstrip("/"), 0, 8 + 12 * 6)
    assert len(spy.reads) == 1 + 3  # the index, then three windows of two messages
    assert max(length for _, _, length in spy.reads) < len(obj) / 2


def test_commit_mid_object_resumes_there_without_rereading(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    note, _ = _store(storage, "o", [_records("m0", 4), _records("m1", 4), _records("m2", 4)])
    later, _ = _store(storage, "p", [_records("n0", 1)])
    topic = FakeNotifications({0: [note, later]})
    consumer = _consumer(topic)
    seen = [consumer.poll(0) for _ in range(6)]
    assert seen[-1] is not None and seen[-1].value == b"m1-1"
    consumer.commit()
    assert topic.committed_offsets[0].offset == 0 and topic.committed_offsets[0].metadata == "memq:6"
    consumer.close()

    spy = SpyStorage("/")
    restarted = _consumer(topic, spy)
    rest = _drain(restarted)
    assert [r.value for r in rest] == [b"m1-2", b"m1-3", b"m2-0", b"m2-1", b"m2-2", b"m2-3", b"n0-0"]
    assert rest[0].record_index == 6
    # the index, then only the headers of the messages before the position; message 0's body is never read
    reads = [(start, length) for key, start, length in spy.reads if key.endswith("/o")]
    assert reads[0] == (0, 8 + 12 * 3)
    assert [length for _, length in reads[1:3]] == [64, 64]
    assert all(start > reads[1][0] for start, _ in reads[3:])
    restarted.commit(rest[-1])
    assert (topic.committed_offsets[0].offset, topic.committed_offsets[0].metadata) == (2, None)


def test_commit_of_a_record_and_position(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    note, _ = _store(storage, "o", [_records("m", 2)])
    topic = FakeNotifications({0: [note]})
    consumer = _consumer(topic)
    first = consumer.poll(0)
    assert first is not None
    consumer.commit(first)
    assert topic.committed_offsets[0].metadata == "memq:1"
    assert consumer.position() == {(URI, 0): pack_offset(0, 1)}
    consumer.poll(0)
    assert consumer.position() == {(URI, 0): pack_offset(1, 0)}


def test_seek_to_packed_offset_beginning_and_end(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    notes = [_store(storage, name, [_records(name, 3), _records(name + "'", 3)])[0] for name in "abc"]
    topic = FakeNotifications({0: notes})
    consumer = _consumer(topic)
    consumer.seek(URI, 0, pack_offset(1, 4))
    assert [r.value for r in _drain(consumer)][:3] == [b"b'-1", b"b'-2", b"c-0"]
    consumer.seek_to_beginning(URI, 0)
    assert len(_drain(consumer)) == 18
    consumer.seek_to_end(URI, 0)
    assert consumer.poll(0) is None


def test_corrupt_message_is_reported_by_key_and_offset_and_never_skipped(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    note, obj = _store(storage, "bad", [_records("m0", 2), _records("m1", 2), _records("m2", 2)])
    header_size = 8 + 12 * 3
    second = int.from_bytes(obj[8 + 12 + 4 : 8 + 12 + 8], "big")
    assert second > header_size
    broken = bytearray(obj)
    broken[second + 45] ^= 0xFF  # a byte of message 1's body
    storage.put("00/topic/bad", [bytes(broken)])
    consumer = _consumer(FakeNotifications({0: [note]}))
    assert [r.value for r in (consumer.poll(0), consumer.poll(0))] == [b"m0-0", b"m0-1"]  # type: ignore[union-attr]
    for _ in range(2):  # the same error again: nothing moves on by itself
        with pytest.raises(CorruptObjectError) as caught:
            consumer.poll(0)
        error = caught.value
        assert error.key.endswith("00/topic/bad")
        assert error.offset == second
        assert "CRC32 mismatch" in str(error) and f"byte offset {second}" in str(error)
    assert error.resume_offset == pack_offset(0, 4)
    consumer.seek(URI, 0, error.resume_offset)
    assert [r.value for r in _drain(consumer)] == [b"m2-0", b"m2-1"]


def test_truncated_object_names_the_offset(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    note, obj = _store(storage, "short", [_records("m0", 2), _records("m1", 2)])
    storage.put("00/topic/short", [obj[:-10]])
    consumer = _consumer(FakeNotifications({0: [note]}))
    assert [r.value for r in (consumer.poll(0), consumer.poll(0))] == [b"m0-0", b"m0-1"]  # type: ignore[union-attr]
    with pytest.raises(CorruptObjectError) as caught:
        consumer.poll(0)
    assert caught.value.offset == len(obj) - 10
    assert "ends early" in caught.value.reason


@dataclass
class FakeProducer:
    sent: list[tuple[str, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)

    def produce(self, uri: str, value: bytes, headers: list[tuple[str, bytes]], on_delivery: Any) -> None:
        self.sent.append((uri, value, headers))
        on_delivery(None, None)

    def flush(self, timeout: float) -> int:
        return 0


def test_missing_object_and_bad_notification_go_to_the_dead_letter_topic(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    gone, _ = _store(storage, "gone", [_records("x", 1)])
    (tmp_path / "00/topic/gone").unlink()
    fine, _ = _store(storage, "fine", [_records("y", 2)])
    dead = FakeProducer()
    topic = FakeNotifications({0: [gone, b"{not json", fine]})
    consumer = _consumer(topic, dead_letter_topic_uri="dlq-uri", dead_letter_producer=dead)
    assert [r.value for r in _drain(consumer)] == [b"y-0", b"y-1"]
    assert [(uri, value) for uri, value, _ in dead.sent] == [("dlq-uri", gone), ("dlq-uri", b"{not json")]
    headers = dict(dead.sent[0][2])
    assert headers["memq.error"] == b"object not found"
    assert headers["memq.object"].endswith(b"00/topic/gone")
    consumer.commit()
    assert topic.committed_offsets[0].offset == 3


def test_without_dead_letter_a_missing_object_raises(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    gone, _ = _store(storage, "gone", [_records("x", 1)])
    (tmp_path / "00/topic/gone").unlink()
    consumer = _consumer(FakeNotifications({0: [gone]}))
    with pytest.raises(CorruptObjectError, match="object not found") as caught:
        consumer.poll(0)
    assert caught.value.offset == -1 and caught.value.resume_offset == pack_offset(1, 0)


def test_dead_letter_skips_only_the_corrupt_message(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    note, obj = _store(storage, "bad", [_records("m0", 1), _records("m1", 2), _records("m2", 1)])
    second = int.from_bytes(obj[8 + 12 + 4 : 8 + 12 + 8], "big")
    broken = bytearray(obj)
    broken[second + 50] ^= 1
    storage.put("00/topic/bad", [bytes(broken)])
    dead = FakeProducer()
    records = _drain(_consumer(FakeNotifications({0: [note]}), dead_letter_topic_uri="dlq", dead_letter_producer=dead))
    assert [(r.value, r.record_index) for r in records] == [(b"m0-0", 0), (b"m2-0", 3)]
    assert dict(dead.sent[0][2])["memq.object.offset"] == str(second).encode()


def test_metrics_count_records_objects_bytes_and_corruption(tmp_path: Path) -> None:
    from memq._consumer import ConsumerMetrics
    from psc.common.metrics import MetricsRegistry

    storage = FileStorage(tmp_path)
    note, obj = _store(storage, "o", [_records("m", 3)])
    gone, _ = _store(storage, "gone", [_records("x", 1)])
    (tmp_path / "00/topic/gone").unlink()
    registry = MetricsRegistry("memq_consumer")
    consumer = _consumer(
        FakeNotifications({0: [note, gone]}),
        metrics=ConsumerMetrics(registry),
        dead_letter_topic_uri="dlq",
        dead_letter_producer=FakeProducer(),
    )
    assert consumer.assignment() == [(URI, 0)]
    assert len(_drain(consumer)) == 3

    def value(name: str, **labels: str) -> float | None:
        return registry.registry.get_sample_value(f"memq_consumer_{name}", labels)

    assert value("records_total") == 3
    assert value("objects_total") == 2
    assert value("fetched_bytes_total") == len(obj)
    assert value("fetch_seconds_count") == 2
    assert value("corrupt_total", action="dead_letter") == 1


def test_consume_returns_a_batch(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    notes = [_store(storage, name, [_records(name, 3)])[0] for name in "ab"]
    consumer = _consumer(FakeNotifications({0: notes}))
    assert [r.value for r in consumer.consume(4, 0)] == [b"a-0", b"a-1", b"a-2", b"b-0"]
    assert [r.value for r in consumer.consume(10, 0)] == [b"b-1", b"b-2"]
    assert consumer.consume(10, 0) == []


class ErrorMessage(FakeMessage):
    def __init__(self, error: psc.BackendError) -> None:
        super().__init__(URI, 0, -1, b"")
        self.failure = error

    def error(self) -> psc.BackendError:  # type: ignore[override]
        return self.failure


def test_notification_errors_fatal_are_raised_others_passed_over(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path)
    note, _ = _store(storage, "o", [_records("m", 1)])
    topic = FakeNotifications({0: [note]})
    consumer = _consumer(topic)
    queue = [ErrorMessage(psc.BackendError("broker down", name="_TRANSPORT"))]
    real_poll = topic.poll
    topic.poll = lambda timeout=None: queue.pop(0) if queue else real_poll(timeout)  # type: ignore[method-assign]
    assert [r.value for r in _drain(consumer)] == [b"m-0"]
    queue[:] = [ErrorMessage(psc.BackendError("fenced", name="_FATAL", fatal=True))]
    with pytest.raises(psc.BackendError, match="fenced"):
        consumer.poll(0)


def test_a_tombstone_notification_is_reported_not_skipped(tmp_path: Path) -> None:
    topic = FakeNotifications({0: [None]})  # type: ignore[list-item]
    with pytest.raises(CorruptObjectError, match="unusable notification"):
        _consumer(topic).poll(0)


def test_commit_explicit_packed_offsets_and_read_them_back(tmp_path: Path) -> None:
    topic = FakeNotifications({0: [], 1: []})
    consumer = _consumer(topic)
    assert consumer.committed([(URI, 0)]) == {(URI, 0): psc.OFFSET_INVALID}
    consumer.commit(offsets={(URI, 0): pack_offset(7, 3), (URI, 1): pack_offset(2, 0)})
    assert (topic.committed_offsets[0].offset, topic.committed_offsets[0].metadata) == (7, "memq:3")
    assert (topic.committed_offsets[1].offset, topic.committed_offsets[1].metadata) == (2, None)
    assert consumer.committed([(URI, 0), (URI, 1)]) == {(URI, 0): pack_offset(7, 3), (URI, 1): pack_offset(2, 0)}
    topic.committed_offsets[0].metadata = "memq:garbage"
    assert consumer.committed([(URI, 0)]) == {(URI, 0): pack_offset(7, 0)}
    with pytest.raises(ValueError, match="either"):
        consumer.commit(ConsumerRecord("t", URI, 0, 0, None, b"", (), 0, None, "x", 0, True), offsets={})


def test_records_made_as_another_tuple_type_keep_positions(tmp_path: Path) -> None:
    class Shaped(tuple):  # type: ignore[type-arg]  # ConsumerRecord's fields in order, as PSC's backend makes them
        __slots__ = ()

    storage = FileStorage(tmp_path)
    note, _ = _store(storage, "o", [_records("m0", 3), _records("m1", 2)])
    later, _ = _store(storage, "p", [_records("n0", 1)])
    topic = FakeNotifications({0: [note, later]})
    consumer = _consumer(topic, _record_type=Shaped)
    batch = consumer.consume(4, 0)
    assert [type(r).__name__ for r in batch] == ["Shaped"] * 4
    assert [ConsumerRecord(*r).value for r in batch] == [b"m0-0", b"m0-1", b"m0-2", b"m1-0"]
    consumer.commit()
    assert (topic.committed_offsets[0].offset, topic.committed_offsets[0].metadata) == (0, "memq:4")
    assert consumer.position() == {(URI, 0): pack_offset(0, 4)}
    consumer.consume(1, 0)  # the last record of the object: the position moves to the next notification
    assert consumer.position() == {(URI, 0): pack_offset(1, 0)}


def test_a_bucket_opened_ahead_serves_its_notifications() -> None:
    consumer = Consumer(notification_consumer=FakeNotifications({}), storage_options={"endpoint_url": "http://x:1"})
    consumer.open_bucket("b")
    opened = consumer._storages["b"]
    note = Notification(topic="t", header_size=20, messages_size=1, message_count=1, bucket="b", key="k")
    assert consumer._resolve(note) == (opened, "k")
    assert isinstance(opened, S3Storage) and opened.endpoint_url == "http://x:1"
