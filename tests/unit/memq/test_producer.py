"""The producer without brokers: sealing, splitting, in-flight limits, and where reports are delivered."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from memq._format import Compression, decode_message
from memq._producer import DeliveryError, Producer, ProducerError, _Open, _record_size


class Recorder:
    """Replaces the network: keeps every sealed request, answers when told to."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.sent: list[tuple[_Open, int, bytes]] = []
        self.answer: DeliveryError | None = None
        self.hold = threading.Event()
        self.hold.set()

    async def deliver(self, item: tuple[_Open, int, bytes]) -> None:
        self.sent.append(item)
        while not self.hold.is_set():
            import asyncio

            await asyncio.sleep(0.01)
        self.producer._complete(item[0], self.answer)


@pytest.fixture
def producer_and_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Producer, Recorder]]:
    holder: list[Recorder] = []

    async def deliver(self: Producer, item: Any) -> None:
        await holder[0].deliver(item)

    monkeypatch.setattr(Producer, "_deliver", deliver)
    producer = Producer(brokers=["127.0.0.1:9"], linger_ms=0, max_block_ms=200, max_inflight_bytes=4096)
    holder.append(Recorder(producer))
    yield producer, holder[0]
    holder[0].hold.set()
    producer.close(5)


def test_callbacks_run_in_poll_and_futures_resolve(producer_and_network: tuple[Producer, Recorder]) -> None:
    producer, network = producer_and_network
    reports: list[tuple[Any, Any, str]] = []
    producer.produce(
        "t",
        b"v",
        key=b"k",
        headers={"h": b"1"},
        on_delivery=lambda e, m: reports.append((e, m, threading.current_thread().name)),
    )
    future = producer.send("t", b"w")
    assert producer.flush(5) == 0
    assert future.result(0).value() == b"w"
    ((error, delivered, thread),) = reports
    assert error is None and thread == threading.current_thread().name
    assert (delivered.topic(), delivered.key(), delivered.value(), delivered.headers()) == (
        "t",
        b"k",
        b"v",
        [("h", b"1")],
    )
    _header, records = decode_message(network.sent[0][2])
    assert records[0].value == b"v"


def test_failures_reach_callbacks_and_futures(producer_and_network: tuple[Producer, Recorder]) -> None:
    producer, network = producer_and_network
    network.answer = DeliveryError(502, "upload failed")
    errors: list[Any] = []
    producer.produce("t", b"v", on_delivery=lambda e, m: errors.append(e))
    future = producer.send("t", b"w")
    producer.flush(5)
    assert errors[0].code() == 502 and errors[0].name() == "REQUEST_FAILED"
    with pytest.raises(ProducerError, match="upload failed"):
        future.result(0)


def test_a_full_inflight_budget_blocks_then_raises_buffererror(producer_and_network: tuple[Producer, Recorder]) -> None:
    producer, network = producer_and_network
    network.hold.clear()
    producer.produce("t", b"x" * 3000)
    started = time.monotonic()
    with pytest.raises(BufferError, match="max_inflight_bytes=4096"):
        producer.produce("t", b"y" * 3000)
    assert time.monotonic() - started >= 0.15  # it waited for room before giving up
    network.hold.set()
    assert producer.flush(5) == 0
    producer.produce("t", b"y" * 3000)  # room again once the first was answered


def test_a_record_larger_than_a_request_is_refused(producer_and_network: tuple[Producer, Recorder]) -> None:
    producer, _ = producer_and_network
    with pytest.raises(ProducerError, match="exceeds"):
        producer.produce("t", b"x" * (2 * 1024 * 1024))
    with pytest.raises(ProducerError, match="need a value"):
        producer.produce("t", None)  # type: ignore[arg-type]


