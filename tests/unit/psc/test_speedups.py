"""The C hot paths (``psc._speedups``) and their Python definitions (``psc._fallback``) behave the same."""

from __future__ import annotations

import gc
import sys
import weakref
from types import ModuleType
from typing import Any

import confluent_kafka
import pytest

import psc
import psc._fallback as fallback
from psc._accel import SPEEDUPS
from psc._message import DecodedMessage, MessageId, Source
from tests.unit.implementations import implementations
from tests.unit.psc.test_clients import CONFIG, FakeBackend

A = "plaintext:/rn:fake:env:cloud_region::clusterA:"

speedups, IMPLEMENTATIONS = implementations(fallback, "psc._speedups")


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> ModuleType:
    module: ModuleType = request.param
    return module


class Recorder:
    """Stands in for the backend's produce, the Python produce, the error handler and failed deliveries."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.fail = fail
        self.produced: list[tuple[Any, ...]] = []  # positional arguments, then the keywords if any
        self.slow: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.errors: list[tuple[Any, ...]] = []
        self.failed: list[tuple[Any, ...]] = []

    def produce(self, *args: Any, **kwargs: Any) -> None:
        if self.fail is not None:
            raise self.fail
        self.produced.append((*args, kwargs) if kwargs else args)

    def slow_produce(self, *args: Any, **kwargs: Any) -> str:
        self.slow.append((args, kwargs))
        return "slow"

    def on_error(self, *args: Any) -> str:
        self.errors.append(args)
        return "handled"

    def on_failed(self, *args: Any) -> str:
        self.failed.append(args)
        return "failed"


def make(
    impl: ModuleType, recorder: Recorder, *, plain: bool = True, sample_at: int = 0, keep_headers: bool = True
) -> tuple[Any, Any]:
    route = impl.RouteBase()
    route.produce, route.topic, route.plain, route.sample_at = recorder.produce, "native-topic", plain, sample_at
    route.source, route.keep_headers = Source(A), keep_headers
    fast = impl.FastProduce({"uri": route}, recorder.slow_produce, recorder.on_error, recorder.on_failed)
    return fast, route


def on_delivery(err: Any, msg: Any) -> None:
    raise AssertionError("only called through a report")


def callback(err: Any, msg: Any) -> None:
    raise AssertionError("only called through a report")


HEADERS = [("_mid", b"1"), ("host", b"h")]


def test_a_plain_record_goes_straight_to_the_backend_and_is_counted(impl: ModuleType) -> None:
    recorder = Recorder()
    fast, route = make(impl, recorder)
    assert fast("uri", b"v") is None
    assert fast("uri", b"v2", b"k") is None
    assert recorder.produced == [("native-topic", b"v"), ("native-topic", b"v2", b"k")]
    assert route.count == 2
    assert recorder.slow == []


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("unknown-uri", b"v"), {}),  # not resolved yet
        ((["unhashable"], b"v"), {}),
        ((), {"value": b"v"}),  # no topic
        (("uri", b"v"), {"bogus": 1}),  # not an argument of produce()
        (("uri", b"v"), {"value": b"twice"}),
        (("uri", b"v", None, -1, None, None, 0, None, "extra"), {}),
        (("uri", b"v"), {"on_delivery": "not callable"}),
        (("uri", b"v", None, -1, 5), {}),  # a callback that is not callable
        (("uri", b"v"), {"partition": 1.5}),
        (("uri", b"v"), {"partition": None}),  # confluent-kafka refuses it: Python reports it
        (("uri", b"v"), {"timestamp": None}),
        (("uri", b"v", None, True), {}),  # a bool is an int to confluent-kafka, not to the fast path
        (("uri", b"v"), {"timestamp": "now"}),
    ],
)
def test_everything_else_goes_to_the_python_produce_uncounted(
    impl: ModuleType, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    recorder = Recorder()
    fast, route = make(impl, recorder)
    assert fast(*args, **kwargs) == "slow"
    assert recorder.slow == [(args, kwargs)]
    assert recorder.produced == []
    assert route.count == 0


def test_routes_with_serde_or_a_sample_due_take_the_python_produce(impl: ModuleType) -> None:
    recorder = Recorder()
    fast, route = make(impl, recorder, plain=False)
    fast("uri", b"v", headers=HEADERS, on_delivery=on_delivery)
    fast, route = make(impl, recorder, sample_at=3)
    fast("uri", b"1")
    fast("uri", b"2", headers=HEADERS)
    fast("uri", b"3", on_delivery=on_delivery)  # the third record is sampled: Python counts it and asks for its report
    assert [args for args, _ in recorder.slow] == [("uri", b"v"), ("uri", b"3")]
    assert route.count == 2


@pytest.mark.parametrize(
    ("args", "kwargs", "sent"),
    [
        (("uri", b"v", b"k", -1), {}, ("native-topic", b"v", b"k")),
        (("uri",), {}, ("native-topic", None)),
        (("uri", b"v"), {}, ("native-topic", b"v")),
        (("uri", b"v"), {"key": b"k", "partition": -1, "timestamp": 0}, ("native-topic", b"v", b"k")),
        (("uri", b"v", b"k", 2), {}, ("native-topic", b"v", b"k", 2, None)),
        (("uri",), {"value": b"v", "timestamp": 5}, ("native-topic", b"v", None, -1, None, {"timestamp": 5})),
        (("uri", b"v", None, 1, None, None, 5), {}, ("native-topic", b"v", None, 1, None, {"timestamp": 5})),
    ],
)
def test_records_without_a_report_go_to_the_backend_as_the_python_produce_sends_them(
    impl: ModuleType, args: tuple[Any, ...], kwargs: dict[str, Any], sent: tuple[Any, ...]
) -> None:
    recorder = Recorder()
    fast, route = make(impl, recorder)
    assert fast(*args, **kwargs) is None
    assert recorder.produced == [sent]
    assert (route.count, recorder.slow) == (1, [])


@pytest.mark.parametrize(
    ("args", "kwargs", "report_callback", "extra"),
    [
        (("uri", b"v"), {"on_delivery": on_delivery}, on_delivery, {}),
        (("uri", b"v", None, -1, callback), {}, callback, {}),
        (("uri", b"v"), {"callback": callback, "on_delivery": on_delivery}, on_delivery, {}),  # on_delivery wins
        (("uri", b"v"), {"headers": HEADERS}, None, {"headers": HEADERS}),
        (
            ("uri", b"v", None, -1, None, on_delivery, 9, HEADERS),
            {},
            on_delivery,
            {"timestamp": 9, "headers": HEADERS},
        ),
        (
            ("uri", b"v"),
            {"headers": HEADERS, "timestamp": 9, "callback": callback},
            callback,
            {"timestamp": 9, "headers": HEADERS},
        ),
    ],
)
def test_a_record_with_a_callback_or_headers_carries_a_report(
    impl: ModuleType, args: tuple[Any, ...], kwargs: dict[str, Any], report_callback: Any, extra: dict[str, Any]
) -> None:
    recorder = Recorder()
    fast, route = make(impl, recorder)
    assert fast(*args, **kwargs) is None
    [sent] = recorder.produced
    assert sent[:4] == ("native-topic", b"v", None, -1)
    report = sent[4]
    assert type(report) is impl.Report
    assert (report.route, report.callback, report.failed) == (route, report_callback, recorder.on_failed)
    assert report.headers is extra.get("headers")
    assert (sent[5] if len(sent) == 6 else {}) == extra
    assert (route.count, recorder.slow) == (1, [])


def test_headers_without_a_callback_need_no_report_when_the_route_keeps_none(impl: ModuleType) -> None:
    # Remediation is off, or the backend's failure reports carry the headers themselves.
    recorder = Recorder()
    fast, _ = make(impl, recorder, keep_headers=False)
    fast("uri", b"v", headers=HEADERS)
    assert recorder.produced == [("native-topic", b"v", None, -1, None, {"headers": HEADERS})]


def test_a_report_wraps_a_delivered_record_for_the_callback_and_hands_failures_over(impl: ModuleType) -> None:
    recorder, heard = Recorder(), []
    fast, route = make(impl, recorder)
    fast("uri", b"v", headers=HEADERS, on_delivery=lambda err, msg: heard.append((err, msg)))
    report = recorder.produced[0][4]
    delivered = Record()
    assert report(None, delivered) is None
    [(err, message)] = heard
    assert (err, type(message), message.native, message.topic()) == (None, impl.Message, delivered, A + "t")
    assert recorder.failed == []
    assert report("boom", delivered) == "failed"
    assert recorder.failed == [(route, report.callback, HEADERS, "boom", delivered)]
    assert len(heard) == 1  # the callback hears of a failure only from the remediation
    fast("uri", b"v", headers=HEADERS)
    assert recorder.produced[1][4](None, delivered) is None  # no callback: a success is nothing to do
    with pytest.raises(TypeError):
        report(None)


def test_an_exception_from_the_callback_reaches_the_backend(impl: ModuleType) -> None:
    recorder = Recorder()
    fast, _ = make(impl, recorder)

    def broken(err: Any, msg: Any) -> None:
        raise ValueError("application bug")

    fast("uri", b"v", on_delivery=broken)
    with pytest.raises(ValueError, match="application bug"):
        recorder.produced[0][4](None, Record())


def test_routes_added_later_are_seen(impl: ModuleType) -> None:
    recorder = Recorder()
    _, route = make(impl, recorder)
    routes: dict[str, Any] = {}  # the producer fills the same dict as it resolves topic URIs
    late = impl.FastProduce(routes, recorder.slow_produce, recorder.on_error, recorder.on_failed)
    assert late("uri", b"v") == "slow"
    routes["uri"] = route
    late("uri", b"v")
    assert recorder.produced == [("native-topic", b"v")]


@pytest.mark.parametrize("error", [BufferError("queue full"), RuntimeError("fatal"), KeyboardInterrupt()])
def test_a_refused_record_is_handed_to_the_error_handler_with_its_exception(
    impl: ModuleType, error: BaseException
) -> None:
    recorder = Recorder(fail=error)
    fast, route = make(impl, recorder)
    assert fast("uri", b"v", b"k") == "handled"
    assert fast("uri", b"v", partition=3, timestamp=7, callback=callback, headers=HEADERS) == "handled"
    [(seen_route, value, key, exc, *rest), with_all] = recorder.errors
    assert (seen_route, value, key, exc, *rest) == (route, b"v", b"k", error, -1, 0, None, None)
    assert exc.__traceback__ is not None
    assert with_all == (route, b"v", None, error, 3, 7, callback, HEADERS)
    assert route.count == 2  # counted once each; the handler re-sends without counting again


def test_an_exception_from_the_error_handler_reaches_the_caller(impl: ModuleType) -> None:
    recorder = Recorder(fail=BufferError("queue full"))

    def give_up(route: Any, value: Any, key: Any, exc: BaseException, *rest: Any) -> None:
        raise exc

    route = impl.RouteBase()
    route.produce, route.topic, route.plain = recorder.produce, "t", True
    fast = impl.FastProduce({"uri": route}, recorder.slow_produce, give_up, recorder.on_failed)
    with pytest.raises(BufferError, match="queue full"):
        fast("uri", b"v")


class Record:
    """A native record with an optional error."""

    def __init__(self, error: Any = None, value: bytes | None = b"value") -> None:
        self._error, self._value = error, value

    def error(self) -> Any:
        return self._error

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 7

    def timestamp(self) -> tuple[int, int]:
        return (1, 1007)

    def key(self) -> bytes:
        return b"key"

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return [("h", b"1")]


def test_wrap_batch_wraps_every_record_or_none_if_one_carries_an_error(impl: ModuleType) -> None:
    source = Source(A)
    batch = [Record(), Record()]
    wrapped = impl.wrap_batch(source, batch)
    assert [type(m) for m in wrapped] == [impl.Message, impl.Message]
    assert [m.native for m in wrapped] == batch
    assert all(m._source is source for m in wrapped)
    assert impl.wrap_batch(source, []) == []
    assert impl.wrap_batch(source, [Record(), Record("boom"), Record()]) is None


def test_message_reads_the_native_record_and_asks_its_source_for_the_rest(impl: ModuleType) -> None:
    message = impl.Message(Record(), Source(A))
    assert (message.topic(), message.topic_uri) == (A + "t", A + "t")
    assert (message.partition(), message.offset(), message.timestamp()) == (2, 7, (1, 1007))
    assert (message.key(), message.value(), message.headers()) == (b"key", b"value", [("h", b"1")])
    assert (message.error(), message.is_eof(), len(message)) == (None, False, 5)
    assert message.message_id == MessageId(A + "t", 2, 7, 1007)
    assert repr(message) == f"Message(topic_uri={A + 't'!r}, partition=2, offset=7)"
    assert len(impl.Message(Record(value=None), Source(A))) == 0


class PollRecorder:
    """Stands in for the Python poll, the rare path and the tick."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def slow(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append(("slow", args, kwargs))
        return "slow"

    def rare(self, timeout: Any, member: Any, native: Any) -> str:
        self.calls.append(("rare", timeout, member, native))
        return "rare"

    def tick(self, member: Any, native: Any) -> None:
        self.calls.append(("tick", member, native))
        member.countdown = 2


