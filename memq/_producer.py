"""The MemQ producer: records become compressed producer messages, sent to brokers over the wire protocol.

``produce`` appends a record to its topic's open request and returns (in C for the common record, see
``memq._accel``); a request is sealed when it would exceed ``max_request_bytes`` or ``linger_ms`` after its
first record. Sealed requests are encoded and compressed on ``encoder_threads`` threads, then go out in
sealing order from one background thread running an asyncio loop, at most ``max_inflight_requests`` at a
time, to the topic's brokers in turn. A lost connection sends the request to
the next broker until ``request_timeout_ms`` (which covers the broker's acknowledgement) runs out; any answer
but OK fails the request's records.

Records waiting for their acknowledgement hold their bytes against ``max_inflight_bytes``: ``produce`` blocks
up to ``max_block_ms`` for room, then raises ``BufferError``. Delivery callbacks ``on_delivery(err, record)``
run in ``poll``/``flush`` on the caller's thread (confluent-kafka's shape); futures from ``send`` resolve as
soon as the answer arrives. ``flush`` ends by asking each broker it wrote to to seal its topics' open batches.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import itertools
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from memq._accel import OpenBase, ProducerBase
from memq._compression import Compression
from memq._config import ProducerConfig
from memq._errors import MemqError
from memq._format import HEADER_LENGTH, Record, encode_empty_message, encode_records, seal_message
from memq._wire import (
    CLIENT_VERSION,
    BrokerAddress,
    FrameError,
    MetadataRequest,
    Request,
    Response,
    ResponseCode,
    TopicMetadata,
    WriteRequest,
    decode_metadata,
    decode_response,
    encode_request_parts,
    read_frame,
)
from psc.common.log import LogThrottle, get_logger

__all__ = ["DeliveredRecord", "DeliveryError", "Producer", "ProducerError"]

_log = get_logger("memq.producer")

Buffer = bytes | bytearray | memoryview
DeliveryCallback = Callable[[Any, Any], None]  # (DeliveryError | None, DeliveredRecord)
Headers = tuple[tuple[str, bytes], ...]
Report = DeliveryCallback | Future["DeliveredRecord"]
_WRITE_OVERHEAD = 15 + 1 + 2 + 4 + 4  # request header + v3 write header, without the topic name
_RECORD_FIXED = 2 + 8 + 1 + 2 + 4 + 4  # a record's length fields and timestamp (see encoded_record_size)
_COMPRESSION = {"none": Compression.NONE, "gzip": Compression.GZIP, "zstd": Compression.ZSTD}
_RETRY_CODES = {ResponseCode.SERVICE_UNAVAILABLE, ResponseCode.REDIRECT}
_DOWN_S = 5.0  # how long a broker that failed is passed over while others remain
_time = time.time


class ProducerError(MemqError):
    """A record or request the producer refuses or could not deliver; ``code`` is the broker's or ours."""

    def __init__(self, message: str, code: int = -1, retriable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.is_retriable = retriable


@dataclass(frozen=True, slots=True)
class DeliveryError:
    """Why a record was not delivered, shaped like confluent-kafka's ``KafkaError``."""

    error_code: int
    message: str
    is_retriable: bool = False

    def code(self) -> int:
        return self.error_code

    def name(self) -> str:
        try:
            return ResponseCode(self.error_code).name
        except ValueError:
            return {-1: "TIMED_OUT", -2: "CONNECTION_LOST", -3: "CLOSED"}.get(self.error_code, "UNKNOWN")

    def str(self) -> str:
        return self.message

    def retriable(self) -> bool:
        return self.is_retriable

    def fatal(self) -> bool:
        return False

    def __str__(self) -> builtins.str:
        return f"{self.name()}: {self.message}"


TIMED_OUT, CONNECTION_LOST, CLOSED = -1, -2, -3


@dataclass(frozen=True, slots=True)
class DeliveredRecord:
    """A produced record as its delivery report sees it, shaped like confluent-kafka's ``Message``.

    MemQ gives records no offset until a consumer reads their notification, so ``offset()`` is -1001.
    """

    topic_name: str
    record: Record
    err: DeliveryError | None = None

    def topic(self) -> str:
        return self.topic_name

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return -1001

    def timestamp(self) -> tuple[int, int]:
        return (1, self.record.timestamp_ms)

    def key(self) -> bytes | None:
        return self.record.key

    def value(self) -> bytes:
        return self.record.value

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return list(self.record.headers) or None

    def error(self) -> DeliveryError | None:
        return self.err


class _Open(OpenBase):
    """A request being filled, column by column: no object per record, one join to encode it.

    ``headers`` and ``reports`` stay None until a record has headers or its own report (then they hold one
    entry per record); records without a report use the producer's default ``on_delivery``. The columns and
    sizes live in :class:`OpenBase`, where the C fast path of ``produce`` appends to them.
    """

    __slots__ = ("due", "linger_until", "topic")

    def __init__(
        self,
        topic: str,
        capacity: int,
        values: list[bytes] | None = None,
        keys: list[bytes | None] | None = None,
        stamps: list[int] | None = None,
        sealed: bool = False,
    ) -> None:
        self.topic = topic
        self.capacity = capacity  # record bytes (uncompressed) the request can carry
        self.values = [] if values is None else values
        self.keys = [] if keys is None else keys
        self.stamps = [] if stamps is None else stamps
        self.headers = None
        self.reports = None
        self.size = 0  # uncompressed record bytes, as the format encodes them
        self.sealed = sealed
        self.linger_until = 0.0  # monotonic time at which linger_ms runs out
        self.due = False  # linger ran out while every in-flight slot was taken: sealed when one frees

    def add(self, value: bytes, key: bytes | None, stamp: int, headers: Headers, report: Report | None) -> None:
        count = len(self.values)
        self.values.append(value)
        self.keys.append(key)
        self.stamps.append(stamp)
        if headers and self.headers is None:
            self.headers = [()] * count
        if self.headers is not None:
            self.headers.append(headers)
        if report is not None and self.reports is None:
            self.reports = [None] * count
        if self.reports is not None:
            self.reports.append(report)

    def record(self, index: int) -> Record:
        headers = self.headers[index] if self.headers is not None else ()
        return Record(self.values[index], self.keys[index] or None, headers, self.stamps[index])

    def split(self) -> tuple[_Open, _Open]:
        """Two sealed halves (of a request of at least two records) that carry its records and size."""
        half = len(self.values) // 2
        halves = []
        for part in (slice(0, half), slice(half, None)):
            piece = _Open(self.topic, self.capacity, self.values[part], self.keys[part], self.stamps[part], sealed=True)
            piece.headers = None if self.headers is None else self.headers[part]
            piece.reports = None if self.reports is None else self.reports[part]
            halves.append(piece)
        first, second = halves
        first.size = sum(
            _record_size(first.values[i], first.keys[i], first.headers[i] if first.headers else ()) for i in range(half)
        )
        second.size = self.size - first.size
        return first, second


def _record_size(value: bytes, key: bytes | None, headers: Headers) -> int:
    """Bytes of one record in a message body before compression (no message id: this producer sets none)."""
    size = _RECORD_FIXED + len(value) + (len(key) if key else 0)
    return size + sum(4 + len(name.encode()) + len(v) for name, v in headers) if headers else size


def _local_ipv4() -> bytes:
    try:
        return socket.inet_aton(socket.gethostbyname(socket.gethostname()))
    except OSError:
        return socket.inet_aton("127.0.0.1")


class _Connection:
    """One broker connection; a reader task resolves answers by client request id, in any order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.waiting: dict[int, asyncio.Future[Response]] = {}
        self.closed = False
        self._reader_task = asyncio.get_running_loop().create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        error: BaseException = ConnectionError("connection closed by the broker")
        try:
            while True:
                frame = await read_frame(reader)
                if frame is None:
                    break
                response = decode_response(frame)
                waiter = self.waiting.pop(response.request_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(response)
        except (OSError, FrameError, ssl.SSLError) as exc:
            error = ConnectionError(f"connection failed: {exc}")
        finally:
            self.close(error)

    async def call(self, request: Request) -> Response:
        if self.closed:
            raise ConnectionError("connection is closed")
        waiter: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.waiting[request.request_id] = waiter
        for part in encode_request_parts(request):  # the message itself is handed to the transport as is
            self.writer.write(part)
        try:
            await self.writer.drain()
            return await waiter
        finally:
            self.waiting.pop(request.request_id, None)

    def close(self, error: BaseException) -> None:
        self.closed = True
        for waiter in self.waiting.values():
            if not waiter.done():
                waiter.set_exception(error)
        self.waiting.clear()
        self.writer.close()


class Producer(ProducerBase):
    """A MemQ producer: ``Producer(brokers=["host:port"])`` or ``Producer(ProducerConfig(...))``."""

    def __init__(
        self,
        config: ProducerConfig | Mapping[str, Any] | None = None,
        *,
        on_delivery: DeliveryCallback | None = None,
        **settings: Any,
    ) -> None:
        """``on_delivery`` is the default delivery callback of records produced without one of their own."""
        if isinstance(config, ProducerConfig):
            self.config = config.model_copy(update=settings) if settings else config
        else:
            self.config = ProducerConfig.model_validate({**(config or {}), **settings})
        self._compression = _COMPRESSION[self.config.compression]
        self._on_delivery = on_delivery
        self._max_buffered = self.config.max_inflight_bytes
        self._epoch = int(time.time() * 1000)
        self._address = _local_ipv4()
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._open: dict[str, _Open] = {}
        self._ticking = False  # the linger timer is scheduled (see _tick)
        self._buffered = 0  # bytes of records produced and not yet answered
        self._unanswered = 0  # records produced and not yet answered
        self._requests = 0  # sealed requests not yet answered
        self._unwritten = 0  # sealed requests not yet written to a broker connection
        self._fed: set[tuple[str, BrokerAddress]] = set()  # (topic, broker) written to since the last flush
        self._reports: queue.SimpleQueue[tuple[DeliveryCallback, DeliveryError | None, DeliveredRecord]]
        self._reports = queue.SimpleQueue()
        self._closed = False
        self._bootstrap = [_parse_address(b) for b in self.config.brokers]
        self._brokers: dict[str, list[BrokerAddress]] = {}  # per topic, from TOPIC_METADATA
        self._known: set[BrokerAddress] = set()  # every broker metadata ever named
        self._down: dict[BrokerAddress, float] = {}  # brokers that failed, skipped until this monotonic time
        self._connections: dict[BrokerAddress, _Connection] = {}
        self._turn = itertools.count()
        self._ssl = _client_tls(self.config)
        self._repeats = LogThrottle(_log)  # a broker that is down fails every request: one line per interval
        self._loop = asyncio.new_event_loop()
        self._inflight = asyncio.Semaphore(self.config.max_inflight_requests)
        self._thread = threading.Thread(target=self._loop.run_forever, name="memq-producer", daemon=True)
        self._thread.start()
        # Requests are encoded and compressed on threads of their own while the caller fills the next one
        # (zstd and CRC32 release the GIL), as librdkafka does on its broker threads; each waits for the one
        # sealed before it to be handed to the network, so requests leave in the order they were sealed.
        self._encoder = ThreadPoolExecutor(self.config.encoder_threads, thread_name_prefix="memq-encode")
        self._order = threading.Lock()  # hands off in sealing order: the chain below and the pool's queue agree
        self._previous = threading.Event()  # set once the request sealed last is handed to the network
        self._previous.set()

    # -- producing ------------------------------------------------------------------------------------

    def send(
        self,
        topic: str,
        value: Buffer,
        key: Buffer | None = None,
        headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None = None,
        timestamp: int = 0,
    ) -> Future[DeliveredRecord]:
        """Queue a record; the future resolves to its :class:`DeliveredRecord` or fails with ProducerError."""
        future: Future[DeliveredRecord] = Future()
        self._append(topic, value, key, headers, timestamp, future)
        return future

    def _append(
        self,
        topic: str,
        value: Buffer,
        key: Buffer | None,
        headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None,
        timestamp: int,
        report: DeliveryCallback | Future[DeliveredRecord] | None,
    ) -> None:
        if self._closed:
            raise ProducerError("producer is closed", CLOSED)
        if value is None:
            raise ProducerError("MemQ records need a value (it may be empty, not None)")
        if type(value) is not bytes:
            value = bytes(value)
        if key is not None and type(key) is not bytes:
            key = bytes(key)
        pairs: Headers = ()
        if headers is not None:
            items = headers.items() if isinstance(headers, Mapping) else headers
            pairs = tuple((name, b"" if v is None else bytes(v)) for name, v in items)
        size = _record_size(value, key, pairs)
        stamp = timestamp or int(_time() * 1000)
        limit = self._request_capacity(topic)
        if size > limit:
            raise ProducerError(f"record of {size} bytes exceeds the {limit} bytes a request can carry")
        sealed: list[_Open] = []
        with self._lock:
            self._wait_for_room(size)
            pending = self._open.get(topic)
            if pending is not None and pending.size + size > limit and (full := self._take(pending)) is not None:
                sealed.append(full)
                pending = None
            if pending is None:
                pending = self._open[topic] = _Open(topic, limit)
                if self.config.linger_ms:
                    pending.linger_until = time.monotonic() + self.config.linger_ms / 1000
                    if not self._ticking:
                        self._ticking = True
                        self._loop.call_soon_threadsafe(self._tick)
            pending.add(value, key, stamp, pairs, report)
            pending.size += size
            self._buffered += size
            self._unanswered += 1
            if not self.config.linger_ms and (now := self._take(pending)) is not None:
                sealed.append(now)
        for request in sealed:
            self._hand_off(request)

    def _request_capacity(self, topic: str) -> int:
        return self.config.max_request_bytes - HEADER_LENGTH - _WRITE_OVERHEAD - len(topic.encode())

    def _wait_for_room(self, size: int) -> None:
        """Block (lock held, released while waiting) until ``size`` more bytes fit the in-flight budget."""
        if self._buffered + size <= self.config.max_inflight_bytes or self._buffered == 0:
            return
        deadline = time.monotonic() + self.config.max_block_ms / 1000
        while self._buffered + size > self.config.max_inflight_bytes and self._buffered:
            left = deadline - time.monotonic()
            if left <= 0 or self._closed:
                raise BufferError(
                    f"{self._buffered} bytes await acknowledgement (max_inflight_bytes="
                    f"{self.config.max_inflight_bytes}); no room after {self.config.max_block_ms} ms"
                )
            self._room.wait(left)

    def _take(self, pending: _Open) -> _Open | None:
        """Seal ``pending`` (lock held); None if it was sealed already."""
        if pending.sealed:
            return None
        pending.sealed = True
        self._requests += 1
        self._unwritten += 1
        if self._open.get(pending.topic) is pending:
            del self._open[pending.topic]
        return pending

    def _tick(self) -> None:
        """Seal open requests whose linger ran out (the loop thread); runs again while any request lingers.

        One timer serves every open request, started only when a request opens while none was ticking: a
        busy producer wakes the loop from the caller's thread rarely, not once per request.
        """
        now = time.monotonic()
        sealed: list[_Open] = []
        with self._lock:
            wake = None
            for pending in list(self._open.values()):
                if pending.due:
                    continue
                if now < pending.linger_until:
                    wake = min(wake or pending.linger_until, pending.linger_until)
                elif self._requests >= self.config.max_inflight_requests:
                    # Acknowledgements are slow (they wait for the broker's batch): let the request grow
                    # instead of queueing many small ones behind the in-flight limit.
                    pending.due = True
                elif (taken := self._take(pending)) is not None:
                    sealed.append(taken)
            self._ticking = wake is not None
        if wake is not None:
            self._loop.call_later(wake - now, self._tick)
        for request in sealed:
            self._hand_off(request)

    def _seal_due(self) -> None:
        """Seal requests whose linger ran out while the in-flight slots were taken (lock held)."""
        for pending in list(self._open.values()):
            if self._requests >= self.config.max_inflight_requests:
                return
            if pending.due and (sealed := self._take(pending)) is not None:
                self._hand_off(sealed)

    def _hand_off(self, sealed: _Open) -> None:
        """Have an encoder thread encode and compress a sealed request while the caller goes on producing."""
        with self._order:
            previous, done = self._previous, threading.Event()
            self._previous = done
            try:
                self._encoder.submit(self._dispatch, sealed, previous, done)
                return
            except RuntimeError:  # closing: the encoders are gone, encode here (below, without the lock)
                pass
        self._dispatch(sealed, previous, done)

    def _dispatch(self, sealed: _Open, previous: threading.Event, done: threading.Event) -> None:
        """Encode a sealed request (an encoder thread) and hand it to the network loop after ``previous``."""
        try:
            parts = self._encode(sealed)
        except Exception as exc:  # a record the format cannot carry: its request fails, nothing hangs
            _log.exception("encode_failed", topic=sealed.topic)
            done.set()
            self._written()
            self._complete(sealed, DeliveryError(ResponseCode.BAD_REQUEST, f"cannot encode the request: {exc}"))
            return
        try:
            if len(parts) > 1:
                with self._lock:
                    self._requests += len(parts) - 1
                    self._unwritten += len(parts) - 1
            previous.wait()  # the request sealed before this one is with the network loop already
            for part in parts:
                asyncio.run_coroutine_threadsafe(self._deliver(part), self._loop)
        finally:
            done.set()

    def _encode(self, sealed: _Open) -> list[tuple[_Open, int, bytes]]:
        request_id = next(self._ids)
        message = seal_message(
            encode_records(sealed.values, sealed.keys, sealed.stamps, sealed.headers),
            len(sealed.values),
            compression=self._compression,
            producer_epoch=self._epoch,
            request_id=request_id,
            address=self._address,
        )
        fits = len(message) + _WRITE_OVERHEAD + len(sealed.topic.encode()) <= self.config.max_request_bytes
        if fits or len(sealed.values) == 1:  # one record fitted uncompressed: a frame has room for the rest
            return [(sealed, request_id, message)]
        # Compression grew incompressible records past the limit: send them as two requests.
        first, second = sealed.split()
        return self._encode(first) + self._encode(second)

    # -- network (the loop thread) --------------------------------------------------------------------

    def _written(self) -> None:
        """A sealed request was written to a connection, or never will be."""
        with self._lock:
            self._unwritten -= 1
            if not self._unwritten:
                self._room.notify_all()  # flush() may be waiting to send its flush messages

    async def _deliver(self, item: tuple[_Open, int, bytes]) -> None:
        sealed, request_id, message = item
        deadline = time.monotonic() + self.config.request_timeout_ms / 1000
        request = Request(CLIENT_VERSION, request_id, WriteRequest(sealed.topic, message))
        unwritten = [True]  # cleared by the first write to a connection
        error: DeliveryError | None
        try:
            async with asyncio.timeout_at(self._loop.time() + self.config.request_timeout_ms / 1000):
                async with self._inflight:
                    error = await self._send_with_retries(request, deadline, unwritten)
        except TimeoutError:
            error = DeliveryError(TIMED_OUT, f"no answer within request_timeout_ms={self.config.request_timeout_ms}")
        except asyncio.CancelledError:
            self._complete(sealed, DeliveryError(CLOSED, "producer closed before the answer arrived"))
            raise
        except Exception as exc:  # a bug must still report every record
            _log.exception("deliver_failed")
            error = DeliveryError(ResponseCode.INTERNAL_SERVER_ERROR, f"producer error: {exc!r}")
        finally:
            if unwritten[0]:
                self._written()
        self._complete(sealed, error)

    async def _send_with_retries(
        self, request: Request, deadline: float, unwritten: list[bool]
    ) -> DeliveryError | None:
        topic = request.body.topic  # type: ignore[union-attr]
        attempt = 0
        last = ""
        while True:
            broker = self._pick(await self._topic_brokers(topic))
            try:
                conn = await self._connect(broker)
                self._fed.add((topic, broker))
                if unwritten[0]:  # conn.call writes the request before it first waits
                    unwritten[0] = False
                    self._written()
                response = await conn.call(request)
            except (OSError, TimeoutError) as exc:
                if isinstance(exc, TimeoutError) and time.monotonic() >= deadline:
                    raise
                last = f"{broker}: {exc}"
                self._repeats.log("info", ("retry", broker), "request_retry", broker=str(broker), error=str(exc))
                self._down[broker] = time.monotonic() + _DOWN_S
            else:
                if response.code == ResponseCode.OK:
                    return None
                if response.code not in _RETRY_CODES:
                    return DeliveryError(response.code, response.error or ResponseCode(response.code).name)
                last = f"{broker}: {response.code} {response.error}"
                self._down[broker] = time.monotonic() + _DOWN_S
            attempt += 1
            backoff = min(self.config.retry_backoff_ms / 1000 * 2 ** min(attempt - 1, 6), 5.0)
            if time.monotonic() + backoff >= deadline:
                return DeliveryError(CONNECTION_LOST, f"no broker accepted the request; last: {last}", True)
            if attempt > 1:
                await asyncio.sleep(backoff)  # the first retry goes at once, to another broker

    def _pick(self, brokers: list[BrokerAddress]) -> BrokerAddress:
        """The next broker in turn, skipping those that failed in the last few seconds while others remain."""
        now = time.monotonic()
        alive = [b for b in brokers if self._down.get(b, 0.0) <= now] or brokers
        return alive[next(self._turn) % len(alive)]

    async def _connect(self, broker: BrokerAddress) -> _Connection:
        conn = self._connections.get(broker)
        if conn is not None and not conn.closed:
            return conn
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                broker.host, broker.port, ssl=self._ssl, server_hostname=broker.host if self._ssl else None
            ),
            self.config.connect_timeout_ms / 1000,
        )
        conn = self._connections[broker] = _Connection(reader, writer)
        return conn

    async def _topic_brokers(self, topic: str) -> list[BrokerAddress]:
        known = self._brokers.get(topic)
        if known:
            return known
        now = time.monotonic()
        candidates = [b for b in dict.fromkeys([*self._bootstrap, *self._known]) if self._down.get(b, 0.0) <= now]
        for broker in candidates or self._bootstrap:
            try:
                metadata = await self._metadata(broker, (topic,))
            except (OSError, TimeoutError, FrameError, ProducerError) as exc:
                self._repeats.log("info", ("metadata", broker), "metadata_failed", broker=str(broker), error=str(exc))
                self._down[broker] = time.monotonic() + _DOWN_S
                continue
            for md in metadata:
                if md.topic == topic and md.write_brokers:
                    self._brokers[topic] = list(md.write_brokers)
                    self._known.update(md.write_brokers)
                    return self._brokers[topic]
            return [broker]  # the broker does not know the topic: its WRITE answer will say so
        return list(self._bootstrap)

    async def _send_flush(self, fed: set[tuple[str, BrokerAddress]]) -> None:
        """A producer message of no records to each (topic, broker) that took requests since the last flush.

        Our broker seals the topic's open batch when one arrives, so the requests just written are stored now
        instead of when the batch's time runs out; any broker answers it OK without storing anything.
        """

        async def send(topic: str, broker: BrokerAddress) -> None:
            conn = self._connections.get(broker)
            if conn is None or conn.closed:
                return
            request_id = next(self._ids)
            message = encode_empty_message(producer_epoch=self._epoch, request_id=request_id, address=self._address)
            request = Request(CLIENT_VERSION, request_id, WriteRequest(topic, message))
            await asyncio.wait_for(conn.call(request), self.config.request_timeout_ms / 1000)

        results = await asyncio.gather(*(send(topic, broker) for topic, broker in fed), return_exceptions=True)
        for error in results:
            if isinstance(error, BaseException):  # only a hint: the batches still seal on their time
                self._repeats.log("info", "flush", "flush_message_failed", error=repr(error))

    async def _metadata(self, broker: BrokerAddress, topics: tuple[str, ...]) -> list[TopicMetadata]:
        conn = await self._connect(broker)
        request = Request(CLIENT_VERSION, next(self._ids), MetadataRequest(topics))
        response = await asyncio.wait_for(conn.call(request), self.config.request_timeout_ms / 1000)
        if response.code != ResponseCode.OK:
            raise ProducerError(f"TOPIC_METADATA failed on {broker}: {response.code} {response.error}", response.code)
        return decode_metadata(response.payload, response.version)

    def _complete(self, sealed: _Open, error: DeliveryError | None) -> None:
        quiet = error is None and self.config.delivery_report_only_error
        default = self._on_delivery
        if sealed.reports is not None or (default is not None and not quiet):
            reports = sealed.reports or itertools.repeat(None, len(sealed.values))
            for index, own in enumerate(reports):
                report = default if own is None else own
                if report is None or (quiet and not isinstance(report, Future)):
                    continue  # nobody listens, or only to failures
                delivered = DeliveredRecord(sealed.topic, sealed.record(index), error)
                if isinstance(report, Future):
                    if error is None:
                        report.set_result(delivered)
                    else:
                        report.set_exception(ProducerError(str(error), error.code(), error.retriable()))
                else:
                    self._reports.put((report, error, delivered))
        with self._lock:
            self._buffered -= sealed.size
            self._unanswered -= len(sealed.values)
            self._requests -= 1
            self._seal_due()
            self._room.notify_all()

    # -- serving reports, flushing, closing -----------------------------------------------------------

    def poll(self, timeout: float = 0.0) -> int:
        """Run delivery callbacks that are ready, waiting up to ``timeout`` s for the first; returns how many."""
        served = 0
        try:
            item = self._reports.get(timeout=timeout) if timeout > 0 else self._reports.get_nowait()
        except queue.Empty:
            return 0
        while True:
            callback, error, delivered = item
            callback(error, delivered)
            served += 1
            try:
                item = self._reports.get_nowait()
            except queue.Empty:
                return served

    def flush(self, timeout: float | None = None) -> int:
        """Send every open request and wait for all answers; returns how many records are still unanswered.

        Once every request is written, each broker that took some gets a message of no records for the topic,
        which seals its open batch at once (see ``_send_flush``): a flush waits for a store, not a batch time.
        """
        with self._lock:
            sealed = [self._take(p) for p in list(self._open.values())]
        for item in sealed:
            if item is not None:
                self._hand_off(item)
        deadline = None if timeout is None else time.monotonic() + timeout
        flushed = False
        while True:
            self.poll(0)
            with self._lock:
                if not self._unanswered:
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                if not flushed and not self._unwritten and not self._open:
                    # Every request is on its way: ask the brokers to seal their batches now.
                    flushed = True
                    fed, self._fed = self._fed, set()
                    if fed and not self._closed:
                        asyncio.run_coroutine_threadsafe(self._send_flush(fed), self._loop)
                self._room.wait(0.05 if left is None else min(left, 0.05))
        self.poll(0)
        return self._unanswered

    def __len__(self) -> int:
        return self._unanswered

    def list_topics(self, topic: str | None = None, timeout: float = 10.0) -> list[TopicMetadata]:
        """TOPIC_METADATA from the first bootstrap broker that answers."""

        async def ask() -> list[TopicMetadata]:
            errors = []
            for broker in self._bootstrap:
                try:
                    return await self._metadata(broker, (topic,) if topic else ())
                except (OSError, TimeoutError, FrameError) as exc:
                    errors.append(f"{broker}: {exc}")
            raise ProducerError(f"no broker answered TOPIC_METADATA: {'; '.join(errors)}")

        return asyncio.run_coroutine_threadsafe(ask(), self._loop).result(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush for up to ``timeout`` s, fail what is left, and stop the network thread."""
        if self._closed:
            return
        left = self.flush(timeout)
        self._closed = True
        self._encoder.shutdown(wait=True)
        if left:
            _log.warning("closed_with_unanswered_records", records=left)

        async def shut() -> None:
            for conn in list(self._connections.values()):
                conn.close(ConnectionError("producer closed"))
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._repeats.flush()
        self.poll(0)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_address(value: str) -> BrokerAddress:
    host, _, port = value.rpartition(":")
    return BrokerAddress(host, int(port))


def _client_tls(config: ProducerConfig) -> ssl.SSLContext | None:
    tls = config.tls
    if tls is None:
        return None
    context = ssl.create_default_context(cafile=tls.ca_file)
    if tls.cert_file and tls.key_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
