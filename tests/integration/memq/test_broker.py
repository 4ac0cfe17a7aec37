"""The broker as a real process: durable acknowledgements, batching, bad requests, SIGTERM and SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from memq._format import Compression, Record, encode_message
from memq._producer import DeliveredRecord, Producer, ProducerError
from memq._wire import Request, ResponseCode, WriteRequest, decode_response, encode_request, read_frame
from tests.integration.memq.brokers import BrokerProcess, broker_config, read_notifications, stored_records

BrokerFactory = Callable[..., BrokerProcess]


@pytest.fixture
def start_broker(tmp_path: Path, kafka_bootstrap: str) -> Iterator[BrokerFactory]:
    started: list[BrokerProcess] = []

    def start(topics: list[dict[str, Any]], **extra: Any) -> BrokerProcess:
        config = broker_config(tmp_path / "objects", topics, kafka_bootstrap, **extra)
        broker = BrokerProcess(config, tmp_path).start()
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.stop()


def _values(notifications: list[Any]) -> list[bytes]:
    return [record.value for _n, record in stored_records(notifications)]


def test_ok_only_after_object_is_stored_and_announced(
    start_broker: BrokerFactory, new_topic: Callable[..., str], kafka_bootstrap: str
) -> None:
    notify = new_topic()
    broker = start_broker([{"name": "events", "notification_topic": notify, "batch_max_ms": 300}])
    checked: list[tuple[int, list[bytes]]] = []

    def on_ok(future: Future[DeliveredRecord]) -> None:
        # Runs the moment the OK arrives: the object and its notification must already exist.
        notifications = read_notifications(kafka_bootstrap, notify)
        checked.append((len(notifications), _values(notifications)))

    with Producer(brokers=[broker.address], linger_ms=5) as producer:
        future = producer.send("events", b"v-1", key=b"k-1", headers={"h": b"1"})
        future.add_done_callback(on_ok)
        delivered = future.result(30)
    assert delivered.error() is None
    assert checked and checked[0][0] == 1
    assert checked[0][1] == [b"v-1"]
    (notification,) = read_notifications(kafka_bootstrap, notify)
    assert notification.topic == "events" and notification.message_count == 1
    ((_, record),) = list(stored_records([notification]))
    assert (record.key, record.value, record.headers) == (b"k-1", b"v-1", (("h", b"1"),))


def test_batches_seal_on_count(
    start_broker: BrokerFactory, new_topic: Callable[..., str], kafka_bootstrap: str
) -> None:
    notify = new_topic()
    topic = {"name": "counted", "notification_topic": notify, "batch_max_messages": 3, "batch_max_ms": 20000}
    broker = start_broker([topic], producer_request_timeout_s=60)
    with Producer(brokers=[broker.address], linger_ms=0, request_timeout_ms=60000) as producer:
        futures = [producer.send("counted", b"c-%d" % i) for i in range(6)]
        for future in futures:
            future.result(30)  # well before the 20 s batch time: only the count can have sealed them
    notifications = read_notifications(kafka_bootstrap, notify)
    assert [n.message_count for n in notifications] == [3, 3]
    assert sorted(_values(notifications)) == sorted(b"c-%d" % i for i in range(6))


def test_batches_seal_on_size(start_broker: BrokerFactory, new_topic: Callable[..., str], kafka_bootstrap: str) -> None:
    notify = new_topic()
    topic = {"name": "sized", "notification_topic": notify, "batch_max_bytes": 2000, "batch_max_ms": 20000}
    broker = start_broker([topic], producer_request_timeout_s=60)
    with Producer(brokers=[broker.address], linger_ms=0, compression="none", request_timeout_ms=60000) as producer:
        futures = [producer.send("sized", bytes([i]) * 600) for i in range(8)]
        for future in futures[:7]:
            future.result(30)  # seven 661-byte messages fill two 2000-byte batches long before 20 s
        # The eighth waits in an open batch until the broker drains it on SIGTERM.
        broker.signal(signal.SIGTERM)
        futures[7].result(30)
    notifications = read_notifications(kafka_bootstrap, notify)
    # The fourth message reaches 2000 bytes and seals the first batch 644 bytes over; the second batch
    # seals that much earlier, at 1356 bytes, so the two hold 2 x 2000 bytes give or take one message.
    # (Batches upload in parallel: their notifications may arrive in either order.)
    assert sorted(n.message_count for n in notifications) == [1, 3, 4]
    assert sorted(n.object_size - n.header_size for n in notifications) == [661, 3 * 661, 4 * 661]
    assert broker.wait() == 0


def test_batches_seal_on_time(start_broker: BrokerFactory, new_topic: Callable[..., str], kafka_bootstrap: str) -> None:
    notify = new_topic()
    broker = start_broker([{"name": "timed", "notification_topic": notify, "batch_max_ms": 200}])
    with Producer(brokers=[broker.address], linger_ms=0) as producer:
        producer.send("timed", b"t-1").result(30)
        producer.send("timed", b"t-2").result(30)
    notifications = read_notifications(kafka_bootstrap, notify)
    assert [n.message_count for n in notifications] == [1, 1]  # far from the size and count limits
    assert _metric(broker, 'memq_broker_batches_total{reason="time",topic="timed"}') == 2.0


def test_flush_seals_the_open_batch(
    start_broker: BrokerFactory, new_topic: Callable[..., str], kafka_bootstrap: str
) -> None:
    notify = new_topic()
    topic = {"name": "flushed", "notification_topic": notify, "batch_max_ms": 120_000}
    broker = start_broker([topic], producer_request_timeout_s=300)
    with Producer(brokers=[broker.address], linger_ms=50, request_timeout_ms=300_000) as producer:
        for i in range(100):
            producer.produce("flushed", b"f-%d" % i)
        # Acknowledged long before the 120 s batch time: only the flush message can have sealed the batch.
        assert producer.flush(60) == 0
        later = producer.send("flushed", b"after")  # a new batch, sealed by the next flush
        assert producer.flush(60) == 0
        assert later.result(0).error() is None
    notifications = read_notifications(kafka_bootstrap, notify)
    assert len(notifications) == 2
    assert sorted(_values(notifications)) == sorted([b"after", *(b"f-%d" % i for i in range(100))])
    assert _metric(broker, 'memq_broker_batches_total{reason="flush",topic="flushed"}') == 2.0
    assert _metric(broker, 'memq_broker_batches_total{reason="time",topic="flushed"}') == 0.0


def _metric(broker: BrokerProcess, name: str) -> float:
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0  # a labelled series appears with its first increment


def test_unknown_topic_is_404(start_broker: BrokerFactory, new_topic: Callable[..., str]) -> None:
    broker = start_broker([{"name": "known", "notification_topic": new_topic()}])
    with Producer(brokers=[broker.address]) as producer, pytest.raises(ProducerError, match="'missing'") as caught:
        producer.send("missing", b"x").result(30)
    assert caught.value.code == ResponseCode.NOT_FOUND


def _message(value: bytes) -> bytes:
    return encode_message(
        [Record(value)], compression=Compression.NONE, producer_epoch=1, request_id=7, address=b"\x7f\0\0\1"
    )


async def _exchange(address: str, payload: bytes) -> tuple[int, str] | None:
    host, _, port = address.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(payload)
    writer.write_eof()  # the broker sees the end of a truncated frame instead of waiting for the rest
    await writer.drain()
    try:
        frame = await asyncio.wait_for(read_frame(reader), 10)
    finally:
        writer.close()
    if frame is None:
        return None
    response = decode_response(frame)
    return response.code, response.error


def test_bad_requests_get_errors_and_other_producers_keep_being_served(
    start_broker: BrokerFactory, new_topic: Callable[..., str], kafka_bootstrap: str
) -> None:
    notify = new_topic()
    broker = start_broker([{"name": "guarded", "notification_topic": notify, "batch_max_ms": 100}], idle_timeout_s=2.0)
    message = _message(b"payload")
    bad_crc = encode_request(Request(3, 1, WriteRequest("guarded", message, crc=12345)))
    assert asyncio.run(_exchange(broker.address, bad_crc)) == (400, "request CRC32 does not match its data")
    broken = bytearray(message)
    broken[-1] ^= 0xFF  # request CRC recomputed over the damage, but the message's own CRC no longer matches
    answer = asyncio.run(
        _exchange(broker.address, encode_request(Request(3, 2, WriteRequest("guarded", bytes(broken)))))
    )
    assert answer is not None and answer[0] == 400 and "CRC32 mismatch" in answer[1]
    # Oversized, truncated and garbage frames close their own connection, nothing else.
    assert asyncio.run(_exchange(broker.address, struct.pack(">i", 5 * 1024 * 1024))) is None
    assert asyncio.run(_exchange(broker.address, struct.pack(">i", 100) + b"\x00\x03")) is None
    assert asyncio.run(_exchange(broker.address, struct.pack(">i", 4) + b"\xff\xff\xff\xff")) is None
    with socket.create_connection(("127.0.0.1", broker.port)) as raw:
        raw.sendall(struct.pack(">i", 1000) + b"half a frame")
        with Producer(brokers=[broker.address], linger_ms=0) as producer:
            assert producer.send("guarded", b"still served").result(30).error() is None
        raw.settimeout(30)
        assert raw.recv(10) == b""  # the stalled half frame is dropped after the idle timeout
    assert _values(read_notifications(kafka_bootstrap, notify)) == [b"still served"]


def test_sigterm_seals_uploads_and_acknowledges_open_batches(
    start_broker: BrokerFactory, new_topic: Callable[..., str], kafka_bootstrap: str
) -> None:
    notify = new_topic()
    topic = {"name": "draining", "notification_topic": notify, "batch_max_ms": 25000}
    broker = start_broker([topic], producer_request_timeout_s=60)
    with Producer(brokers=[broker.address], linger_ms=0, request_timeout_ms=60000) as producer:
        futures = [producer.send("draining", b"d-%d" % i) for i in range(20)]
        _wait_for(lambda: _metric(broker, 'memq_broker_messages_in_total{topic="draining"}') == 20)
        assert not any(f.done() for f in futures)  # all in the open batch, 25 s from its time limit
        broker.signal(signal.SIGTERM)
        for future in futures:
            assert future.result(30).error() is None
    assert broker.wait() == 0
    assert sorted(_values(read_notifications(kafka_bootstrap, notify))) == sorted(b"d-%d" % i for i in range(20))


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_sigkill_loses_nothing_that_was_acknowledged(
    start_broker: BrokerFactory, new_topic: Callable[..., str], kafka_bootstrap: str
) -> None:
    notify = new_topic()
    broker = start_broker([{"name": "crashing", "notification_topic": notify, "batch_max_ms": 300}])
    outcomes: dict[bytes, Future[DeliveredRecord]] = {}
    with Producer(brokers=[broker.address], linger_ms=20, request_timeout_ms=4000, retry_backoff_ms=100) as producer:
        started = time.monotonic()
        i = 0
        while time.monotonic() - started < 3.0:
            value = b"r-%06d" % i
            outcomes[value] = producer.send("crashing", value)
            i += 1
            if i % 200 == 0:
                time.sleep(0.02)
            if time.monotonic() - started > 1.5 and broker.proc is not None and broker.proc.poll() is None:
                broker.signal(signal.SIGKILL)  # sealed, uploading and open batches die with it
                broker.wait()
        producer.flush(30)
    acked = {v for v, f in outcomes.items() if f.exception() is None}
    failed = {v for v, f in outcomes.items() if f.exception() is not None}
    assert acked and failed, (len(acked), len(failed))
    announced = set(_values(read_notifications(kafka_bootstrap, notify)))
    assert acked <= announced, f"{len(acked - announced)} acknowledged records are not stored and announced"


def test_fuzzed_frames_never_hurt_other_producers(
    start_broker: BrokerFactory, new_topic: Callable[..., str], kafka_bootstrap: str
) -> None:
    import random
    import subprocess
    import sys

    notify = new_topic()
    broker = start_broker([{"name": "fuzzed", "notification_topic": notify, "batch_max_ms": 100}])
    rng = random.Random(1234)
    valid = encode_request(Request(3, 9, WriteRequest("fuzzed", _message(b"seed"))))
    with Producer(brokers=[broker.address], linger_ms=0) as producer:
        for round_ in range(300):
            if round_ % 2:
                garbage = bytearray(valid)  # a valid frame with a few bytes flipped
                for _ in range(rng.randint(1, 4)):
                    garbage[rng.randrange(len(garbage))] = rng.randrange(256)
                payload = bytes(garbage)
            else:
                payload = rng.randbytes(rng.randint(0, 64))
            with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as raw:
                raw.sendall(payload)
                raw.shutdown(socket.SHUT_WR)
                raw.settimeout(5)
                with contextlib.suppress(OSError):
                    while raw.recv(65536):
                        pass
            if round_ % 50 == 0:
                assert producer.send("fuzzed", b"alive-%d" % round_).result(30).error() is None
    assert broker.proc is not None and broker.proc.poll() is None
    values = set(_values(read_notifications(kafka_bootstrap, notify)))
    assert {b"alive-%d" % r for r in range(0, 300, 50)} <= values
    listed = subprocess.run(
        [sys.executable, "-m", "memq", "topics", "--broker", broker.address], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert '"topic": "fuzzed"' in listed.stdout and broker.address in listed.stdout
