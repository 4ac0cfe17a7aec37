"""The broker's TCP server: one task per connection reads frames, answers each request by its client id.

WRITE requests are checked (topic, size, CRC, message header) and go into their topic's batch; the answer
is written when the batch's outcome is known, so answers may leave out of order. A frame that cannot be
decoded closes only its own connection. While the in-flight byte budget is exhausted, connections stop
reading, which pushes back on producers through TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import zlib
from typing import Any

from memq._config import BrokerConfig
from memq._errors import FormatError
from memq._format import HEADER_LENGTH, Notification, parse_message_header
from memq._wire import (
    BrokerAddress,
    FrameError,
    MetadataRequest,
    Request,
    Response,
    ResponseCode,
    TopicMetadata,
    WriteRequest,
    decode_request,
    encode_metadata,
    encode_response,
    encode_write_ok,
    read_frame,
)
from memq.broker._batches import BatchManager, Outcome
from memq.broker._metrics import BrokerMetrics
from memq.storage import StorageHandler, open_storage
from psc.common.log import get_logger

_log = get_logger("memq.broker")


class _Connection:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.pending: set[asyncio.Task[None]] = set()
        self.peer = writer.get_extra_info("peername")

    def send(self, response: Response) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode_response(response))


class Broker:
    """A MemQ broker serving the topics of ``config``; ``await serve()`` until ``stop()`` or SIGTERM."""

    def __init__(self, config: BrokerConfig, metrics: BrokerMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or BrokerMetrics()
        self._stores: dict[str, StorageHandler] = {}
        for topic in config.topics:
            url = topic.storage or config.storage
            options = (
                {"endpoint_url": config.s3_endpoint_url} if config.s3_endpoint_url and url.startswith("s3:") else {}
            )
            store = self._stores[topic.name] = open_storage(url, **options)
            store.on_request = self._count_storage_request
        self._notifier: Any = None
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._stopping = asyncio.Event()
        self.address: BrokerAddress | None = None

    def _count_storage_request(self, operation: str) -> None:
        self.metrics.storage_requests.labels(operation).inc()

    # -- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> BrokerAddress:
        from psc.aio import AIOProducer

        settings: dict[str, Any] = {
            "psc.project": "memq-broker",
            "psc.producer.acks": "all",
            "psc.producer.delivery.timeout.ms": str(int(self.config.notify_timeout_s * 1000)),
            **self.config.notification_config,
        }
        if self.config.notification_bootstrap:
            settings["psc.discovery.connect"] = self.config.notification_bootstrap
        # batch_size=1: a notification goes to librdkafka at once, not after the buffer's timeout.
        self._notifier = AIOProducer(settings, batch_size=1)
        self._batches = BatchManager(self.config, self._stores, self._notify, self.metrics)
        self._server = await asyncio.start_server(
            self._serve_connection,
            self.config.host,
            self.config.port,
            ssl=self._tls(),
            limit=64 * 1024,
        )
        port = self._server.sockets[0].getsockname()[1]
        self.address = BrokerAddress(self.config.advertised_host or self.config.host, port, self.config.locality)
        _log.info("broker_started", address=str(self.address), topics=[t.name for t in self.config.topics])
        return self.address

    def stop(self) -> None:
        self._stopping.set()

    async def serve(self, install_signals: bool = True) -> None:
        """Run until stopped; then seal open batches, store and acknowledge them, and close."""
        if self._server is None:
            await self.start()
        if install_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        await self._stopping.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        _log.info("broker_stopping")
        assert self._server is not None
        self._server.close()  # no new connections; existing ones stay open for their answers
        self._batches.seal_all()
        try:
            await asyncio.wait_for(self._drain(), self.config.shutdown_timeout_s)
        except TimeoutError:
            _log.error("shutdown_timed_out", inflight_bytes=self._batches.budget.used)
        for conn in list(self._connections):
            conn.writer.close()
        if self._notifier is not None:
            await self._notifier.close(5.0)
        for store in self._stores.values():
            store.close()
        _log.info("broker_stopped")

    async def _drain(self) -> None:
        await self._batches.drain()
        for conn in list(self._connections):
            if conn.pending:
                await asyncio.gather(*conn.pending, return_exceptions=True)
            with contextlib.suppress(ConnectionError):
                await conn.writer.drain()

    def _tls(self) -> ssl.SSLContext | None:
        tls = self.config.tls
        if tls is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        assert tls.cert_file and tls.key_file
        context.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.ca_file:
            context.load_verify_locations(tls.ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    async def _notify(self, topic: str, notification: Notification) -> None:
        delivered = await self._notifier.produce(
            self.config.notification_cluster + topic, notification.to_json().encode()
        )
        await delivered  # the ack waits for Kafka's acks=all: a failed delivery raises here

    # -- connections ----------------------------------------------------------------------------------

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(writer)
        self._connections.add(conn)
        self.metrics.connections.inc()
        try:
            while not self._stopping.is_set():
                await self._batches.budget.wait_for_room()
                frame = await asyncio.wait_for(
                    read_frame(reader, self.config.max_frame_bytes), self.config.idle_timeout_s
                )
                if frame is None:
                    break
                self._handle(conn, decode_request(frame))
                await writer.drain()
        except FrameError as exc:
            self.metrics.bad_frames.inc()
            _log.warning("bad_frame", peer=str(conn.peer), error=str(exc))
        except TimeoutError:
            _log.info("connection_idle", peer=str(conn.peer), idle_timeout_s=self.config.idle_timeout_s)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            _log.info("connection_lost", peer=str(conn.peer), error=repr(exc))
        finally:
            if conn.pending:  # answer what was accepted before closing
                await asyncio.gather(*conn.pending, return_exceptions=True)
            self.metrics.connections.dec()
            self._connections.discard(conn)
            writer.close()

    def _handle(self, conn: _Connection, request: Request) -> None:
        body = request.body
        if isinstance(body, WriteRequest):
            self._write(conn, request, body)
        elif isinstance(body, MetadataRequest):
            self._answer(conn, request, ResponseCode.OK, payload=self._metadata(body, request.version))
        else:
            self._answer(conn, request, ResponseCode.BAD_REQUEST, "READ is not served: read objects from storage")

    def _answer(
        self, conn: _Connection, request: Request, code: ResponseCode, error: str = "", payload: bytes = b""
    ) -> None:
        self.metrics.requests.labels(request.type.name, str(int(code))).inc()
        conn.send(Response(request.version, request.request_id, request.type, code, error, payload))

    def _metadata(self, body: MetadataRequest, version: int) -> bytes:
        assert self.address is not None
        brokers = [self.address]
        for other in self.config.cluster_brokers:
            host, _, port = other.rpartition(":")
            brokers.append(BrokerAddress(host, int(port), self.config.locality))
        names = body.topics or tuple(t.name for t in self.config.topics)
        found = []
        for name in names:
            topic = self.config.topic(name)
            if topic is not None:
                props = {
                    "notificationTopic": topic.notification_topic,
                    "notificationCluster": self.config.notification_cluster,
                    "notificationBootstrap": self.config.notification_bootstrap or "",
                    "storage": topic.storage or self.config.storage,
                }
                if self.config.s3_endpoint_url:
                    props["s3EndpointUrl"] = self.config.s3_endpoint_url
                found.append(TopicMetadata(name, tuple(brokers), "memq", props, tuple(brokers)))
        return encode_metadata(found, version)

    def _write(self, conn: _Connection, request: Request, body: WriteRequest) -> None:
        if self._stopping.is_set():
            self._answer(conn, request, ResponseCode.SERVICE_UNAVAILABLE, "broker is shutting down")
            return
        topic = self.config.topic(body.topic)
        if topic is None:
            self._answer(conn, request, ResponseCode.NOT_FOUND, f"unknown topic {body.topic!r}")
            return
        data = body.data
        if len(data) > topic.batch_max_bytes:
            limit = topic.batch_max_bytes
            self._answer(conn, request, ResponseCode.BAD_REQUEST, f"{len(data)} bytes exceed the batch size {limit}")
            return
        if body.crc is not None and zlib.crc32(data) != body.crc:
            self._answer(conn, request, ResponseCode.BAD_REQUEST, "request CRC32 does not match its data")
            return
        try:
            header = parse_message_header(data, verify_crc=True)
            if header.size != len(data):
                raise FormatError(f"message declares {header.size} bytes but the request holds {len(data)}", 0)
        except FormatError as exc:
            self._answer(conn, request, ResponseCode.BAD_REQUEST, f"invalid producer message: {exc}")
            return
        if header.record_count == 0 or len(data) == HEADER_LENGTH:
            # Nothing to store (the reference answers OK as well). Our producer sends one such message from
            # flush() after its last request: the topic's open batch is sealed now instead of at its time.
            self._batches.seal_topic(topic.name, "flush")
            self._answer(conn, request, ResponseCode.OK, payload=encode_write_ok(request.version))
            return
        waiter = self._batches.add(topic, data, header.request_id)
        if body.disable_acks:
            self._answer(conn, request, ResponseCode.OK, payload=encode_write_ok(request.version))
            return
        task = asyncio.get_running_loop().create_task(self._answer_when_done(conn, request, waiter))
        conn.pending.add(task)
        task.add_done_callback(conn.pending.discard)

    async def _answer_when_done(self, conn: _Connection, request: Request, waiter: asyncio.Future[Outcome]) -> None:
        outcome = await waiter
        payload = encode_write_ok(request.version) if outcome.code == ResponseCode.OK else b""
        self._answer(conn, request, outcome.code, outcome.error, payload)
        with contextlib.suppress(ConnectionError):
            await conn.writer.drain()


async def run_broker(config: BrokerConfig) -> None:
    """Run a broker until SIGTERM/SIGINT, serving metrics on ``config.metrics_port`` when set."""
    broker = Broker(config)
    if config.metrics_port is not None:
        from psc.common.metrics import start_metrics_server

        start_metrics_server(config.metrics_port, registry=broker.metrics.registry.registry)
    await broker.serve()
