"""psc.aio over fake backends: confluent-kafka's asyncio semantics, callbacks awaited on the event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

import psc
from psc.aio import AIOConsumer, AIOProducer
from psc.aio._common import loop_config
from psc.backends import register_backend, unregister_backend
from psc.backends.base import BackendPartition
from tests.unit.psc.test_clients import CONFIG, A, FakeBackend, FakeConsumer, FakeError, FakeRecord

T1 = A + "t1"


class RebalancingConsumer(FakeConsumer):
    """Revokes ``revoke`` from inside its next poll or consume, as librdkafka does, noting what the callback did."""

    def __init__(self, cluster_uri: str) -> None:
        super().__init__(cluster_uri)
        self.revoke: list[BackendPartition] = []
        self.commits_when_revoked: int | None = None
        self.threads: set[int] = set()
        self.thread_names: set[str] = set()

    def _rebalance(self) -> None:
        self.threads.add(threading.get_ident())
        self.thread_names.add(threading.current_thread().name)
        if self.revoke:
            parts, self.revoke = self.revoke, []
            self.callbacks[1](parts)
            self.commits_when_revoked = len(self.commits)

    def _poll(self, timeout: float) -> FakeRecord | None:
        self._rebalance()
        return super()._poll(timeout)

    def _consume(self, count: int, timeout: float) -> list[FakeRecord]:
        self._rebalance()
        return super()._consume(count, timeout)


class Backend(FakeBackend):
    def create_consumer(self, endpoint: Any, config: Any, cluster_uri: str) -> RebalancingConsumer:
        consumer = RebalancingConsumer(cluster_uri)
        consumer.config = dict(config)
        self.consumers.append(consumer)
        return consumer


@pytest.fixture
def backend() -> Iterator[Backend]:
    fake = Backend()
    register_backend("fake", fake)
    yield fake
    unregister_backend("fake")


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))


GROUP = {**CONFIG, "psc.consumer.group.id": "g"}


def test_awaiting_produce_returns_a_delivery_future_without_waiting_for_delivery(backend: Backend) -> None:
    async def scenario() -> None:
        async with AIOProducer(CONFIG, buffer_timeout=0) as producer:
            future = await producer.produce(T1, b"v", key=b"k")
            assert isinstance(future, asyncio.Future) and not future.done()
            assert backend.producers == [] and len(producer) == 1  # buffered, not yet handed over
            assert await producer.flush(5) == 0
            delivered = await future
            assert isinstance(delivered, psc.Message)
            assert (delivered.topic(), delivered.value(), delivered.offset()) == (T1, b"v", 0)

    run(scenario())


def test_a_full_batch_is_sent_at_once_and_an_idle_buffer_after_the_timeout(backend: Backend) -> None:
    async def scenario() -> None:
        async with AIOProducer(CONFIG, batch_size=3, buffer_timeout=0.05) as producer:
            futures = [await producer.produce(T1, f"{i}".encode()) for i in range(3)]
            assert [value for _, value in backend.producers[0].produced] == [b"0", b"1", b"2"]
            late = await producer.produce(T1, b"late")
            delivered = await asyncio.wait_for(late, 5)  # sent and reported by the producer's own task
            assert delivered.value() == b"late"
            assert [f.result().offset() for f in futures] == [0, 1, 2]

    run(scenario())


def test_a_failed_delivery_raises_from_the_future_and_callbacks_run_on_the_loop(backend: Backend) -> None:
    async def scenario() -> None:
        loop_thread = threading.get_ident()
        heard: list[tuple[Any, int]] = []

        async def on_delivery(err: Any, msg: Any) -> None:
            heard.append((err, threading.get_ident()))

        async with AIOProducer(CONFIG, buffer_timeout=0) as producer:
            backend.failures.append(FakeError("MSG_SIZE_TOO_LARGE", code=10))
            future = await producer.produce(T1, b"x" * 10, on_delivery=on_delivery)
            await producer.flush(5)
            with pytest.raises(Exception, match="MSG_SIZE_TOO_LARGE"):
                await future
            await asyncio.sleep(0)
        assert len(heard) == 1 and heard[0][0] is not None and heard[0][1] == loop_thread

    run(scenario())


def test_purge_cancels_the_buffered_records(backend: Backend) -> None:
    async def scenario() -> None:
        async with AIOProducer(CONFIG, buffer_timeout=0) as producer:
            future = await producer.produce(T1, b"x")
            await producer.purge()
            assert future.cancelled() and len(producer) == 0

    run(scenario())


def test_a_commit_in_an_async_on_revoke_is_done_before_the_partitions_go(backend: Backend) -> None:
    async def scenario() -> None:
        loop_thread = threading.get_ident()
        seen: list[Any] = []

        async def on_revoke(consumer: AIOConsumer, partitions: list[psc.TopicUriPartition]) -> None:
            seen.append((consumer, partitions, threading.get_ident()))
            await asyncio.sleep(0.01)
            await consumer.commit(offsets=[psc.TopicUriPartition(T1, 0, 5)], asynchronous=False)

        async with AIOConsumer(GROUP) as consumer:
            await consumer.subscribe([T1], on_revoke=on_revoke)
            fake = backend.consumers[0]
            fake.revoke = [BackendPartition("t1", 0)]
            await consumer.poll(0)
            assert fake.commits_when_revoked == 1  # the callback's commit ran before librdkafka went on
            assert fake.commits == [[BackendPartition("t1", 0, 5)]]
            [(given, partitions, thread)] = seen
            assert given is consumer and thread == loop_thread
            assert [(p.topic_uri, p.partition) for p in partitions] == [(T1, 0)]
            assert len(fake.threads) == 1 and loop_thread not in fake.threads

    run(scenario())


def test_plain_callbacks_and_on_commit_run_on_the_loop_too(backend: Backend) -> None:
    async def scenario() -> None:
        loop_thread = threading.get_ident()
        threads: list[int] = []

        def on_revoke(consumer: AIOConsumer, partitions: list[psc.TopicUriPartition]) -> None:
            threads.append(threading.get_ident())

        async with AIOConsumer(GROUP) as consumer:
            await consumer.subscribe([T1], None, on_revoke)
            backend.consumers[0].revoke = [BackendPartition("t1", 0)]
            await consumer.consume(1, 0)
        assert threads == [loop_thread]

    run(scenario())


def test_calls_from_other_tasks_wait_for_a_running_callback(backend: Backend) -> None:
    async def scenario() -> None:
        order: list[str] = []
        release = asyncio.Event()

        async def on_revoke(consumer: AIOConsumer, partitions: list[psc.TopicUriPartition]) -> None:
            order.append("revoke started")
            await release.wait()
            order.append("revoke done")

        async with AIOConsumer(GROUP) as consumer:
            await consumer.subscribe([T1], on_revoke=on_revoke)
            backend.consumers[0].revoke = [BackendPartition("t1", 0)]
            polling = asyncio.ensure_future(consumer.poll(0))
            while not order:
                await asyncio.sleep(0.01)
            other = asyncio.ensure_future(consumer.assignment())
            await asyncio.sleep(0.05)
            assert not other.done()  # serialized behind the poll the callback interrupted
            release.set()
            await polling
            await other
            order.append("assignment")
        assert order == ["revoke started", "revoke done", "assignment"]

    run(scenario())


def test_every_consumer_method_is_a_coroutine_of_the_aio_consumer() -> None:
    public = [name for name, _ in inspect.getmembers(psc.Consumer, inspect.isfunction) if not name.startswith("_")]
    assert "store_offsets" in public and "incremental_assign" in public
    missing = [name for name in public if not inspect.iscoroutinefunction(getattr(AIOConsumer, name, None))]
    assert missing == []


def test_a_closed_consumer_refuses_calls(backend: Backend) -> None:
    async def scenario() -> None:
        consumer = AIOConsumer(GROUP)
        await consumer.close()
        await consumer.close()
        with pytest.raises(RuntimeError, match="Consumer closed"):
            await consumer.poll(0)

    run(scenario())


def test_the_producer_refuses_success_reports_switched_off(backend: Backend) -> None:
    async def scenario() -> None:
        with pytest.raises(psc.ProducerError, match=r"delivery\.report\.only\.error"):
            AIOProducer({**CONFIG, "psc.producer.delivery.report.only.error": "true"})

    run(scenario())


def test_clients_need_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="no running event loop"):
        AIOConsumer(GROUP)


def test_config_callbacks_and_logger_are_moved_onto_the_loop() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        heard: list[tuple[str, int]] = []

        async def error_cb(err: str) -> str:
            await asyncio.sleep(0)
            heard.append((err, threading.get_ident()))
            return "handled"

        class Logger:
            def log(self, level: int, msg: str, *args: Any) -> None:
                heard.append((msg % args, threading.get_ident()))

        config = loop_config(loop, {"psc.producer.error_cb": error_cb, "logger": Logger(), "psc.project": "p"})
        assert config["psc.project"] == "p"
        # librdkafka calls back from its own thread: the callback runs on the loop and is waited for.
        result = await loop.run_in_executor(None, config["psc.producer.error_cb"], "broker down")
        assert result == "handled"
        await loop.run_in_executor(None, config["logger"].log, 40, "%s", "native line")
        await asyncio.sleep(0.01)
        assert heard == [("broker down", loop_thread), ("native line", loop_thread)]

    run(scenario())


def test_a_given_executor_lends_the_consumer_its_thread_and_stays_open(backend: Backend) -> None:
    async def scenario() -> None:
        with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="app-pool") as pool:
            async with AIOConsumer(GROUP, executor=pool) as consumer:
                await consumer.subscribe([T1])
                await consumer.poll(0)
            async with AIOProducer(CONFIG, executor=pool, buffer_timeout=0) as producer:
                future = await producer.produce(T1, b"x")
            assert future.result().value() == b"x"
        [fake] = backend.consumers
        [name] = fake.thread_names
        assert name.startswith("app-pool")

    run(scenario())
