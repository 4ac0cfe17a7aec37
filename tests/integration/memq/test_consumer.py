"""memq.Consumer against real Kafka (notifications through psc) and S3 (moto)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

import psc
from memq import Consumer, ConsumerRecord, CorruptObjectError
from memq._consumer import pack_offset
from memq._format import Compression, Record, build_object, encode_message
from memq.storage import S3Storage, open_storage
from tests.services import Services


@pytest.fixture
def s3_storage(services: Services) -> Iterator[S3Storage]:
    bucket = f"memq-consumer-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=services.s3_endpoint_url,
        aws_access_key_id="t",
        aws_secret_access_key="t",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    storage = open_storage(f"s3://{bucket}/it", endpoint_url=services.s3_endpoint_url)
    assert isinstance(storage, S3Storage)
    yield storage
    storage.close()


@pytest.fixture
def base(services: Services) -> dict[str, Any]:
    return {"psc.project": "it-memq-consumer", "psc.discovery.file": services.psc_discovery_file}


def _announce(base: dict[str, Any], uri: str, notes: list[bytes]) -> None:
    with psc.Producer(base) as producer:
        for note in notes:
            producer.produce(uri, note)
        assert producer.flush(30) == 0


def _write(storage: S3Storage, name: str, messages: list[list[Record]]) -> tuple[str, bytes, bytes]:
    encoded = [
        encode_message(records, compression=Compression.ZSTD, producer_epoch=9, request_id=i, address=b"\x7f\0\0\1")
        for i, records in enumerate(messages)
    ]
    obj = build_object(encoded)
    key = storage.object_key("events", client_request_id=0, server_request_id=len(name), attempt=0, host=name)
    storage.put(key, [obj])
    header = 8 + 12 * len(encoded)
    note = storage.notification(
        key, topic="events", header_size=header, messages_size=len(obj) - header, message_count=len(encoded), attempts=0
    )
    return key, obj, note.to_json().encode()


def _records(tag: str, count: int) -> list[Record]:
    return [
        Record(f"{tag}-{i}".encode() * 20, key=f"k{i}".encode(), headers=(("tag", tag.encode()),), timestamp_ms=i)
        for i in range(count)
    ]


def _consumer(base: dict[str, Any], group: str, services: Services, **options: Any) -> Consumer:
    config = {**base, "psc.consumer.group.id": group, "psc.consumer.offset.auto.reset": "earliest"}
    return Consumer(config, storage_options={"endpoint_url": services.s3_endpoint_url}, **options)


def _take(consumer: Consumer, count: int, limit_s: float = 30.0) -> list[ConsumerRecord]:
    import time

    out: list[ConsumerRecord] = []
    deadline = time.monotonic() + limit_s
    while len(out) < count and time.monotonic() < deadline:
        record = consumer.poll(0.5)
        if record is not None:
            out.append(record)
    return out


def test_consume_commit_restart_mid_object(
    base: dict[str, Any], services: Services, new_topic: Callable[..., str], s3_storage: S3Storage
) -> None:
    uri = services.cluster_prefix + new_topic(partitions=1, prefix="memq-notify")
    objects = [_write(s3_storage, f"o{n}", [_records(f"o{n}m{m}", 5) for m in range(3)]) for n in range(2)]
    _announce(base, uri, [note for _, _, note in objects])
    group = f"g-{uuid.uuid4().hex[:8]}"

    first = _consumer(base, group, services)
    first.subscribe([uri])
    head = _take(first, 7)
    assert [r.value[:6] for r in head] == [b"o0m0-0", b"o0m0-1", b"o0m0-2", b"o0m0-3", b"o0m0-4", b"o0m1-0", b"o0m1-1"]
    assert head[-1].offset == pack_offset(0, 6)
    assert head[0].headers == (("tag", b"o0m0"),) and head[0].key == b"k0"
    first.commit()
    first.close()

    second = _consumer(base, group, services)
    second.subscribe([uri])
    rest = _take(second, 23)
    assert len(rest) == 23
    assert rest[0].offset == pack_offset(0, 7) and rest[0].value[:6] == b"o0m1-2"
    assert [r.offset for r in rest[8:]] == [pack_offset(1, i) for i in range(15)]
    assert second.poll(1.0) is None  # nothing more, nothing twice
    second.commit()
    second.close()


def test_a_corrupt_byte_is_reported_by_key_and_offset(
    base: dict[str, Any], services: Services, new_topic: Callable[..., str], s3_storage: S3Storage
) -> None:
    uri = services.cluster_prefix + new_topic(partitions=1, prefix="memq-notify")
    dead_uri = services.cluster_prefix + new_topic(partitions=1, prefix="memq-dead")
    key, obj, note = _write(s3_storage, "bad", [_records("a", 3), _records("b", 3), _records("c", 3)])
    good_key, _, good_note = _write(s3_storage, "good", [_records("d", 2)])
    second = int.from_bytes(obj[24:28], "big")  # offset of producer message 1, from the index
    broken = bytearray(obj)
    broken[second + 60] ^= 0x40
    s3_storage.put(key, [bytes(broken)])
    _announce(base, uri, [note, good_note])

    consumer = _consumer(base, f"g-{uuid.uuid4().hex[:8]}", services)
    consumer.subscribe([uri])
    assert [r.value[:3] for r in _take(consumer, 3)] == [b"a-0", b"a-1", b"a-2"]
    with pytest.raises(CorruptObjectError) as caught:
        _take(consumer, 1)
    assert caught.value.key == key and caught.value.offset == second
    assert f"byte offset {second}" in str(caught.value) and key in str(caught.value)
    consumer.close()

    with_dead_letter = _consumer(base, f"g-{uuid.uuid4().hex[:8]}", services, dead_letter_topic_uri=dead_uri)
    with_dead_letter.subscribe([uri])
    values = [r.value[:3] for r in _take(with_dead_letter, 8)]
    assert values == [b"a-0", b"a-1", b"a-2", b"c-0", b"c-1", b"c-2", b"d-0", b"d-1"]
    with_dead_letter.close()
    reader_config = {
        **base,
        "psc.consumer.group.id": f"g-{uuid.uuid4().hex[:8]}",
        "psc.consumer.offset.auto.reset": "earliest",
    }
    with psc.Consumer(reader_config) as reader:
        reader.subscribe([dead_uri])
        dead = None
        for _ in range(60):
            dead = reader.poll(0.5)
            if dead is not None and dead.error() is None:
                break
        assert dead is not None and dead.value() == note
        headers = dict(dead.headers() or [])
        assert headers["memq.object"] == key.encode()
        assert headers["memq.object.offset"] == str(second).encode()
    assert good_key != key


def test_notification_partitions_are_the_read_parallelism(
    base: dict[str, Any], services: Services, new_topic: Callable[..., str], s3_storage: S3Storage
) -> None:
    import time

    uri = services.cluster_prefix + new_topic(partitions=2, prefix="memq-notify")
    group = f"g-{uuid.uuid4().hex[:8]}"
    members = [_consumer(base, group, services) for _ in range(2)]
    for member in members:
        member.subscribe([uri])
    deadline = time.monotonic() + 60
    while not all(len(member.assignment()) == 1 for member in members) and time.monotonic() < deadline:
        for member in members:
            assert member.poll(0.2) is None
    assert sorted(p for member in members for _, p in member.assignment()) == [0, 1]

    notes = [_write(s3_storage, f"p{n}", [_records(f"p{n}", 3)])[2] for n in range(4)]
    with psc.Producer(base) as producer:
        for n, note in enumerate(notes):
            producer.produce(uri, note, partition=n % 2)
        assert producer.flush(30) == 0
    got: list[list[ConsumerRecord]] = [[], []]
    while sum(map(len, got)) < 12 and time.monotonic() < deadline:
        for number, member in enumerate(members):
            got[number] += member.consume(12, 0.2)
    for member in members:
        member.close()
    for number, member_records in enumerate(got):
        (partition,) = {r.partition for r in member_records}
        expected = [f"p{n}-{i}".encode() for n in range(partition, 4, 2) for i in range(3)]
        assert [r.value[:4] for r in member_records] == expected, f"member {number}"


def test_seek_to_packed_offset_beginning_and_end(
    base: dict[str, Any], services: Services, new_topic: Callable[..., str], s3_storage: S3Storage
) -> None:
    uri = services.cluster_prefix + new_topic(partitions=1, prefix="memq-notify")
    notes = [_write(s3_storage, f"s{n}", [_records(f"s{n}a", 2), _records(f"s{n}b", 2)])[2] for n in range(3)]
    _announce(base, uri, notes)
    consumer = _consumer(base, f"g-{uuid.uuid4().hex[:8]}", services, fetch_bytes=1)  # one message per read
    consumer.subscribe([uri])
    assert len(_take(consumer, 12)) == 12

    consumer.seek(uri, 0, pack_offset(1, 3))
    assert [r.value[:5] for r in _take(consumer, 2)] == [b"s1b-1", b"s2a-0"]
    consumer.seek_to_beginning(uri, 0)
    again = _take(consumer, 12)
    assert [r.offset for r in again] == [pack_offset(n, i) for n in range(3) for i in range(4)]
    consumer.seek_to_end(uri, 0)
    assert consumer.poll(2.0) is None
    _announce(base, uri, [notes[0]])  # announced again: read again, at its new notification offset
    assert [r.offset for r in _take(consumer, 4)] == [pack_offset(3, i) for i in range(4)]
    consumer.close()