def poll_member(impl: ModuleType, buffer: list[Any], *, slow: bool = False, countdown: int = 10) -> Any:
    member = impl.MemberBase()
    member.buffer, member.source, member.countdown, member.slow = buffer, Source(A), countdown, slow
    return member


def test_poll_returns_buffered_records_last_first_and_ticks_at_zero(impl: ModuleType) -> None:
    recorder, first, second, third = PollRecorder(), Record(), Record(), Record()
    fast = impl.FastPoll(recorder.slow, recorder.rare, recorder.tick)
    fast.member = member = poll_member(impl, [third, second, first], countdown=2)
    assert fast(1.0).native is first
    assert recorder.calls == [] and member.countdown == 1
    assert fast().native is second  # the countdown reaches zero: ticked, which restarts it
    assert recorder.calls == [("tick", member, second)] and member.countdown == 2
    message = fast(0)
    assert (message.native, message.topic(), type(message)) == (third, A + "t", impl.Message)
    assert member.buffer == []


def test_a_record_whose_tick_fails_is_returned_by_the_next_poll(impl: ModuleType) -> None:
    recorder, record = PollRecorder(), Record()

    def failing_tick(member: Any, native: Any) -> None:
        member.countdown = 5
        raise RuntimeError("reset failed")

    fast = impl.FastPoll(recorder.slow, recorder.rare, failing_tick)
    fast.member = member = poll_member(impl, [record], countdown=1)
    with pytest.raises(RuntimeError, match="reset failed"):
        fast(0)
    assert member.buffer == [record]
    assert fast(0).native is record


