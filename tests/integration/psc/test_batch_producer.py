"""``psc.BatchProducer`` against a real broker: records and headers as queued, deliveries counted on the tally,
a failed record reported with its own headers, a full queue stopping the batch where it filled, and slices
sent without a copy kept alive by their tally until every report."""

from __future__ import annotations

import gc
import os
import struct
import sys
import time
from array import array
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

import psc
from tests.integration.psc.support import read_from_start, set_max_message_bytes
from tests.services import Services

TIMEOUT = 30.0

pytestmark = pytest.mark.skipif(not psc.BatchProducer.available(), reason="psc._rdkafka is not built here")


class Tally(psc.DeliveryTally):
    __slots__ = ("failures",)

    def __init__(self, pending: int) -> None:
        super().__init__(pending)
        self.failures: list[tuple[Any, Any]] = []

    def failed(self, err: Any, msg: Any) -> None:
        self.failures.append((err, msg))


def config(services: Services, **extra: str) -> dict[str, str]:
    return {"psc.project": "it-batch-producer", "psc.discovery.file": services.psc_discovery_file, **extra}


def settle(producer: psc.BatchProducer, tally: psc.DeliveryTally) -> None:
    deadline = time.monotonic() + TIMEOUT
    while tally.pending > 0 and time.monotonic() < deadline:
        producer.poll(0.1)


def test_a_batch_arrives_with_its_headers_and_is_counted(services: Services, new_topic: Callable[..., str]) -> None:
    topic_uri = services.cluster_prefix + new_topic(partitions=3)
    values = [f"line {i}".encode() for i in range(1000)]
    ends = [(i + 1) * 7 for i in range(1000)]
    tally = Tally(len(values))
    producer = psc.BatchProducer(config(services, **{"psc.producer.compression.type": "lz4"}), topic_uri)
    try:
        queued, error = producer.produce_batch(
            topic_uri,
            values,
            tally,
            partitions=[i % 3 for i in range(1000)],
            keys=[None if i % 2 else b"k%d" % i for i in range(1000)],
            headers=[("host", b"h1"), ("_ots", struct.pack(">q", 123))],
            int_headers=[("_mid", struct.pack(">Q", 42), ends), ("n", b"", list(range(1000)))],
        )
        assert (queued, error) == (1000, None)
        assert producer.flush(TIMEOUT) == 0
    finally:
        producer.close(5)
    assert (tally.pending, tally.acked, tally.failures) == (0, 1000, [])
    read = read_from_start(services, topic_uri, 1000)
    assert len(read) == 1000
    for message in read:
        headers = {name: value or b"" for name, value in message.headers() or []}
        (n,) = struct.unpack(">Q", headers["n"])
        assert message.value() == values[n]
        assert message.partition() == n % 3
        assert message.key() == (None if n % 2 else b"k%d" % n)
        assert struct.unpack(">QQ", headers["_mid"]) == (42, ends[n])
        assert headers["host"] == b"h1" and headers["_ots"] == struct.pack(">q", 123)