def test_requests_that_compression_grows_past_the_limit_are_split(monkeypatch: pytest.MonkeyPatch) -> None:
    import memq._producer as module
    from memq._format import seal_message

    def growing(body: bytes, count: int, **kwargs: Any) -> bytes:
        # Incompressible input: the compressed body is larger than the records were.
        kwargs["compression"] = Compression.NONE
        message = seal_message(body, count, **kwargs)
        return message + bytes(64) if count > 1 else message

    monkeypatch.setattr(module, "seal_message", growing)
    producer = Producer(brokers=["127.0.0.1:9"], max_request_bytes=8192)
    try:
        capacity = producer._request_capacity("t")
        pending = _Open("t", capacity)
        while pending.size < capacity:  # fill a request to its very limit, some records with a key or headers
            index = len(pending.values)
            key = b"k%d" % index if index % 3 == 0 else None
            headers = (("h", b"%d" % index),) if index % 5 == 0 else ()
            value = os.urandom(max(0, min(500, capacity - pending.size - 21 - 40)))
            pending.add(value, key, index, headers, None)
            pending.size += _record_size(value, key, headers)
        parts = producer._encode(pending)
        assert len(parts) == 2
        assert all(len(message) + 30 <= 8192 for _p, _id, message in parts)
        assert sum(p.size for p, _id, _m in parts) == pending.size
        sent = [r for _p, _id, message in parts for r in decode_message(message)[1]]
        assert sent == [pending.record(i) for i in range(len(pending.values))]
    finally:
        producer.close(0)


def test_a_lone_record_that_compression_grows_is_sent_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    import memq._producer as module
    from memq._format import seal_message

    def growing(body: bytes, count: int, **kwargs: Any) -> bytes:
        return seal_message(body, count, **{**kwargs, "compression": Compression.NONE}) + bytes(64)

    monkeypatch.setattr(module, "seal_message", growing)
    producer = Producer(brokers=["127.0.0.1:9"], max_request_bytes=8192)
    try:
        capacity = producer._request_capacity("t")
        pending = _Open("t", capacity)
        value = os.urandom(capacity - 21)
        pending.add(value, None, 1, (), None)
        pending.size = _record_size(value, None, ())
        ((part, _id, message),) = producer._encode(pending)
        assert part is pending and len(message) > 8192 - 30
    finally:
        producer.close(0)