def test_poll_hands_everything_else_to_python(impl: ModuleType) -> None:
    recorder, failed, plain = PollRecorder(), Record("boom"), Record()
    fast = impl.FastPoll(recorder.slow, recorder.rare, recorder.tick)
    assert fast(1.0) == "slow"  # no single member
    fast.member = member = poll_member(impl, [])
    assert fast(1.0) == "slow"  # an empty buffer: Python refills it
    member.buffer = [plain, failed]
    assert fast(timeout=1.0) == "slow"  # keywords
    assert fast(1.0) == "rare"  # a record carrying an error
    member.slow = True
    assert fast() == "rare"  # several topics, serde or interceptors
    assert recorder.calls == [
        ("slow", (1.0,), {}),
        ("slow", (1.0,), {}),
        ("slow", (), {"timeout": 1.0}),
        ("rare", 1.0, member, failed),
        ("rare", None, member, plain),
    ]
    assert member.countdown == 10


def test_confluent_kafka_records_are_read_alike(impl: ModuleType) -> None:
    # cimpl.Message is a static type: the C version looks its methods up once and reuses them.
    source = Source(A)
    records = [confluent_kafka.Message(topic="t", partition=1, offset=i, key=b"k", value=b"v" * i) for i in range(3)]
    for _ in range(2):
        wrapped = impl.wrap_batch(source, records)
        assert [(m.topic(), m.partition(), m.offset(), m.key(), len(m)) for m in wrapped] == [
            (A + "t", 1, i, b"k", i) for i in range(3)
        ]
    eof = confluent_kafka.Message(
        topic="t", error=confluent_kafka.KafkaError(confluent_kafka.KafkaError._PARTITION_EOF)
    )
    assert [m.error() for m in impl.wrap_batch(source, records)] == [None, None, None]
    assert impl.wrap_batch(source, [*records, eof]) is None
    assert impl.Message(eof, source).is_eof()
    assert impl.Message(eof, source).error().code() == confluent_kafka.KafkaError._PARTITION_EOF
    assert impl.wrap_batch(source, [Record(), *records]) is not None  # another type of record in between


