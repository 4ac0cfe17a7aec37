"""Batching and the durable write path with an in-memory store and notifier: sealing, retries, 502, memory cap."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from memq._config import BrokerConfig, TopicConfig
from memq._errors import StorageError
from memq._format import Compression, Notification, Record, encode_message, iter_object_records
from memq._wire import ResponseCode
from memq.broker._batches import BatchManager, Outcome
from memq.broker._metrics import BrokerMetrics
from memq.storage import FileStorage


class MemoryStore(FileStorage):
    """FileStorage's naming and notifications, objects kept in a dict; ``fail`` puts fail that many times."""

    def __init__(self, fail: int = 0) -> None:
        super().__init__("/nowhere")
        self.objects: dict[str, bytes] = {}
        self.fail = fail
        self.attempts = 0

    def put(self, key: str, parts: Sequence[bytes | bytearray | memoryview]) -> None:
        self.attempts += 1
        if self.fail:
            self.fail -= 1
            raise StorageError("injected failure", key)
        self.objects[key] = b"".join(bytes(p) for p in parts)


def _message(value: bytes, request_id: int = 1) -> bytes:
    return encode_message(
        [Record(value)], compression=Compression.NONE, producer_epoch=1, request_id=request_id, address=b"\x7f\0\0\1"
    )


def _config(**topic: Any) -> BrokerConfig:
    settings = {"name": "t", "notification_topic": "n", "batch_max_ms": 50, **topic}
    return BrokerConfig(
        topics=[TopicConfig(**settings)],
        upload_backoff_s=0.0,
        upload_attempt_timeout_s=1.0,
        producer_request_timeout_s=120,
    )


class Harness:
    def __init__(self, config: BrokerConfig, store: MemoryStore, notify_error: Exception | None = None) -> None:
        self.config = config
        self.store = store
        self.notified: list[tuple[str, Notification]] = []
        self.notify_error = notify_error
        self.manager = BatchManager(config, {"t": store}, self._notify, BrokerMetrics())

    async def _notify(self, topic: str, notification: Notification) -> None:
        if self.notify_error is not None:
            raise self.notify_error
        # The object must be stored before its notification is sent.
        assert notification.path is not None and notification.path.removeprefix("/nowhere/") in self.store.objects
        self.notified.append((topic, notification))

    def add(self, value: bytes) -> asyncio.Future[Outcome]:
        return self.manager.add(self.config.topics[0], _message(value), 1)


def test_count_seals_a_batch_and_everyone_gets_ok_after_storage_and_notification() -> None:
    async def run() -> None:
        h = Harness(_config(batch_max_messages=2, batch_max_ms=60000), MemoryStore())
        first, second = h.add(b"a"), h.add(b"b")
        outcomes = await asyncio.wait_for(asyncio.gather(first, second), 5)
        assert list(outcomes) == [Outcome(ResponseCode.OK)] * 2
        (data,) = h.store.objects.values()
        assert [r.value for *_, r in iter_object_records(data)] == [b"a", b"b"]
        assert [(t, n.message_count) for t, n in h.notified] == [("n", 2)]
        assert h.manager.budget.used == 0

    asyncio.run(run())


def test_the_message_reaching_the_size_seals_and_time_seals_the_rest() -> None:
    async def run() -> None:
        size = len(_message(b"x" * 100))
        h = Harness(_config(batch_max_bytes=2 * size + 10, batch_max_ms=100), MemoryStore())
        waiters = [h.add(b"x" * 100) for _ in range(4)]
        await asyncio.wait_for(asyncio.gather(*waiters), 5)
        counts = [n.message_count for _t, n in h.notified]
        assert sorted(counts) == [1, 3]  # the third crossed the size and sealed; time sealed the fourth

    asyncio.run(run())


def test_size_sealed_objects_average_the_batch_size() -> None:
    """Each batch seals earlier by what the previous one overshot, so n objects hold n x batch_max_bytes."""

    async def run() -> None:
        limit = 10_000
        h = Harness(_config(batch_max_bytes=limit, batch_max_ms=60000), MemoryStore())
        messages = [_message(b"v" * (300 + 97 * (i % 23))) for i in range(400)]
        waiters = [h.manager.add(h.config.topics[0], m, i) for i, m in enumerate(messages)]
        h.manager.seal_all()
        await asyncio.wait_for(asyncio.gather(*waiters), 10)
        largest = max(len(m) for m in messages)
        by_order = sorted(h.notified, key=lambda tn: int(str(tn[1].path).rsplit("/", 1)[1].split("_")[0]))
        sized = [n.object_size - n.header_size for _t, n in by_order[:-1]]  # the last was sealed by seal_all
        assert len(sized) >= 20
        assert all(limit - largest < s < limit + largest for s in sized)
        assert abs(sum(sized) - len(sized) * limit) < largest  # the overshoots telescope
        assert sum(n.object_size - n.header_size for _t, n in h.notified) == sum(map(len, messages))

    asyncio.run(run())


