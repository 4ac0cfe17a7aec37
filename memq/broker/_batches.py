"""Per-topic batching and the durable write path: seal, store, announce, then answer every request.

A batch collects producer messages of one topic until it reaches its byte or message limit or its time
runs out. Producer messages are stored whole, so a batch rarely lands exactly on ``batch_max_bytes``: the
message that reaches the size joins the batch and seals it, and the topic's next batch seals that much
earlier. A topic's size-sealed objects thus add up to their count times ``batch_max_bytes``, give or take
one message (PUTs per GiB = GiB / ``batch_max_bytes``), and none exceeds ``batch_max_bytes`` by more than
one message. (The reference refuses a message that would overshoot, so its objects fall short of the size
and cost more PUTs than the size promises.)

A sealed batch is uploaded by at most ``upload_parallelism`` tasks at once; the bytes of open and uploading
batches count against ``max_inflight_bytes``, and connections stop reading while that budget is exhausted,
so memory stays bounded without a queue. Each request learns its batch's outcome: OK only once the object
is stored and Kafka (acks=all) has acknowledged its notification; 502 when the upload or the notification
finally fails.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from memq._config import BrokerConfig, TopicConfig
from memq._format import Notification, encode_object_index, parse_object_index
from memq._wire import ResponseCode
from memq.broker._metrics import BrokerMetrics
from memq.storage import StorageHandler
from psc.common.log import get_logger

_log = get_logger("memq.broker")
_HOST = socket.gethostname()

Notifier = Callable[[str, Notification], Awaitable[None]]  # (notification topic, notification)


@dataclass(frozen=True, slots=True)
class Outcome:
    code: ResponseCode
    error: str = ""


@dataclass(eq=False)
class Batch:
    topic: TopicConfig
    first_request_id: int
    target: int  # bytes at which the batch seals: batch_max_bytes less the previous batch's overshoot
    messages: list[bytes | memoryview] = field(default_factory=list)  # as received, views into their frames
    waiters: list[asyncio.Future[Outcome]] = field(default_factory=list)
    size: int = 0
    sealed: str = ""  # what sealed it: size, count, time, flush or shutdown
    timer: asyncio.TimerHandle | None = None


class InflightBudget:
    """Bytes held by open and uploading batches; readers wait here while the cap is reached."""

    def __init__(self, cap: int, metrics: BrokerMetrics) -> None:
        self.cap = cap
        self.used = 0
        self._metrics = metrics
        self._room = asyncio.Event()
        self._room.set()

    async def wait_for_room(self) -> None:
        if not self._room.is_set():
            self._metrics.backpressure.inc()
            await self._room.wait()

    def take(self, size: int) -> None:
        self.used += size
        self._update()

    def give(self, size: int) -> None:
        self.used -= size
        self._update()

    def _update(self) -> None:
        self._metrics.inflight_bytes.set(self.used)
        if self.used < self.cap:
            self._room.set()
        else:
            self._room.clear()


class BatchManager:
    def __init__(
        self,
        config: BrokerConfig,
        stores: dict[str, StorageHandler],
        notify: Notifier,
        metrics: BrokerMetrics,
    ) -> None:
        self._config = config
        self._stores = stores
        self._notify = notify
        self._metrics = metrics
        self.budget = InflightBudget(config.max_inflight_bytes, metrics)
        self._open: dict[str, Batch] = {}
        self._overshoot: dict[str, int] = {}  # per topic: bytes its last size-sealed batch went past its target
        self._uploads: set[asyncio.Task[None]] = set()
        self._upload_slots = asyncio.Semaphore(config.upload_parallelism)
        # Server request ids name objects; a random start keeps restarted brokers from reusing names.
        self._server_ids = itertools.count(random.getrandbits(40))

    def add(self, topic: TopicConfig, message: bytes | memoryview, request_id: int) -> asyncio.Future[Outcome]:
        """Put a producer message in its topic's open batch; the future holds the batch's outcome."""
        batch = self._open.get(topic.name)
        if batch is None:
            target = topic.batch_max_bytes - self._overshoot.pop(topic.name, 0)
            batch = self._open[topic.name] = Batch(topic, request_id, target)
            loop = asyncio.get_running_loop()
            batch.timer = loop.call_later(topic.batch_max_ms / 1000, self._seal, batch, "time")
        waiter: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        batch.messages.append(message)
        batch.waiters.append(waiter)
        batch.size += len(message)
        self.budget.take(len(message))
        self._metrics.bytes_in.labels(topic.name).inc(len(message))
        self._metrics.messages_in.labels(topic.name).inc()
        if batch.size >= batch.target:
            self._overshoot[topic.name] = batch.size - batch.target
            self._seal(batch, "size")
        elif len(batch.messages) >= topic.batch_max_messages:
            self._seal(batch, "count")
        return waiter

    def seal_topic(self, topic: str, reason: str) -> None:
        """Seal ``topic``'s open batch now, if it has one."""
        batch = self._open.get(topic)
        if batch is not None:
            self._seal(batch, reason)

    def seal_all(self, reason: str = "shutdown") -> None:
        for batch in list(self._open.values()):
            self._seal(batch, reason)

    async def drain(self) -> None:
        """Wait until every sealed batch is stored and answered."""
        while self._uploads:
            await asyncio.gather(*list(self._uploads), return_exceptions=True)

    def _seal(self, batch: Batch, reason: str) -> None:
        if batch.sealed:
            return
        batch.sealed = reason
        if batch.timer is not None:
            batch.timer.cancel()
        if self._open.get(batch.topic.name) is batch:
            del self._open[batch.topic.name]
        self._metrics.batches.labels(batch.topic.name, reason).inc()
        task = asyncio.get_running_loop().create_task(self._finish(batch))
        self._uploads.add(task)
        task.add_done_callback(self._uploads.discard)

    async def _finish(self, batch: Batch) -> None:
        try:
            async with self._upload_slots:
                outcome = await self._store_and_announce(batch)
        except Exception as exc:  # a bug must still answer every producer, never leave them waiting
            _log.exception("batch_failed_unexpectedly", topic=batch.topic.name)
            outcome = Outcome(ResponseCode.INTERNAL_SERVER_ERROR, f"broker error: {exc!r}")
        finally:
            self.budget.give(batch.size)
        self._metrics.objects.labels("stored" if outcome.code == ResponseCode.OK else "failed").inc()
        for waiter in batch.waiters:
            if not waiter.done():
                waiter.set_result(outcome)

    async def _store_and_announce(self, batch: Batch) -> Outcome:
        topic = batch.topic
        store = self._stores[topic.name]
        index_bytes = encode_object_index(batch.messages)
        index = parse_object_index(index_bytes)
        server_id = next(self._server_ids)
        started = time.monotonic()
        key = ""
        stored_attempt = -1
        for attempt in range(self._config.upload_attempts):
            key = store.object_key(
                topic.name,
                client_request_id=batch.first_request_id,
                server_request_id=server_id,
                attempt=attempt,
                host=_HOST,
            )
            try:
                await asyncio.wait_for(
                    asyncio.to_thread(store.put, key, [index_bytes, *batch.messages]),
                    self._config.upload_attempt_timeout_s,
                )
            except Exception as exc:  # storage errors, timeouts: retry with backoff, then give up
                _log.warning("upload_failed", topic=topic.name, key=key, attempt=attempt, error=repr(exc))
                if attempt + 1 < self._config.upload_attempts:
                    self._metrics.upload_retries.inc()
                    await asyncio.sleep(min(self._config.upload_backoff_s * 2**attempt, 2.0))
                continue
            stored_attempt = attempt
            break
        if stored_attempt < 0:
            return Outcome(ResponseCode.REQUEST_FAILED, f"upload failed after {self._config.upload_attempts} attempts")
        self._metrics.upload_seconds.observe(time.monotonic() - started)
        self._metrics.object_bytes.observe(index.object_size)
        self._metrics.stored_bytes.labels(topic.name, batch.sealed).inc(index.object_size)
        notification = store.notification(
            key,
            topic=topic.name,
            header_size=index.header_size,
            messages_size=index.messages_size,
            message_count=len(index.entries),
            attempts=stored_attempt,
        )
        started = time.monotonic()
        try:
            await asyncio.wait_for(self._notify(topic.notification_topic, notification), self._config.notify_timeout_s)
        except Exception as exc:
            # The object stays stored but unannounced: consumers never see it, producers resend on 502.
            _log.error("notify_failed", topic=topic.name, key=key, error=repr(exc))
            return Outcome(ResponseCode.REQUEST_FAILED, f"notification failed: {exc}")
        self._metrics.notify_seconds.observe(time.monotonic() - started)
        _log.debug("batch_stored", topic=topic.name, key=key, messages=len(batch.messages), bytes=index.object_size)
        return Outcome(ResponseCode.OK)