def test_a_failed_record_is_reported_with_its_own_headers(
    services: Services, kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(partitions=2)
    set_max_message_bytes(AdminClient({"bootstrap.servers": kafka_bootstrap}), topic, 300)
    topic_uri = services.cluster_prefix + topic
    big = os.urandom(2000)  # incompressible: over the limit whatever the codec
    values = [b"small"] * 5 + [big] + [b"small"] * 4
    tally = Tally(len(values))
    producer = psc.BatchProducer(config(services), topic_uri)
    try:
        queued, error = producer.produce_batch(
            topic_uri,
            values,
            tally,
            partitions=[1 if len(v) > 100 else 0 for v in values],  # alone in its partition's request
            int_headers=[("_mid", struct.pack(">Q", 7), [100 + i for i in range(10)])],
        )
        assert (queued, error) == (10, None)
        settle(producer, tally)
    finally:
        producer.close(5)
    assert (tally.pending, tally.acked, len(tally.failures)) == (0, 9, 1)
    err, record = tally.failures[0]
    assert isinstance(err, KafkaError) and err.code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert record.topic() == topic_uri and record.partition() == 1 and record.value() == big
    assert struct.unpack(">QQ", dict(record.headers())["_mid"]) == (7, 105)


def test_a_full_queue_stops_the_batch_where_it_filled(services: Services, new_topic: Callable[..., str]) -> None:
    topic_uri = services.cluster_prefix + new_topic(partitions=1)
    tally = Tally(100)
    producer = psc.BatchProducer(config(services, **{"psc.producer.queue.buffering.max.messages": "10"}), topic_uri)
    try:
        queued, error = producer.produce_batch(topic_uri, [b"v%d" % i for i in range(100)], tally)
        assert queued == 10
        assert error is not None and error.code() == KafkaError._QUEUE_FULL
        tally.pending -= 100 - queued  # the rest is never reported
        assert producer.flush(TIMEOUT) == 0
        rest, error = producer.produce_batch(topic_uri, [b"v%d" % i for i in range(10, 20)], tally)
        tally.pending += rest
        assert (rest, error) == (10, None) and producer.flush(TIMEOUT) == 0
    finally:
        producer.close(5)
    producer.close()  # idempotent
    assert len(producer) == 0
    with pytest.raises(RuntimeError, match="closed"):
        producer.produce_batch(topic_uri, [b"late"], Tally(1))
    assert (tally.pending, tally.acked, tally.failures) == (0, 20, [])
    values = sorted(m.value() for m in read_from_start(services, topic_uri, 20))
    assert values == sorted(b"v%d" % i for i in range(20))


def test_bad_input_names_what_was_wrong(services: Services, new_topic: Callable[..., str]) -> None:
    topic_uri = services.cluster_prefix + new_topic(partitions=1)
    producer = psc.BatchProducer(config(services), topic_uri)
    try:
        with pytest.raises(TypeError, match="DeliveryTally"):
            producer.produce_batch(topic_uri, [b"v"], lambda e, m: None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="partitions: 1 items for 2 values"):
            producer.produce_batch(topic_uri, [b"a", b"b"], Tally(2), partitions=[0])
        with pytest.raises(TypeError, match=r"values\[1\] is str"):
            producer.produce_batch(topic_uri, [b"a", "b"], Tally(2))  # type: ignore[list-item]
        with pytest.raises(TypeError, match=r"keys\[0\] is str"):
            producer.produce_batch(topic_uri, [b"a"], Tally(1), keys=["k"])  # type: ignore[list-item]
        tally = Tally(2)
        queued, error = producer.produce_batch(topic_uri, [b"a", b"b"], tally, int_headers=[("n", b"", [1, 1 << 64])])
        assert queued == 1 and error is not None and "n[1] is out of range" in error.str()
        tally.pending -= 1
        assert producer.flush(TIMEOUT) == 0 and (tally.pending, tally.acked) == (0, 1)
        with pytest.raises(psc.ProducerError, match="not a topic of"):
            producer.produce_batch(services.cluster_prefix.replace("cluster01", "other") + "t", [b"a"], Tally(1))
        assert len(producer) == 0
    finally:
        producer.close(5)


def test_purged_records_are_reported_and_a_hook_cannot_serve_again(
    services: Services, new_topic: Callable[..., str]
) -> None:
    topic_uri = services.cluster_prefix + new_topic(partitions=1)
    producer = psc.BatchProducer(config(services, **{"psc.producer.batch.duration.ms": "5000"}), topic_uri)

    class Reentrant(Tally):
        def failed(self, err: Any, msg: Any) -> None:
            super().failed(err, msg)
            producer.poll(0)  # a hook may not serve reports itself

    try:
        purged = Tally(3)
        assert producer.produce_batch(topic_uri, [b"a", b"b", b"c"], purged) == (3, None)
        producer.purge(in_queue=True, in_flight=False, blocking=True)  # lingering: all three still queued
        producer.poll(0)
        assert (purged.pending, purged.acked) == (0, 0)
        assert [err.code() for err, _ in purged.failures] == [KafkaError._PURGE_QUEUE] * 3
        assert sorted(msg.value() for _, msg in purged.failures) == [b"a", b"b", b"c"]

        reentrant = Reentrant(1)
        assert producer.produce_batch(topic_uri, [b"d"], reentrant) == (1, None)
        producer.purge(in_queue=True, in_flight=False, blocking=True)
        with pytest.raises(RuntimeError, match="already serving"):
            producer.poll(0)
        assert reentrant.pending == 0 and len(reentrant.failures) == 1
    finally:
        producer.close(5)


def _slices(content: bytes) -> tuple[Any, Any]:
    """The int64 columns of ``content``'s lines for produce_slices: where each ends, and the running total."""
    ends, at = [], 0
    for line in content.splitlines(keepends=True):
        at += len(line)
        ends.append(at)
    return array("q", ends), array("q", ends)


def test_slices_sent_without_a_copy_hold_their_buffer_until_reported(
    services: Services, new_topic: Callable[..., str]
) -> None:
    topic_uri = services.cluster_prefix + new_topic(partitions=1)
    producer = psc.BatchProducer(config(services, **{"psc.producer.batch.duration.ms": "5000"}), topic_uri)
    buffer = bytearray(b"one\ntwo\nsix\n")
    ends, sizes = _slices(bytes(buffer))
    tally = Tally(3)
    references = sys.getrefcount(buffer)
    try:
        assert producer.produce_slices(topic_uri, memoryview(buffer), 0, ends, sizes, 0, tally, copy=False) == (3, None)
        assert sys.getrefcount(buffer) == references + 1  # the tally's view
        with pytest.raises(BufferError):
            buffer.extend(b"more")  # librdkafka points into it: it cannot move
        buffer[:3] = b"ONE"  # lingering: what is sent is the buffer as it is then, not a copy made when queued
        producer.flush(TIMEOUT)
        assert (tally.pending, tally.acked) == (0, 3)
    finally:
        producer.close(5)
    del tally  # the last reference to the tally: its view of the buffer goes with it
    assert sys.getrefcount(buffer) == references
    buffer.extend(b"more")
    assert [m.value() for m in read_from_start(services, topic_uri, 3)] == [b"ONE\n", b"two\n", b"six\n"]


def test_purged_slices_sent_without_a_copy_are_reported_with_their_values(
    services: Services, new_topic: Callable[..., str]
) -> None:
    topic_uri = services.cluster_prefix + new_topic(partitions=1)
    producer = psc.BatchProducer(config(services, **{"psc.producer.batch.duration.ms": "5000"}), topic_uri)
    content = b"".join(b"line %d\n" % i for i in range(100))
    ends, sizes = _slices(content)
    purged, closed = Tally(100), Tally(100)
    try:
        # Nothing but the tallies refers to the buffers once queued: the reports read them afterwards.
        assert producer.produce_slices(topic_uri, bytearray(content), 0, ends, sizes, 0, purged, copy=False)[0] == 100
        gc.collect()
        producer.purge(in_queue=True, in_flight=True, blocking=True)
        producer.poll(0)
        assert (purged.pending, purged.acked) == (0, 0)
        assert sorted(msg.value() for _, msg in purged.failures) == sorted(content.splitlines(keepends=True))
        assert producer.produce_slices(topic_uri, bytearray(content), 0, ends, sizes, 0, closed, copy=False)[0] == 100
    finally:
        producer.close(0)  # no time to send: the records still queued are reported purged
    values = [msg.value() for _, msg in closed.failures]  # close() flushes for 0 s: a few may have gone
    assert closed.pending == 0 and closed.acked + len(values) == 100
    assert set(values) <= set(content.splitlines(keepends=True))
