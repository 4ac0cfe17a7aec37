"""AIOConsumer: confluent-kafka's ``confluent_kafka.aio.AIOConsumer`` over topic URIs."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator, Callable
from typing import Any, Self

from psc._consumer import Consumer
from psc._message import Message
from psc.aio._common import Worker, loop_config, on_loop

_REBALANCE = ("on_assign", "on_revoke", "on_lost")
_ITERATION_POLL_S = 0.1


class AIOConsumer:
    """A :class:`psc.Consumer` for asyncio: every method is a coroutine and never blocks the event loop.

    As in confluent-kafka, it must be created with the event loop running, and its calls are serialized:
    they run one at a time, in the order made, on one thread (librdkafka consumers are not thread-safe).
    Callbacks (``on_assign``/``on_revoke``/``on_lost``, ``on_commit``, ``error_cb``, ``stats_cb``,
    ``throttle_cb``), plain or coroutine functions, run on the event loop and are awaited before the
    consumer goes on: a commit made by ``on_revoke`` is done before the partitions are revoked. Calls a
    callback makes to this consumer are admitted at once. Rebalance callbacks get the ``AIOConsumer``.

    ``max_workers`` is accepted as confluent-kafka's is; with ``executor``, the consumer's thread is one
    borrowed from it for the consumer's lifetime. Other keyword arguments go to :class:`psc.Consumer`.
    """

    def __init__(
        self,
        consumer_conf: dict[str, Any],
        max_workers: int = 100,
        executor: concurrent.futures.Executor | None = None,
        **options: Any,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._worker = Worker("psc-aio-consumer", executor)
        if callable(options.get("on_commit")):
            options["on_commit"] = on_loop(self._loop, options["on_commit"], self._worker)
        try:
            self._consumer = Consumer(loop_config(self._loop, consumer_conf, self._worker), **options)
        except BaseException:
            self._worker.stop()
            raise

    @property
    def consumer(self) -> Consumer:
        """The underlying :class:`psc.Consumer`."""
        return self._consumer

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            raise RuntimeError("Consumer closed")
        return await self._worker.call(method, *args, **kwargs)

    def _rebalance(self, callback: Any) -> Any:
        if not callable(callback):
            return callback
        return on_loop(self._loop, lambda _consumer, partitions: callback(self, partitions), self._worker)

    async def subscribe(self, *args: Any, **kwargs: Any) -> None:
        """``subscribe(topics, on_assign=None, on_revoke=None, on_lost=None)`` with topic URIs."""
        args = (*args[:1], *(self._rebalance(cb) for cb in args[1:]))
        kwargs = {k: self._rebalance(v) if k in _REBALANCE else v for k, v in kwargs.items()}
        await self._call(self._consumer.subscribe, *args, **kwargs)

    async def unsubscribe(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.unsubscribe, *args, **kwargs)

    async def assign(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.assign, *args, **kwargs)

    async def unassign(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.unassign, *args, **kwargs)

    async def incremental_assign(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.incremental_assign, *args, **kwargs)

    async def incremental_unassign(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.incremental_unassign, *args, **kwargs)

    async def assignment(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.assignment, *args, **kwargs)

    async def poll(self, *args: Any, **kwargs: Any) -> Any:
        """One message, error message or None. Prefer ``consume``: it pays the thread hop once per batch."""
        return await self._call(self._consumer.poll, *args, **kwargs)

    async def consume(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.consume, *args, **kwargs)

    async def commit(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.commit, *args, **kwargs)

    async def store_offsets(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.store_offsets, *args, **kwargs)

    async def committed(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.committed, *args, **kwargs)

    async def position(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.position, *args, **kwargs)

    async def seek(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.seek, *args, **kwargs)

    async def seek_to_beginning(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.seek_to_beginning, *args, **kwargs)

    async def seek_to_end(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.seek_to_end, *args, **kwargs)

    async def seek_to_timestamp(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.seek_to_timestamp, *args, **kwargs)

    async def pause(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.pause, *args, **kwargs)

    async def resume(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.resume, *args, **kwargs)

    async def get_watermark_offsets(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.get_watermark_offsets, *args, **kwargs)

    async def offsets_for_times(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.offsets_for_times, *args, **kwargs)

    async def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.list_topics, *args, **kwargs)

    async def consumer_group_metadata(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.consumer_group_metadata, *args, **kwargs)

    async def cluster_id(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.cluster_id, *args, **kwargs)

    async def memberid(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._consumer.memberid, *args, **kwargs)

    async def close(self, *args: Any, **kwargs: Any) -> None:
        """Leave the group and release the consumer; later calls raise ``RuntimeError``. Idempotent."""
        if self._closed:
            return
        try:
            await self._call(self._consumer.close, *args, **kwargs)
        finally:
            self._closed = True
            self._worker.stop()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Message]:
        """Messages until the consumer is closed; polls in short slices so that close() is noticed."""
        while not self._closed:
            message = await self._call(self._consumer.poll, _ITERATION_POLL_S)
            if message is not None:
                yield message

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