@pytest.mark.skipif(speedups is None, reason="psc._speedups was not built")
def test_c_objects_release_what_they_hold() -> None:
    native, recorder, source = Record(), Recorder(), Source(A)
    ref = weakref.ref(native)
    before = sys.getrefcount(native)
    poll = speedups.FastPoll(Recorder().slow_produce, Recorder().on_error, lambda member, native: None)  # type: ignore[union-attr]
    poll.member = member = speedups.MemberBase()  # type: ignore[union-attr]
    member.source, member.countdown, member.slow = source, 10**9, False
    for _ in range(1000):
        member.buffer = [native]
        poll(0)
        speedups.wrap_batch(source, [native])  # type: ignore[union-attr]
        assert speedups.Message(native, source).message_id.offset == 7  # type: ignore[union-attr]
        repr(DecodedMessage.of(native, source, (1, 2, 3)))  # type: ignore[arg-type]
    assert sys.getrefcount(native) == before
    fast, _ = make(speedups, recorder)
    payload = bytes(range(64))  # an object of its own: shared constants see other references come and go
    before = sys.getrefcount(payload)
    for _ in range(1000):
        fast("uri", payload)
    recorder.produced.clear()
    assert sys.getrefcount(payload) == before
    headers, heard = [("h", payload)], []

    def deliver(err: Any, msg: Any) -> None:
        heard.append(msg.native)

    counts = [sys.getrefcount(obj) for obj in (payload, headers, deliver, native)]
    for _ in range(1000):
        fast("uri", payload, b"k", headers=headers, on_delivery=deliver, timestamp=5)
        fast("uri", payload, None, 1, deliver)
    for sent in recorder.produced:
        sent[4](None, native)
        sent[4]("failed", native)
    del sent
    recorder.produced.clear()
    heard.clear()
    recorder.failed.clear()
    failing = Recorder(fail=BufferError("queue full"))
    fast_failing, _ = make(speedups, failing)
    for _ in range(1000):
        fast_failing("uri", payload, headers=headers, on_delivery=deliver)
    failing.errors.clear()
    failing.fail.__traceback__ = None  # one exception raised 1000 times: its traceback holds every call's frame
    assert [sys.getrefcount(obj) for obj in (payload, headers, deliver, native)] == counts
    del native
    gc.collect()
    assert ref() is None