def test_upload_retries_then_succeeds_with_the_winning_attempt_named() -> None:
    async def run() -> None:
        h = Harness(_config(), MemoryStore(fail=2))
        assert await asyncio.wait_for(h.add(b"a"), 5) == Outcome(ResponseCode.OK)
        assert h.store.attempts == 3
        ((_t, notification),) = h.notified
        assert notification.path is not None and "_2_" in notification.path  # attempt 2 in the key

    asyncio.run(run())


def test_upload_that_keeps_failing_answers_502_and_announces_nothing() -> None:
    async def run() -> None:
        h = Harness(_config(), MemoryStore(fail=10))
        waiters = [h.add(b"a"), h.add(b"b")]
        outcomes = await asyncio.wait_for(asyncio.gather(*waiters), 5)
        assert {o.code for o in outcomes} == {ResponseCode.REQUEST_FAILED}
        assert h.store.attempts == h.config.upload_attempts and not h.notified
        assert h.manager.budget.used == 0

    asyncio.run(run())


def test_failed_notification_answers_502() -> None:
    async def run() -> None:
        h = Harness(_config(), MemoryStore(), notify_error=RuntimeError("kafka down"))
        outcome = await asyncio.wait_for(h.add(b"a"), 5)
        assert outcome.code == ResponseCode.REQUEST_FAILED and "kafka down" in outcome.error

    asyncio.run(run())


def test_inflight_budget_blocks_readers_until_uploads_finish() -> None:
    async def run() -> None:
        config = BrokerConfig(
            topics=[TopicConfig(name="t", notification_topic="n", batch_max_ms=60000, batch_max_messages=1)],
            max_inflight_bytes=100,
            producer_request_timeout_s=120,
        )
        h = Harness(config, MemoryStore())
        release = asyncio.Event()
        original = h._notify

        async def slow_notify(topic: str, notification: Notification) -> None:
            await release.wait()
            await original(topic, notification)

        h.manager._notify = slow_notify
        waiter = h.add(b"x" * 200)  # one message over the cap
        room = asyncio.create_task(h.manager.budget.wait_for_room())
        await asyncio.sleep(0.2)
        assert not room.done()  # readers are held back while the batch is in flight
        release.set()
        await asyncio.wait_for(room, 5)
        assert (await waiter).code == ResponseCode.OK

    asyncio.run(run())


def test_seal_all_and_drain_finish_open_batches() -> None:
    async def run() -> None:
        h = Harness(_config(batch_max_ms=60000), MemoryStore())
        waiter = h.add(b"open")
        h.manager.seal_all()
        await asyncio.wait_for(h.manager.drain(), 5)
        assert waiter.done() and waiter.result().code == ResponseCode.OK

    asyncio.run(run())


def test_seal_topic_seals_only_that_topics_open_batch_as_flushed() -> None:
    async def run() -> None:
        h = Harness(_config(batch_max_ms=60000), MemoryStore())
        h.manager.seal_topic("t", "flush")  # nothing open: nothing happens
        waiter = h.add(b"open")
        h.manager.seal_topic("other", "flush")
        await asyncio.sleep(0.05)
        assert not waiter.done()
        h.manager.seal_topic("t", "flush")
        assert (await asyncio.wait_for(waiter, 5)).code == ResponseCode.OK
        assert [n.message_count for _t, n in h.notified] == [1]

    asyncio.run(run())


def test_config_refuses_a_batch_time_the_producer_timeout_cannot_cover() -> None:
    with pytest.raises(ValueError, match="producer_request_timeout_s"):
        BrokerConfig(topics=[TopicConfig(name="t", notification_topic="n", batch_max_ms=60000)])
    default = BrokerConfig(topics=[TopicConfig(name="t", notification_topic="n")])
    assert default.worst_ack_seconds() < default.producer_request_timeout_s
