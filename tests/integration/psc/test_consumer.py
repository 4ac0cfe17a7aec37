"""The PSC consumer against a real broker: every public method of the confluent-like API."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

import psc
from tests.integration.psc.support import RECENT_MS, drain
from tests.services import Services

TIMEOUT = 15.0


@pytest.fixture
def base(services: Services) -> dict[str, Any]:
    return {"psc.project": "it-consumer", "psc.discovery.file": services.psc_discovery_file}


def consumer_config(base: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        **base,
        "psc.consumer.group.id": f"g-{uuid.uuid4().hex[:8]}",
        "psc.consumer.offset.auto.reset": "earliest",
        **extra,
    }


@pytest.fixture
def filled(base: dict[str, Any], services: Services, new_topic: Callable[..., str]) -> str:
    """A two-partition topic with 10 records per partition, timestamps 1000 ms apart from ``RECENT_MS``."""
    uri = services.cluster_prefix + new_topic(partitions=2)
    with psc.Producer(base) as producer:
        for partition in (0, 1):
            for i in range(10):
                producer.produce(uri, f"p{partition}-{i}".encode(), partition=partition, timestamp=RECENT_MS + i * 1000)
        assert producer.flush(TIMEOUT) == 0
    return uri


def tp(uri: str, partition: int, offset: int = psc.OFFSET_INVALID) -> psc.TopicUriPartition:
    return psc.TopicUriPartition(uri, partition, offset)


def test_subscribe_with_rebalance_callbacks_then_commit(base: dict[str, Any], filled: str) -> None:
    assigned: list[psc.TopicUriPartition] = []
    revoked: list[psc.TopicUriPartition] = []
    config = consumer_config(base)
    with psc.Consumer(config) as consumer:
        consumer.subscribe(
            [filled], on_assign=lambda c, ps: assigned.extend(ps), on_revoke=lambda c, ps: revoked.extend(ps)
        )
        messages = drain(consumer, 20)
        assert len(messages) == 20
        assert sorted(assigned) == [tp(filled, 0), tp(filled, 1)]
        assert {m.topic() for m in messages} == {filled}
        assert sorted(tp.partition for tp in consumer.assignment()) == [0, 1]
        committed = consumer.commit(asynchronous=False)
        assert committed is not None and {c.offset for c in committed} == {10}
        consumer.unsubscribe()
        consumer.poll(0.5)  # as in confluent-kafka, the revocation is served by the next poll
        assert sorted(revoked) == [tp(filled, 0), tp(filled, 1)]
    with psc.Consumer(config) as again:  # the same group resumes after the commit: nothing left
        again.subscribe([filled])
        assert drain(again, 1, 3.0) == []


def test_commit_by_message_message_id_and_offsets(base: dict[str, Any], filled: str) -> None:
    config = consumer_config(base)
    with psc.Consumer(config) as consumer:
        consumer.assign([tp(filled, 0, 0), tp(filled, 1, 0)])
        messages = drain(consumer, 20)
        by_partition = {p: [m for m in messages if m.partition() == p] for p in (0, 1)}
        consumer.commit(message=by_partition[0][2], asynchronous=False)
        consumer.commit(by_partition[1][4].message_id, asynchronous=False)
        assert [c.offset for c in consumer.committed([tp(filled, 0), tp(filled, 1)], TIMEOUT)] == [3, 5]
        consumer.commit(offsets=[tp(filled, 0, 7)], asynchronous=False)
        consumer.commit(offsets=[tp(filled, 1, 8)])  # asynchronous: served by the next poll
        deadline = time.monotonic() + TIMEOUT
        while consumer.committed([tp(filled, 1)], TIMEOUT)[0].offset != 8 and time.monotonic() < deadline:
            consumer.poll(0.1)
        assert [c.offset for c in consumer.committed([tp(filled, 0), tp(filled, 1)], TIMEOUT)] == [7, 8]


def test_async_commit_results_reach_on_commit(base: dict[str, Any], filled: str) -> None:
    results: list[tuple[psc.PscError | None, list[psc.TopicUriPartition]]] = []
    config = consumer_config(base)
    with psc.Consumer(config, on_commit=lambda err, parts: results.append((err, parts))) as consumer:
        consumer.assign([tp(filled, 0, 0), tp(filled, 1, 0)])
        assert len(drain(consumer, 20)) == 20
        consumer.commit(offsets=[tp(filled, 0, 4), tp(filled, 1, 6)])  # asynchronous: reported by a poll
        deadline = time.monotonic() + TIMEOUT
        while not results and time.monotonic() < deadline:
            consumer.poll(0.1)
        [(error, parts)] = results
        assert error is None
        assert sorted((p.topic_uri, p.partition, p.offset, p.error) for p in parts) == [
            (filled, 0, 4, None),
            (filled, 1, 6, None),
        ]
        consumer.commit(offsets=[psc.TopicUriPartition(filled, 7, 1)])  # no such partition
        deadline = time.monotonic() + TIMEOUT
        while len(results) < 2 and time.monotonic() < deadline:
            consumer.poll(0.1)
        failed = results[1][0] or results[1][1][0].error
        assert failed is not None, results[1]


def test_poll_iteration_and_store_offsets(base: dict[str, Any], filled: str) -> None:
    config = consumer_config(
        base, **{"psc.consumer.enable.auto.offset.store": "false", "psc.consumer.commit.auto.enabled": "true"}
    )
    with psc.Consumer(config) as consumer:
        consumer.assign([tp(filled, 0, 0)])
        first = None
        while first is None:
            first = consumer.poll(1.0)
        assert first.value() == b"p0-0" and first.offset() == 0 and first.error() is None
        second = next(iter(consumer))
        assert second.offset() == 1
        consumer.store_offsets(message=second)
        consumer.commit(asynchronous=False)
        assert consumer.committed([tp(filled, 0)], TIMEOUT)[0].offset == 2


def test_seek_variants_and_position(base: dict[str, Any], filled: str) -> None:
    with psc.Consumer(consumer_config(base)) as consumer:
        consumer.assign([tp(filled, 0, 0)])
        assert len(drain(consumer, 10)) == 10
        assert consumer.position([tp(filled, 0)])[0].offset == 10
        consumer.seek(tp(filled, 0, 4))
        assert drain(consumer, 1)[0].offset() == 4
        consumer.seek_to_beginning()
        assert drain(consumer, 1)[0].offset() == 0
        consumer.seek_to_timestamp(RECENT_MS + 6 * 1000)
        assert drain(consumer, 1)[0].offset() == 6
        consumer.seek_to_end([tp(filled, 0)])
        assert drain(consumer, 1, 1.5) == []


def test_pause_and_resume(base: dict[str, Any], filled: str) -> None:
    with psc.Consumer(consumer_config(base)) as consumer:
        consumer.assign([tp(filled, 0, 0), tp(filled, 1, 0)])
        consumer.pause([tp(filled, 1)])
        got = drain(consumer, 20, 3.0)
        assert {m.partition() for m in got} == {0} and len(got) == 10
        consumer.resume([tp(filled, 1)])
        got = drain(consumer, 10)
        assert {m.partition() for m in got} == {1} and len(got) == 10


def test_incremental_assign_and_unassign(base: dict[str, Any], filled: str) -> None:
    with psc.Consumer(consumer_config(base)) as consumer:
        consumer.incremental_assign([tp(filled, 0, 0)])
        consumer.incremental_assign([tp(filled, 1, 5)])
        assert sorted(consumer.assignment()) == [tp(filled, 0), tp(filled, 1)]
        got = drain(consumer, 15)
        assert sorted((m.partition(), m.offset()) for m in got)[-1] == (1, 9)
        consumer.incremental_unassign([tp(filled, 0)])
        assert consumer.assignment() == [tp(filled, 1)]
        consumer.unassign()
        assert consumer.assignment() == []


def test_watermarks_offsets_for_times_and_metadata(base: dict[str, Any], filled: str, services: Services) -> None:
    with psc.Consumer(consumer_config(base)) as consumer:
        assert consumer.get_watermark_offsets(tp(filled, 0), TIMEOUT) == (0, 10)
        consumer.assign([tp(filled, 1, 0)])
        drain(consumer, 10)
        assert consumer.get_watermark_offsets(tp(filled, 1), cached=True) == (0, 10)
        found = consumer.offsets_for_times([tp(filled, 0, RECENT_MS + 3500)], TIMEOUT)
        assert [(f.topic_uri, f.partition, f.offset) for f in found] == [(filled, 0, 4)]
        metadata = consumer.list_topics(filled, TIMEOUT)
        assert sorted(metadata.topics[filled].partitions) == [0, 1]
        assert filled in consumer.list_topics(services.cluster_prefix, TIMEOUT).topics
        assert consumer.consumer_group_metadata() is not None


def test_partition_eof_marker_only_when_enabled(base: dict[str, Any], filled: str) -> None:
    config = consumer_config(base, **{"psc.consumer.enable.partition.eof": "true"})
    with psc.Consumer(config) as consumer:
        consumer.assign([tp(filled, 0, 8)])
        got = drain(consumer, 3)
        assert [m.is_eof() for m in got] == [False, False, True]
        assert got[-1].error() is not None and got[-1].error().name() == "_PARTITION_EOF"  # type: ignore[union-attr]
    with psc.Consumer(consumer_config(base)) as quiet:
        quiet.assign([tp(filled, 0, 8)])
        assert len(drain(quiet, 3, 2.0)) == 2


def test_json_deserializer(base: dict[str, Any], services: Services, new_topic: Callable[..., str]) -> None:
    uri = services.cluster_prefix + new_topic()
    with psc.Producer({**base, "psc.producer.value.serializer": "json"}) as producer:
        producer.produce(uri, {"n": 1})
        producer.flush(TIMEOUT)
    config = consumer_config(base, **{"psc.consumer.value.deserializer": "json"})
    with psc.Consumer(config) as consumer:
        consumer.subscribe([uri])
        [message] = drain(consumer, 1)
        assert message.value() == {"n": 1}


def test_a_missing_topic_is_reported_promptly_as_an_error_message(base: dict[str, Any], services: Services) -> None:
    missing = services.cluster_prefix + f"missing-{uuid.uuid4().hex[:8]}"
    with psc.Consumer(consumer_config(base)) as consumer:
        consumer.subscribe([missing])
        started = time.monotonic()
        message = None
        while message is None and time.monotonic() - started < 15:
            message = consumer.poll(0.5)
        assert message is not None, "confluent-kafka reports a missing topic within seconds"
        error = message.error()
        assert error is not None and error.code() == psc.KafkaError.UNKNOWN_TOPIC_OR_PART
        assert message.topic() == missing


def test_bad_subscriptions_never_reach_the_broker(base: dict[str, Any], services: Services) -> None:
    with psc.Consumer(consumer_config(base)) as consumer:
        with pytest.raises(psc.InvalidUriError):
            consumer.subscribe(["plaintext:/rn:kafka:too:few"])
        with pytest.raises(psc.UnknownBackendError):
            consumer.subscribe(["plaintext:/rn:nosuch:env:aws_us-west-1::cluster01:t"])
        with pytest.raises(psc.ConsumerError):
            consumer.subscribe([services.cluster_prefix])
        assert consumer.assignment() == []
    closed = psc.Consumer(consumer_config(base))
    closed.close()
    with pytest.raises(psc.ClientClosedError):
        closed.poll(0)


@pytest.fixture
def many(base: dict[str, Any], services: Services, new_topic: Callable[..., str]) -> str:
    """A two-partition topic with 2000 records per partition: enough for poll() to buffer batches."""
    uri = services.cluster_prefix + new_topic(partitions=2)
    with psc.Producer(base) as producer:
        for i in range(4000):
            producer.produce(uri, f"{i % 2}-{i // 2}".encode(), partition=i % 2)
        assert producer.flush(TIMEOUT) == 0
    return uri


def poll_n(consumer: psc.Consumer, count: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    deadline = time.monotonic() + TIMEOUT
    while len(out) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None:
            out.append((message.partition() or 0, message.offset() or 0))
    return out


def test_commit_after_a_partial_poll_resumes_exactly_after_the_last_returned(base: dict[str, Any], many: str) -> None:
    config = consumer_config(base)
    with psc.Consumer(config) as first:
        first.subscribe([many])
        read = poll_n(first, 1234)
        assert first._order[0].buffer, "poll() buffered records past the last one returned"
        committed = first.commit(asynchronous=False)
        last = {p: o for p, o in read}
        assert committed is not None and sorted((c.partition, c.offset) for c in committed) == sorted(
            (p, o + 1) for p, o in last.items()
        )
    with psc.Consumer(config) as second:
        second.subscribe([many])
        read += poll_n(second, 4000 - len(read))
        assert second.poll(1.0) is None
    assert sorted(read) == sorted((p, o) for p in (0, 1) for o in range(2000)), "nothing lost or read twice"


def test_pause_and_resume_mid_buffer_lose_nothing(base: dict[str, Any], many: str) -> None:
    with psc.Consumer(consumer_config(base)) as consumer:
        consumer.subscribe([many])
        read = poll_n(consumer, 1000)
        assert consumer._order[0].buffer, "poll() buffered records past the last one returned"
        consumer.pause([tp(many, 0), tp(many, 1)])
        assert consumer.poll(1.0) is None, "paused partitions return nothing, buffered or not"
        consumer.resume([tp(many, 0), tp(many, 1)])
        read += poll_n(consumer, 4000 - len(read))
    assert sorted(read) == sorted((p, o) for p in (0, 1) for o in range(2000)), "nothing lost or read twice"


def test_rebalance_with_buffered_records_loses_nothing_and_reads_nothing_twice(base: dict[str, Any], many: str) -> None:
    """A second member joins while the first holds buffered records; members commit in on_revoke, closing too."""
    config = consumer_config(base)
    read: list[tuple[int, int]] = []
    revoked: list[int] = []

    def commit_on_revoke(consumer: psc.Consumer, parts: list[psc.TopicUriPartition]) -> None:
        revoked.extend(p.partition for p in parts)
        consumer.commit(asynchronous=False)

    with psc.Consumer(config) as first, psc.Consumer(config) as second:
        first.subscribe([many], on_revoke=commit_on_revoke)
        read += poll_n(first, 700)
        assert first._order[0].buffer, "poll() buffered records past the last one returned"
        second.subscribe([many], on_revoke=commit_on_revoke)
        deadline = time.monotonic() + 60
        while len(read) < 4000 and time.monotonic() < deadline:
            for consumer in (first, second):  # a few records each in turn, so the rebalance finds records left
                for _ in range(10):
                    message = consumer.poll(0.05)
                    if message is None:
                        break
                    read.append((message.partition() or 0, message.offset() or 0))
        assert revoked, "the second member's arrival revoked the first one's partitions"
    assert len(read) == len(set(read)), "nothing read twice"
    assert sorted(read) == sorted((p, o) for p in (0, 1) for o in range(2000)), "nothing lost"


@pytest.mark.parametrize("polls_first", [True, False], ids=["poll-then-commit", "commit-at-once"])
@pytest.mark.parametrize("store", ["automatic", "by the application"])
def test_a_reset_keeps_what_the_application_was_about_to_commit(
    base: dict[str, Any], many: str, store: str, polls_first: bool
) -> None:
    """Remediation recreates the backend consumer between poll() and commit(): the commit is the same."""
    manual_store = store == "by the application"
    config = consumer_config(
        base,
        **{
            "psc.consumer.commit.auto.enabled": "false",
            "psc.consumer.enable.auto.offset.store": str(not manual_store).lower(),
        },
    )
    with psc.Consumer(config) as consumer:
        consumer.subscribe([many])
        read = poll_n(consumer, 2500)  # from both partitions: 2000 records each
        assert {p for p, _ in read} == {0, 1}
        if manual_store:
            for partition, offset in read:
                consumer.store_offsets(offsets=[tp(many, partition, offset + 1)])
        member = consumer._order[0]
        old = member.consumer
        consumer._reset(member, "a certificate about to expire")
        assert member.consumer is not old
        seen: list[tuple[int, int]] = []  # returned after the reset
        if polls_first:  # the application goes on polling while the new backend consumer rejoins the group
            deadline = time.monotonic() + TIMEOUT
            while not consumer.assignment() and time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is not None:
                    seen.append((message.partition() or 0, message.offset() or 0))
        committed = consumer.commit(asynchronous=False)
        last = {p: o for p, o in (read if manual_store else read + seen)}  # as stored: automatically or not
        assert committed is not None and sorted((c.partition, c.offset) for c in committed if c.offset >= 0) == sorted(
            (p, o + 1) for p, o in last.items()
        )
        seen += poll_n(consumer, 4000 - len(read) - len(seen))
    assert sorted(read + seen) == sorted((p, o) for p in (0, 1) for o in range(2000)), "nothing lost or read twice"