def test_confluent_kafkas_own_produce_gets_each_record_and_its_refusals_reach_the_error_handler(
    impl: ModuleType,
) -> None:
    # confluent-kafka's produce is a C method the fast path calls directly, reusing its argument tuples; a
    # producer without bootstrap servers queues records and never connects. Its queue holds three records.
    native = confluent_kafka.Producer({"queue.buffering.max.messages": 3, "log_level": 0})
    recorder = Recorder()
    fast, route = make(impl, recorder)
    route.produce = native.produce
    payload, key = bytes(range(64)), bytes(range(3))  # objects of their own, for their reference counts
    before = sys.getrefcount(payload), sys.getrefcount(key)
    assert fast("uri", payload) is None
    assert fast("uri", payload, key) is None
    assert fast("uri", payload, None) is None
    assert len(native) == 3 and recorder.errors == [] and recorder.slow == []
    assert fast("uri", payload, key) == "handled"
    [(seen_route, value, seen_key, exc, partition, timestamp, *_)] = recorder.errors
    assert (seen_route, value, seen_key, partition, timestamp) == (route, payload, key, -1, 0)
    assert isinstance(exc, BufferError)
    recorder.errors.clear()
    del seen_route, value, seen_key, exc
    native.purge()
    native.poll(0)  # serves the purged records' reports
    for _ in range(1000):
        fast("uri", payload)
        fast("uri", payload, key)
        native.purge()
        native.poll(0)
    assert len(native) == 0 and route.count == 2004
    assert (sys.getrefcount(payload), sys.getrefcount(key)) == before, "no record is kept"
    native.flush(0)


