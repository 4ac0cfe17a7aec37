"""asyncio clients: the blocking PSC clients driven from a dedicated thread, never from the event loop.

:class:`AsyncProducer` queues records on the calling thread (``produce`` only enqueues) and serves
delivery reports from one background thread, so ``await producer.produce(...)`` resolves when the record
is delivered. Blocking calls (flush, transactions, metadata) run on the client's own single-thread
executor. :class:`AsyncConsumer` runs every consumer call on its own single thread, as librdkafka
consumers expect, and supports ``async for message in consumer``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from psc._consumer import Consumer, RebalanceCallback
from psc._message import Message, MessageId, TopicUriPartition
from psc._producer import Producer
from psc.backends.base import ClusterMetadata

T = TypeVar("T")

_POLL_INTERVAL_S = 0.05


class _Executor:
    """One worker thread per client, so blocking calls never run on (or block) the event loop."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(func, *args, **kwargs))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False)


class AsyncProducer:
    """The asyncio face of :class:`~psc.Producer`: ``await produce(...)`` returns the delivered MessageId."""

    def __init__(self, config: Mapping[str, Any], **options: Any) -> None:
        self._producer = Producer(config, **options)
        self._executor = _Executor("psc-async-producer")
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._serve_reports, name="psc-async-producer-poll", daemon=True)
        self._poller.start()

    @property
    def producer(self) -> Producer:
        """The underlying blocking producer."""
        return self._producer

    def _serve_reports(self) -> None:
        while not self._stop.is_set():
            try:
                self._producer.poll(_POLL_INTERVAL_S)
            except Exception:  # closed underneath us, or a callback failed: keep serving until stopped
                self._stop.wait(_POLL_INTERVAL_S)

    def send(
        self,
        topic_uri: str,
        value: Any = None,
        key: Any = None,
        partition: int = -1,
        timestamp: int = 0,
        headers: Any = None,
    ) -> asyncio.Future[MessageId]:
        """Queue a record; the returned asyncio future resolves to its MessageId once delivered."""
        future = self._producer.send(topic_uri, value, key, partition, timestamp, headers)
        return asyncio.wrap_future(future)

    async def produce(
        self,
        topic_uri: str,
        value: Any = None,
        key: Any = None,
        partition: int = -1,
        timestamp: int = 0,
        headers: Any = None,
    ) -> MessageId:
        """Queue a record and wait for its delivery."""
        return await self.send(topic_uri, value, key, partition, timestamp, headers)

    async def flush(self, timeout: float | None = None) -> int:
        return await self._executor.run(self._producer.flush, timeout)

    async def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        await self._executor.run(self._producer.purge, in_queue, in_flight, blocking)

    async def list_topics(self, topic_uri: str | None = None, timeout: float = -1) -> ClusterMetadata:
        return await self._executor.run(self._producer.list_topics, topic_uri, timeout)

    async def init_transactions(self, timeout: float = -1) -> None:
        await self._executor.run(self._producer.init_transactions, timeout)

    async def begin_transaction(self) -> None:
        await self._executor.run(self._producer.begin_transaction)

    async def commit_transaction(self, timeout: float = -1) -> None:
        await self._executor.run(self._producer.commit_transaction, timeout)

    async def abort_transaction(self, timeout: float = -1) -> None:
        await self._executor.run(self._producer.abort_transaction, timeout)

    async def send_offsets_to_transaction(
        self, offsets: Iterable[TopicUriPartition], group_metadata: Any, timeout: float = -1
    ) -> None:
        await self._executor.run(self._producer.send_offsets_to_transaction, list(offsets), group_metadata, timeout)

    def __len__(self) -> int:
        return len(self._producer)

    async def close(self, timeout: float | None = None) -> None:
        """Flush (up to ``timeout``) and release the producer and its threads."""
        try:
            await self._executor.run(self._producer.flush, timeout)
        finally:
            self._stop.set()
            await asyncio.get_running_loop().run_in_executor(None, self._poller.join)
            await self._executor.run(self._producer.close, 0)
            self._executor.shutdown()

    async def __aenter__(self) -> AsyncProducer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncConsumer:
    """The asyncio face of :class:`~psc.Consumer`; rebalance callbacks run on the consumer's thread."""

    def __init__(self, config: Mapping[str, Any], **options: Any) -> None:
        self._consumer = Consumer(config, **options)
        self._executor = _Executor("psc-async-consumer")
        self._closed = False

    @property
    def consumer(self) -> Consumer:
        """The underlying blocking consumer."""
        return self._consumer

    async def subscribe(
        self,
        topic_uris: Sequence[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        await self._executor.run(self._consumer.subscribe, topic_uris, on_assign, on_revoke, on_lost)

    async def unsubscribe(self) -> None:
        await self._executor.run(self._consumer.unsubscribe)

    async def assign(self, partitions: Sequence[TopicUriPartition]) -> None:
        await self._executor.run(self._consumer.assign, partitions)

    async def unassign(self) -> None:
        await self._executor.run(self._consumer.unassign)

    async def incremental_assign(self, partitions: Sequence[TopicUriPartition]) -> None:
        await self._executor.run(self._consumer.incremental_assign, partitions)

    async def incremental_unassign(self, partitions: Sequence[TopicUriPartition]) -> None:
        await self._executor.run(self._consumer.incremental_unassign, partitions)

    async def assignment(self) -> list[TopicUriPartition]:
        return await self._executor.run(self._consumer.assignment)

    async def poll(self, timeout: float | None = None) -> Message | None:
        return await self._executor.run(self._consumer.poll, timeout)

    async def consume(self, num_messages: int = 1, timeout: float | None = None) -> list[Message]:
        return await self._executor.run(self._consumer.consume, num_messages, timeout)

    async def commit(
        self,
        message: Message | MessageId | None = None,
        offsets: Sequence[TopicUriPartition] | None = None,
        asynchronous: bool = True,
    ) -> list[TopicUriPartition] | None:
        return await self._executor.run(self._consumer.commit, message, offsets, asynchronous)

    async def committed(self, partitions: Sequence[TopicUriPartition], timeout: float = -1) -> list[TopicUriPartition]:
        return await self._executor.run(self._consumer.committed, partitions, timeout)

    async def position(self, partitions: Sequence[TopicUriPartition]) -> list[TopicUriPartition]:
        return await self._executor.run(self._consumer.position, partitions)

    async def seek(self, partition: TopicUriPartition) -> None:
        await self._executor.run(self._consumer.seek, partition)

    async def seek_to_beginning(self, partitions: Sequence[TopicUriPartition] | None = None) -> None:
        await self._executor.run(self._consumer.seek_to_beginning, partitions)

    async def seek_to_end(self, partitions: Sequence[TopicUriPartition] | None = None) -> None:
        await self._executor.run(self._consumer.seek_to_end, partitions)

    async def seek_to_timestamp(
        self, timestamp_ms: int, partitions: Sequence[TopicUriPartition] | None = None, timeout: float = -1
    ) -> None:
        await self._executor.run(self._consumer.seek_to_timestamp, timestamp_ms, partitions, timeout)

    async def pause(self, partitions: Sequence[TopicUriPartition]) -> None:
        await self._executor.run(self._consumer.pause, partitions)

    async def resume(self, partitions: Sequence[TopicUriPartition]) -> None:
        await self._executor.run(self._consumer.resume, partitions)

    async def get_watermark_offsets(
        self, partition: TopicUriPartition, timeout: float = -1, cached: bool = False
    ) -> tuple[int, int] | None:
        return await self._executor.run(self._consumer.get_watermark_offsets, partition, timeout, cached)

    async def offsets_for_times(
        self, partitions: Sequence[TopicUriPartition], timeout: float = -1
    ) -> list[TopicUriPartition]:
        return await self._executor.run(self._consumer.offsets_for_times, partitions, timeout)

    async def list_topics(self, topic_uri: str | None = None, timeout: float = -1) -> ClusterMetadata:
        return await self._executor.run(self._consumer.list_topics, topic_uri, timeout)

    async def consumer_group_metadata(self, topic_uri: str | None = None) -> Any:
        return await self._executor.run(self._consumer.consumer_group_metadata, topic_uri)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._executor.run(self._consumer.close)
        finally:
            self._executor.shutdown()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Message]:
        """Messages until the consumer is closed; polls in short slices so close() is noticed."""
        while not self._closed:
            message = await self._executor.run(self._consumer.poll, 0.1)
            if message is not None:
                yield message

    async def __aenter__(self) -> AsyncConsumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
