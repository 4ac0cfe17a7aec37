"""AIOProducer: confluent-kafka's ``confluent_kafka.aio.AIOProducer`` over topic URIs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from confluent_kafka import KafkaException

from psc._message import Message
from psc._producer import Producer
from psc.aio._common import loop_config
from psc.common import LogThrottle, get_logger
from psc.errors import ProducerError

_log = get_logger("psc.aio")
_REPORT_POLL_S = 0.1
_RETRY_PAUSE_S = 0.1


@dataclass(slots=True)
class _Record:
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: asyncio.Future[Message]


def _delivery_error(err: Any) -> BaseException:
    """What a failed delivery's future raises: the error itself, or confluent-kafka's ``KafkaException`` of it."""
    return err if isinstance(err, BaseException) else KafkaException(err)


class AIOProducer:
    """A :class:`psc.Producer` for asyncio, with confluent-kafka's ``AIOProducer`` semantics.

    ``await produce(...)`` buffers the record and returns at once with an ``asyncio.Future`` that resolves
    to the delivered :class:`psc.Message` (or raises the delivery error, a ``KafkaException``): awaiting
    ``produce`` does not wait for delivery, awaiting its future does. The buffer goes to the producer, on
    the executor's threads, when it holds ``batch_size`` records, after ``buffer_timeout`` seconds without
    a new record (0: never by time), and on ``flush``, ``close`` and the transaction calls. Delivery reports
    are served in the background while records are outstanding. A per-record ``on_delivery``/``callback``
    (plain or coroutine function) and the config's ``error_cb``/``stats_cb``/``throttle_cb`` run on the
    event loop. Other keyword arguments go to :class:`psc.Producer`. Create it with the loop running.
    """

    def __init__(
        self,
        producer_conf: dict[str, Any],
        max_workers: int = 4,
        executor: concurrent.futures.Executor | None = None,
        batch_size: int = 1000,
        buffer_timeout: float = 1.0,
        **options: Any,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._owns_executor = executor is None
        self.executor = executor or concurrent.futures.ThreadPoolExecutor(max_workers, "psc-aio-producer")
        self._producer = Producer(loop_config(self._loop, producer_conf), **options)
        if self._producer._settings.only_errors:
            self._producer.close(0)
            raise ProducerError(
                "AIOProducer resolves each record's future from its success report: it is unavailable with "
                "psc.producer.delivery.report.only.error=true"
            )
        self._batch_size = batch_size
        self._buffer_timeout = buffer_timeout
        self._buffer: list[_Record] = []
        self._last_activity = self._loop.time()
        self._sending = asyncio.Lock()  # batches reach the producer whole and in order
        self._wake = asyncio.Event()
        self._closed = False
        self._callbacks: set[asyncio.Future[Any]] = set()  # coroutine delivery callbacks still running
        self._throttle = LogThrottle(_log)
        self._server = self._loop.create_task(self._serve(), name="psc-aio-producer")

    @property
    def producer(self) -> Producer:
        """The underlying :class:`psc.Producer`."""
        return self._producer

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self._loop.run_in_executor(self.executor, lambda: method(*args, **kwargs))

    # --- producing -----------------------------------------------------------------------------------

    async def produce(self, topic: str, value: Any = None, key: Any = None, *args: Any, **kwargs: Any) -> Any:
        """Buffer a record for the topic URI ``topic``; returns the future of its delivery."""
        if self._closed:
            raise RuntimeError("Producer closed")
        future: asyncio.Future[Message] = self._loop.create_future()
        self._buffer.append(_Record((topic, value, key, *args), kwargs, future))
        self._last_activity = self._loop.time()
        self._wake.set()
        if len(self._buffer) >= self._batch_size:
            await self._send_buffer()
        return future

    async def _send_buffer(self) -> None:
        async with self._sending:
            batch, self._buffer = self._buffer, []
            if batch:
                await self._call(self._produce_batch, batch)
                self._wake.set()

    def _produce_batch(self, batch: list[_Record]) -> None:
        """On an executor thread: hand the records to the producer, then serve the reports already in."""
        produce: Any = self._producer.produce
        for record in batch:
            kwargs = dict(record.kwargs)
            callback = kwargs.pop("on_delivery", None) or kwargs.pop("callback", None)
            try:
                produce(*record.args, on_delivery=self._reporter(record.future, callback), **kwargs)
            except Exception as exc:
                self._settle_soon(record.future, callback, exc, None)
        self._producer.poll(0)

    def _reporter(self, future: asyncio.Future[Message], callback: Any) -> Callable[[Any, Any], None]:
        return lambda err, msg: self._settle_soon(future, callback, err, msg)

    def _settle_soon(self, future: asyncio.Future[Message], callback: Any, err: Any, msg: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to tell
            self._loop.call_soon_threadsafe(self._settle, future, callback, err, msg)

    def _settle(self, future: asyncio.Future[Message], callback: Any, err: Any, msg: Any) -> None:
        if not future.done():
            if err is None:
                future.set_result(msg)
            else:
                future.set_exception(_delivery_error(err))
        if callback is not None:
            result = callback(err, msg)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._callbacks.add(task)
                task.add_done_callback(self._callbacks.discard)

    async def _serve(self) -> None:
        """Send an idle buffer after ``buffer_timeout``; serve delivery reports while any are outstanding."""
        while not self._closed:
            try:
                idle = self._loop.time() - self._last_activity
                timed = self._buffer_timeout > 0 and bool(self._buffer)
                if timed and idle >= self._buffer_timeout:
                    await self._send_buffer()
                    self._last_activity = self._loop.time()
                elif len(self._producer):
                    await self._call(self._producer.poll, _REPORT_POLL_S)
                elif timed:
                    await asyncio.sleep(self._buffer_timeout - idle)
                else:
                    self._wake.clear()
                    await self._wake.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._throttle.log("warning", "serve", "serving the producer failed", error=repr(exc))
                await asyncio.sleep(_RETRY_PAUSE_S)

    # --- the rest of the producer API ----------------------------------------------------------------

    async def poll(self, timeout: float = 0, *args: Any, **kwargs: Any) -> int:
        """Serve delivery reports and callbacks; returns how many were served."""
        return int(await self._call(self._producer.poll, timeout, *args, **kwargs))

    async def flush(self, *args: Any, **kwargs: Any) -> int:
        """Send the buffer, then wait (up to an optional timeout) for every delivery; returns what is left."""
        await self._send_buffer()
        self._last_activity = self._loop.time()
        return int(await self._call(self._producer.flush, *args, **kwargs))

    async def purge(self, *args: Any, **kwargs: Any) -> None:
        """Drop the buffered records (their futures are cancelled) and purge the producer's queues."""
        buffered, self._buffer = self._buffer, []
        for record in buffered:
            record.future.cancel()
        self._last_activity = self._loop.time()
        await self._call(self._producer.purge, *args, **kwargs)

    async def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        return await self._call(self._producer.list_topics, *args, **kwargs)

    async def init_transactions(self, *args: Any, **kwargs: Any) -> None:
        await self._call(self._producer.init_transactions, *args, **kwargs)

    async def begin_transaction(self, *args: Any, **kwargs: Any) -> None:
        """Flush first, as confluent-kafka does, so that no earlier record falls into the transaction."""
        await self.flush()
        await self._call(self._producer.begin_transaction, *args, **kwargs)

    async def send_offsets_to_transaction(self, *args: Any, **kwargs: Any) -> None:
        await self._call(self._producer.send_offsets_to_transaction, *args, **kwargs)

    async def commit_transaction(self, *args: Any, **kwargs: Any) -> None:
        """Flush the transaction's records, then commit it."""
        await self.flush()
        await self._call(self._producer.commit_transaction, *args, **kwargs)

    async def abort_transaction(self, *args: Any, **kwargs: Any) -> None:
        """Flush, then abort: records produced in the transaction are aborted."""
        await self.flush()
        await self._call(self._producer.abort_transaction, *args, **kwargs)

    def __len__(self) -> int:
        """Records not yet delivered: buffered here plus queued in the producer."""
        return len(self._buffer) + len(self._producer)

    async def close(self, timeout: float | None = None) -> None:
        """Flush (up to ``timeout``; default: until done), then release the producer and its threads."""
        if self._closed:
            return
        self._closed = True
        self._server.cancel()
        try:
            await self.flush(timeout)
        finally:
            await self._call(self._producer.close, 0)
            if self._owns_executor:
                await self._loop.run_in_executor(None, self.executor.shutdown, True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