def test_plain_messages_are_not_tracked_by_the_cycle_collector_but_decoded_ones_are() -> None:
    # Tracked wrappers would double a batch's allocations that trigger collections (see _speedups.c).
    message = psc.Message(Record(), Source(A))  # type: ignore[arg-type]
    decoded = DecodedMessage.of(Record(), Source(A), (None, {"a": 1}, None))  # type: ignore[arg-type]
    assert gc.is_tracked(message) is not SPEEDUPS
    assert gc.is_tracked(decoded)
    assert decoded.value() == {"a": 1}


def test_producer_sends_plain_records_through_the_fast_path_and_keeps_overrides() -> None:
    from psc.backends import register_backend, unregister_backend

    fake = FakeBackend()
    register_backend("fake", fake)
    try:
        producer = psc.Producer(CONFIG)
        assert type(vars(producer)["produce"]).__module__ == ("psc._speedups" if SPEEDUPS else "psc._fallback")

        class Custom(psc.Producer):
            def produce(self, *args: Any, **kwargs: Any) -> None:
                raise AssertionError("overridden")

        assert "produce" not in vars(Custom(CONFIG))
    finally:
        unregister_backend("fake")


def test_producer_keeps_the_headers_of_a_fast_path_record_for_its_retry_and_reports_a_message() -> None:
    from psc.backends import register_backend, unregister_backend
    from tests.unit.psc.test_clients import FakeError

    fake = FakeBackend()
    register_backend("fake", fake)
    try:
        producer = psc.Producer(CONFIG)
        producer.produce(A + "t", b"first")  # resolves the route
        route = producer._routes[A + "t"]
        sent: list[tuple[Any, ...]] = []
        backend_produce, full = route.produce, []

        def produce(*args: Any, **kwargs: Any) -> None:
            sent.append((args[1], args[4], kwargs.get("headers")))
            if full:
                raise full.pop()
            backend_produce(*args, **kwargs)

        route.produce = produce
        heard: list[tuple[Any, Any]] = []
        producer.poll(0)
        fake.failures.append(FakeError("_MSG_TIMED_OUT", code=-192, retriable=True))
        producer.produce(A + "t", b"w", None, -1, lambda err, msg: heard.append((err, msg)), headers=HEADERS)
        full.append(BufferError("queue full"))
        producer.produce(A + "t", b"v", headers=HEADERS, on_delivery=lambda err, msg: heard.append((err, msg)))
        assert producer.flush(1) == 0
        # b"w" goes through the fast path; its delivery fails once and it is retried with its headers before its
        # callback hears. b"v" is refused once (queue full) and re-sent by Python.
        assert [(value, headers) for value, _, headers in sent] == [
            (b"w", HEADERS),
            (b"v", HEADERS),
            (b"v", HEADERS),
            (b"w", HEADERS),
        ]
        assert type(sent[0][1]).__name__ == "Report"
        assert [(err, type(msg), msg.topic(), msg.value()) for err, msg in heard] == [
            (None, psc.Message, A + "t", b"v"),
            (None, psc.Message, A + "t", b"w"),
        ]
    finally:
        unregister_backend("fake")


