"""The writer's batch path on the real broker: the headers consumers deduplicate on, a record the broker
refuses named by its offset, and records a full producer queue does not take failed with theirs; the same
for text lines sent as slices of their read buffer."""

from __future__ import annotations

import os
import struct
import time
import uuid
from array import array
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

import psc
from singer._accel import split
from singer._partitioners import Fixed, RoundRobin
from singer._records import Lines, Record
from singer._watermark import Watermark
from singer._writer import Batch, Writer
from tests.integration.psc.support import read_from_start, set_max_message_bytes
from tests.services import Services

pytestmark = pytest.mark.skipif(not psc.BatchProducer.available(), reason="psc._rdkafka is not built here")

INODE = 4242


def _topic(services: Services, partitions: int) -> str:
    name = f"singer-batches-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": services.kafka_bootstrap_servers})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)
    return name


def _writer(services: Services, **extra: str) -> Writer:
    writer = Writer({"psc.project": "singer-batches-test", "psc.discovery.file": services.psc_discovery_file, **extra})
    assert writer.batches
    return writer


def _records(values: list[bytes]) -> list[Record]:
    out, end = [], 0
    for value in values:
        end += len(value)
        out.append(Record(value, end))
    return out


def _content_id(upto: int) -> bytes:
    return struct.pack(">Q", min(upto, 64))  # a different id for records ending in the first 64 bytes


def _settle(writer: Writer, batch: Batch) -> None:
    deadline = time.monotonic() + 30
    while not batch.done and time.monotonic() < deadline:
        writer.wait(0.05)


def _batch(count: int, nbytes: int) -> Batch:
    mark = Watermark(1, INODE, nbytes, "", 0, "/x")
    return Batch(mark, count, nbytes, time.monotonic() + 60)


def test_batch_records_carry_the_headers_of_the_per_record_path(services: Services) -> None:
    topic_uri = services.cluster_prefix + _topic(services, 3)
    records = _records([b"a\n", b"bb\n"] + [b"line %d\n" % i for i in range(500)])
    batch = _batch(len(records), sum(len(r.value) for r in records))
    writer = _writer(services)
    try:
        writer.send(topic_uri, records, batch, RoundRobin(), INODE, b"host-1", _content_id)
        _settle(writer, batch)
    finally:
        writer.close(10)
    assert batch.ok and batch.acked == len(records)
    by_end = {r.next_offset: r for r in records}
    read = read_from_start(services, topic_uri, len(records))
    assert len(read) == len(records)
    for message in read:
        headers = {name: value or b"" for name, value in message.headers() or []}
        inode, end = struct.unpack(">QQ", headers["_mid"])
        assert inode == INODE and message.value() == by_end[end].value
        assert headers["_fid"] == _content_id(end) and headers["host"] == b"host-1"
        assert abs(struct.unpack(">q", headers["_ots"])[0] - time.time_ns()) < 120e9


def test_a_refused_record_is_named_by_its_offset(services: Services) -> None:
    topic = _topic(services, 1)
    set_max_message_bytes(AdminClient({"bootstrap.servers": services.kafka_bootstrap_servers}), topic, 1000)
    topic_uri = services.cluster_prefix + topic
    big = os.urandom(5000)
    records = _records([b"one\n", b"two\n", big, b"four\n"])
    batch = _batch(len(records), sum(len(r.value) for r in records))
    writer = _writer(services, **{"psc.producer.batch.num.messages": "1"})  # one record per request
    try:
        writer.send(topic_uri, records, batch, Fixed(1), INODE, b"h", _content_id)
        _settle(writer, batch)
    finally:
        writer.close(10)
    assert batch.done and not batch.ok and batch.acked == 3
    ((error, offset),) = batch.failures
    assert offset == records[2].next_offset and "too large" in error.lower()


def test_records_a_full_queue_refuses_fail_with_their_offsets(services: Services) -> None:
    topic_uri = services.cluster_prefix + _topic(services, 1)
    records = _records([b"r%d\n" % i for i in range(50)])
    batch = _batch(len(records), sum(len(r.value) for r in records))
    # Queued records linger for 5 s, so the queue stays full until the writer's wait for room gives up (1 s):
    # 20 go, 30 fail, each named by its offset. Waiting for the reports then sends the 20 at once.
    writer = _writer(
        services, **{"psc.producer.queue.buffering.max.messages": "20", "psc.producer.batch.duration.ms": "5000"}
    )
    queued: list[Any] = []
    try:
        writer.send(topic_uri, records, batch, Fixed(1), INODE, b"h", _content_id)
        queued.append(len(records) - len(batch.failures))
        _settle(writer, batch)
    finally:
        writer.close(10)
    assert batch.done and not batch.ok
    assert [offset for _, offset in batch.failures] == [r.next_offset for r in records[queued[0] :]]
    assert all(error.startswith("not queued:") and "full" in error.lower() for error, _ in batch.failures)
    assert batch.acked == queued[0] == 20