def test_the_producer_counts_record_sizes_as_the_format_encodes_them(
    producer_and_network: tuple[Producer, Recorder],
) -> None:
    from memq._format import encoded_record_size

    producer, network = producer_and_network
    network.hold.clear()
    producer.produce("t", b"value", key=b"key", headers={"name": b"v", "empty": None})
    producer.produce("t", bytearray(b"v2"))
    deadline = time.monotonic() + 5
    while len(network.sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    (first, _id, _m), (second, _id2, _m2) = network.sent[0], network.sent[1]
    assert first.size == encoded_record_size(first.record(0))
    assert second.size == encoded_record_size(second.record(0))
    network.hold.set()


def test_only_failures_reach_callbacks_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = Producer(brokers=["127.0.0.1:9"], linger_ms=0, delivery_report_only_error=True)
    recorder = Recorder(producer)

    async def deliver(self: Producer, item: Any) -> None:
        await recorder.deliver(item)

    monkeypatch.setattr(Producer, "_deliver", deliver)
    try:
        reports: list[Any] = []
        producer.produce("t", b"ok", on_delivery=lambda e, m: reports.append(e))
        future = producer.send("t", b"ok too")
        assert producer.flush(5) == 0
        assert reports == [] and future.result(0).value() == b"ok too"  # futures always resolve
        recorder.answer = DeliveryError(502, "upload failed")
        producer.produce("t", b"lost", on_delivery=lambda e, m: reports.append(e))
        producer.flush(5)
        assert [e.code() for e in reports] == [502]
    finally:
        producer.close(5)


def test_plain_records_share_a_request_with_headers_and_callbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records on the fast path and the general one land in one request, in order, each with its report."""
    defaults: list[Any] = []
    producer = Producer(
        brokers=["127.0.0.1:9"], linger_ms=60_000, on_delivery=lambda e, m: defaults.append((e, m.value()))
    )
    recorder = Recorder(producer)

    async def deliver(self: Producer, item: Any) -> None:
        await recorder.deliver(item)

    monkeypatch.setattr(Producer, "_deliver", deliver)
    try:
        own: list[Any] = []
        producer.produce("t", b"a")
        producer.produce("t", b"b", key=b"kb")
        producer.produce("t", b"c", headers={"h": b"1"})
        producer.produce("t", b"d", on_delivery=lambda e, m: own.append(m.value()))
        future = producer.send("t", bytearray(b"e"), key=memoryview(b"ke"))
        producer.produce("t", b"f", timestamp=42)
        assert len(producer) == 6 and not recorder.sent  # one open request, lingering
        assert producer.flush(5) == 0
        ((_sealed, _id, message),) = recorder.sent
        _header, records = decode_message(message)
        assert [(r.value, r.key, r.headers) for r in records] == [
            (b"a", None, ()),
            (b"b", b"kb", ()),
            (b"c", None, (("h", b"1"),)),
            (b"d", None, ()),
            (b"e", b"ke", ()),
            (b"f", None, ()),
        ]
        assert records[5].timestamp_ms == 42 and records[0].timestamp_ms > 1_600_000_000_000
        assert own == [b"d"] and future.result(0).key() == b"ke"
        assert defaults == [(None, b"a"), (None, b"b"), (None, b"c"), (None, b"f")]
    finally:
        producer.close(5)


def _recorded(monkeypatch: pytest.MonkeyPatch, **settings: Any) -> tuple[Producer, Recorder]:
    producer = Producer(brokers=["127.0.0.1:9"], **settings)
    recorder = Recorder(producer)

    async def deliver(self: Producer, item: Any) -> None:
        await recorder.deliver(item)

    monkeypatch.setattr(Producer, "_deliver", deliver)
    return producer, recorder


def _wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


def test_lingering_requests_of_every_topic_are_sealed_and_the_timer_rearms(monkeypatch: pytest.MonkeyPatch) -> None:
    producer, recorder = _recorded(monkeypatch, linger_ms=20)
    try:
        producer.produce("a", b"1")
        producer.produce("b", b"2")
        _wait_for(lambda: len(recorder.sent) == 2)  # no flush: the linger timer sealed both
        assert sorted(sealed.topic for sealed, _, _ in recorder.sent) == ["a", "b"]
        _wait_for(lambda: not producer._ticking)  # nothing open: the timer stopped
        producer.produce("a", b"3")  # a new request arms it again
        _wait_for(lambda: len(recorder.sent) == 3)
        assert decode_message(recorder.sent[2][2])[1][0].value == b"3"
        assert producer.flush(5) == 0
    finally:
        producer.close(5)


def test_a_request_the_format_cannot_encode_fails_its_records_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer, recorder = _recorded(monkeypatch, linger_ms=0)
    try:
        reports: list[Any] = []
        producer.produce("t", b"v", headers={"h": b"x" * 40_000}, on_delivery=lambda e, m: reports.append(e))
        assert producer.flush(5) == 0  # answered, not stuck unanswered
        assert [e.code() for e in reports] == [400] and "header" in reports[0].str()
        assert recorder.sent == []
    finally:
        producer.close(5)


def test_requests_leave_in_sealing_order_whatever_encoder_finishes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[bytes] = []

    async def deliver(self: Producer, item: Any) -> None:
        _header, records = decode_message(item[2])
        sent.append(records[0].value)
        self._complete(item[0], None)

    encode = Producer._encode

    def slow_first(self: Producer, sealed: _Open) -> Any:
        if sealed.values[0] == b"r-0":
            time.sleep(0.3)  # the second encoder finishes r-1 first; r-1 must still wait for r-0
        return encode(self, sealed)

    monkeypatch.setattr(Producer, "_deliver", deliver)
    monkeypatch.setattr(Producer, "_encode", slow_first)
    with Producer(brokers=["127.0.0.1:9"], linger_ms=0, encoder_threads=2) as producer:
        for i in range(6):
            producer.produce("t", b"r-%d" % i)
        assert producer.flush(5) == 0
    assert sent == [b"r-%d" % i for i in range(6)]