def test_headers_need_no_report_when_the_backends_failure_reports_carry_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from psc.backends import register_backend, unregister_backend
    from tests.unit.psc.test_clients import FakeError, FakeProducer, FakeRecord

    class Headed(FakeRecord):
        def __init__(self, topic: str, value: Any, offset: int, headers: Any) -> None:
            super().__init__(topic, value, 0, offset)
            self._headers = headers

        def headers(self) -> Any:
            return self._headers

    def produce(
        self: FakeProducer,
        topic: str,
        value: Any,
        key: Any = None,
        partition: int = -1,
        on_delivery: Any = None,
        **kw: Any,
    ) -> None:
        self.produced.append((topic, value, on_delivery, kw.get("headers")))
        self.queue.append((Headed(topic, value, len(self.produced) - 1, kw.get("headers")), on_delivery))

    monkeypatch.setattr(FakeProducer, "reports_headers", True)
    monkeypatch.setattr(FakeProducer, "_produce", produce)
    fake = FakeBackend()
    register_backend("fake", fake)
    try:
        producer = psc.Producer(CONFIG)
        producer.produce(A + "t", b"first")
        assert producer.flush(1) == 0
        fake.failures.append(FakeError("_MSG_TIMED_OUT", code=-192, retriable=True))
        producer.produce(A + "t", b"w", headers=HEADERS)
        assert producer.flush(1) == 0
        # b"w" went without a Report; its failure report carried its headers, and the retry sent them again.
        sent = [(value, on_delivery is None, headers) for _, value, on_delivery, headers in fake.producers[0].produced]
        assert sent == [(b"first", True, None), (b"w", True, HEADERS), (b"w", False, HEADERS)]
    finally:
        unregister_backend("fake")


def test_a_tally_counts_reports_and_hands_failures_to_its_failed_method(impl: ModuleType) -> None:
    class Batch(impl.DeliveryTally):  # type: ignore[name-defined, misc]
        __slots__ = ("errors",)

        def __init__(self, pending: int) -> None:
            super().__init__(pending)
            self.errors: list[tuple[Any, Any]] = []

        def failed(self, err: Any, msg: Any) -> None:
            self.errors.append((err, msg))

    batch = Batch(3)
    assert (batch.pending, batch.acked) == (3, 0)
    batch(None, Record())
    batch("boom", "msg")
    assert (batch.pending, batch.acked, batch.errors) == (1, 1, [("boom", "msg")])
    plain = impl.DeliveryTally()
    assert plain("ignored", None) is None and (plain.pending, plain.acked) == (-1, 0)
    with pytest.raises(TypeError):
        plain(None)


def test_a_report_counts_a_tally_without_a_message_unless_it_overrides_its_call(impl: ModuleType) -> None:
    recorder = Recorder()
    fast, route = make(impl, recorder, keep_headers=False)
    tally = impl.DeliveryTally(2)
    fast("uri", b"v", headers=HEADERS, on_delivery=tally)
    fast("uri", b"w", headers=HEADERS, on_delivery=tally)
    first, second = (sent[4] for sent in recorder.produced)
    assert first(None, Record()) is None
    assert (tally.pending, tally.acked) == (1, 1)
    assert second("boom", "native") == "failed"  # a failure still goes to the remediation, which reports it
    assert recorder.failed == [(route, tally, None, "boom", "native")]
    assert (tally.pending, tally.acked) == (1, 1)

    heard: list[Any] = []

    class Loud(impl.DeliveryTally):  # type: ignore[name-defined, misc]
        def __call__(self, err: Any, msg: Any) -> None:
            heard.append((err, type(msg)))

    fast("uri", b"x", on_delivery=Loud(1))
    recorder.produced[-1][4](None, Record())
    assert heard == [(None, impl.Message)]


def test_a_producer_reports_to_a_tally_and_its_failures_reach_failed() -> None:
    from psc.backends import register_backend, unregister_backend
    from tests.unit.psc.test_clients import FakeError

    class Batch(psc.DeliveryTally):
        __slots__ = ("errors",)

        def __init__(self, pending: int) -> None:
            super().__init__(pending)
            self.errors: list[Any] = []

        def failed(self, err: Any, msg: Any) -> None:
            self.errors.append((err, msg.value()))

    fake = FakeBackend()
    register_backend("fake", fake)
    try:
        producer = psc.Producer({**CONFIG, "psc.auto.resolution.enabled": "false"})
        batch = Batch(3)
        for value in (b"a", b"b", b"c"):
            producer.produce(A + "t", value, headers=HEADERS, on_delivery=batch)
        fake.failures.append(FakeError("_MSG_TIMED_OUT", code=-192, retriable=True))  # the next one delivered
        assert producer.flush(1) == 0
        assert (batch.pending, batch.acked) == (0, 2)
        assert [value for _, value in batch.errors] == [b"a"]
    finally:
        unregister_backend("fake")