def _lines(content: bytes, limit: int = 1000) -> Lines:
    """``content`` read from the start of a file by the text reader's splitter: columns over one buffer."""
    buffer = bytearray(content)
    _, ends, sizes, _, _ = split(buffer, 0, True, limit, 0)
    return Lines(buffer, 0, memoryview(ends).cast("q"), memoryview(sizes).cast("q"), 0)


def test_lines_go_as_slices_of_their_buffer_with_the_same_headers(services: Services) -> None:
    topic_uri = services.cluster_prefix + _topic(services, 3)
    # The first lines end in the file's first 64 bytes (a content id of their own), one is cut to the limit.
    lines = _lines(b"a\nbb\n" + b"".join(b"line %d\n" % i for i in range(500)) + b"z" * 3000 + b"\nlast\n", 1000)
    records = list(lines[1:])  # a slice, as the stream cuts batches
    batch = _batch(len(records), sum(len(r.value) for r in records))
    writer = _writer(services)
    try:
        writer.send(topic_uri, lines[1:], batch, RoundRobin(), INODE, b"host-1", _content_id)
        _settle(writer, batch)
    finally:
        writer.close(10)
    assert batch.ok and batch.acked == len(records)
    by_end = {r.next_offset: r for r in records}
    read = read_from_start(services, topic_uri, len(records))
    assert len(read) == len(records) and {m.partition() for m in read} == {0, 1, 2}
    assert b"z" * 1000 + b"\n" in {m.value() for m in read}  # cut to the limit, its newline kept
    # One read time for the whole batch, the lines sent as records first included: it names the batch.
    assert len({dict(m.headers() or [])["_ots"] for m in read}) == 1
    for message in read:
        headers = {name: value or b"" for name, value in message.headers() or []}
        inode, end = struct.unpack(">QQ", headers["_mid"])
        assert inode == INODE and message.value() == by_end.pop(end).value
        assert headers["_fid"] == _content_id(end) and headers["host"] == b"host-1"
        assert abs(struct.unpack(">q", headers["_ots"])[0] - time.time_ns()) < 120e9
    assert not by_end


def test_lines_a_full_queue_refuses_fail_with_their_offsets(services: Services) -> None:
    topic_uri = services.cluster_prefix + _topic(services, 1)
    lines = _lines(b"x" * 100 + b"\n" + b"".join(b"r%d\n" % i for i in range(50)))[1:]  # past the first 64 bytes
    batch = _batch(len(lines), lines.nbytes)
    writer = _writer(
        services, **{"psc.producer.queue.buffering.max.messages": "20", "psc.producer.batch.duration.ms": "5000"}
    )
    try:
        writer.send(topic_uri, lines, batch, Fixed(1), INODE, b"h", _content_id)
        queued = len(lines) - len(batch.failures)
        _settle(writer, batch)
    finally:
        writer.close(10)
    assert batch.done and not batch.ok and queued == batch.acked == 20
    assert [offset for _, offset in batch.failures] == [r.next_offset for r in list(lines)[20:]]
    assert all(error.startswith("not queued:") and "full" in error.lower() for error, _ in batch.failures)


def test_slices_outside_their_buffer_are_refused_with_nothing_queued(services: Services) -> None:
    topic_uri = services.cluster_prefix + _topic(services, 1)
    producer = psc.BatchProducer({"psc.discovery.file": services.psc_discovery_file}, topic_uri)
    ends, sizes = array("q", [4, 9]), array("q", [4, 99])
    tally = psc.DeliveryTally(2)
    try:
        with pytest.raises(ValueError, match=r"record 1 .* not inside"):
            producer.produce_slices(topic_uri, b"one\ntwo\n", 0, ends, sizes, 0, tally)
        with pytest.raises(TypeError, match="int64"):
            producer.produce_slices(topic_uri, b"one\n", 0, b"\x04", array("i", [4]), 0, tally)
        assert len(producer) == 0
        queued, error = producer.produce_slices(
            topic_uri, b"one\ntwo\n", 0, array("q", [4, 8]), array("q", [3, 6]), 0, tally,
            end_header=("_end", b"", 100),
        )  # fmt: skip
        assert (queued, error) == (2, None)
        producer.flush(30)
        assert tally.pending == 0 and tally.acked == 2
    finally:
        producer.close(10)
    read = read_from_start(services, topic_uri, 2)
    assert [(m.value(), dict(m.headers() or [])["_end"]) for m in read] == [
        (b"one", struct.pack(">q", 104)),
        (b"two", struct.pack(">q", 108)),
    ]
