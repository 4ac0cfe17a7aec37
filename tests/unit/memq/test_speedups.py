"""The C hot paths (``memq._speedups``) and their Python definitions (``memq._fallback``) behave the same."""

from __future__ import annotations

import os
import threading
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memq._fallback as fallback
from memq._accel import SPEEDUPS
from memq._format import Compression, Record, _encode_records, decode_message, encode_records, seal_message
from memq._producer import Producer
from tests.unit.implementations import implementations

speedups, IMPLEMENTATIONS = implementations(fallback, "memq._speedups")


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request: pytest.FixtureRequest) -> ModuleType:
    module: ModuleType = request.param
    return module


def test_the_c_extension_is_built_where_a_compiler_is() -> None:
    # CI machines have cc (scripts/install-system-packages): the fast paths must be the ones in use there.
    assert SPEEDUPS == (speedups is not None and not os.environ.get("MEMQ_NO_SPEEDUPS"))  # noqa: SIM300
    assert type(Producer.produce).__name__ == ("method_descriptor" if SPEEDUPS else "function")


columns = st.lists(
    st.tuples(st.binary(max_size=300), st.none() | st.binary(max_size=40), st.integers(-(2**63), 2**63 - 1)),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(columns)
def test_encode_plain_writes_the_formats_bytes_in_both_implementations(rows: list[tuple[bytes, Any, int]]) -> None:
    values, keys, stamps = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    expected = _encode_records([Record(v, k or None, (), t) for v, k, t in rows])
    assert fallback.encode_plain(values, keys, stamps) == expected
    if speedups is not None:
        assert speedups.encode_plain(values, keys, stamps) == expected
    assert encode_records(values, keys, stamps) == expected


def test_encoded_records_decode_back(impl: ModuleType) -> None:
    values, keys, stamps = [b"v1", b"", b"v3" * 500], [None, b"k2", b""], [1, 2, 1_700_000_000_000]
    body = impl.encode_plain(values, keys, stamps)
    message = seal_message(body, 3, compression=Compression.NONE, producer_epoch=1, request_id=2, address=b"\x7f\0\0\1")
    _, records = decode_message(message)
    assert [(r.value, r.key, r.timestamp_ms) for r in records] == [
        (b"v1", None, 1),
        (b"", b"k2", 2),
        (b"v3" * 500, None, 1_700_000_000_000),
    ]


def test_encode_plain_leaves_odd_columns_to_python() -> None:
    if speedups is None:
        pytest.skip("memq._speedups was not built")
    odd: Any = speedups.encode_plain  # called with what its signature refuses
    assert odd([bytearray(b"x")], [None], [1]) is None
    assert odd([b"x"], [bytearray(b"k")], [1]) is None
    assert odd([b"x"], [None], [2**63]) is None
    assert odd([b"x"], [None], [1.5]) is None
    assert odd([b"x", b"y"], [None], [1, 2]) is None
    # encode_records packs what the C path leaves, or names what is wrong
    assert encode_records([bytearray(b"x")], [None], [1]) == encode_records([b"x"], [None], [1])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="2 values, 1 keys and 2 timestamps"):
        encode_records([b"x", b"y"], [None], [1, 2])


class _Open(fallback.OpenBase):
    pass


def _producer(impl: ModuleType, capacity: int = 1000, room: int = 10_000) -> Any:
    class Fake(impl.ProducerBase):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            self._open: dict[str, Any] = {}
            self._lock = threading.Lock()
            self._buffered = 0
            self._unanswered = 0
            self._max_buffered = room
            self.slow: list[tuple[Any, ...]] = []

        def _append(self, *args: Any) -> None:
            self.slow.append(args)

    open_base = impl.OpenBase

    class Open(open_base):  # type: ignore[misc, valid-type]
        __slots__ = ("topic",)

    producer = Fake()
    pending = Open()
    pending.values, pending.keys, pending.stamps = [], [], []
    pending.headers = pending.reports = None
    pending.size, pending.capacity, pending.sealed = 0, capacity, False
    producer._open["t"] = pending
    return producer


def test_plain_records_join_the_open_request(impl: ModuleType) -> None:
    producer = _producer(impl)
    producer.produce("t", b"v" * 10)
    producer.produce("t", b"w", b"key", None, 7)
    producer.produce("t", b"x", key=None, timestamp=9)
    pending = producer._open["t"]
    assert pending.values == [b"v" * 10, b"w", b"x"]
    assert pending.keys == [None, b"key", None]
    assert pending.stamps[1:] == [7, 9] and pending.stamps[0] > 1_600_000_000_000
    assert (pending.size, producer._buffered, producer._unanswered) == (31 + 25 + 22, 78, 3)
    assert producer.slow == []


def test_headers_and_reports_columns_get_an_entry_per_record(impl: ModuleType) -> None:
    producer = _producer(impl)
    pending = producer._open["t"]
    pending.headers, pending.reports = [(("h", b"1"),)], ["report"]
    producer.produce("t", b"v")
    assert pending.headers == [(("h", b"1"),), ()]
    assert pending.reports == ["report", None]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("t", b"v", None, {"h": b"1"}), {}),  # headers
        (("t", b"v"), {"on_delivery": print}),  # its own report
        (("t", bytearray(b"v")), {}),  # not bytes
        (("t", b"v", memoryview(b"k")), {}),
        (("other", b"v"), {}),  # no open request for the topic
        (("t", b"v" * 1000), {}),  # does not fit the request
    ],
)
def test_everything_else_goes_to_append_with_every_argument(
    impl: ModuleType, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    producer = _producer(impl)
    producer.produce(*args, **kwargs)
    names = ("topic", "value", "key", "headers", "timestamp", "on_delivery")
    given = {
        "key": None,
        "headers": None,
        "timestamp": 0,
        "on_delivery": None,
        **dict(zip(names, args, strict=False)),
        **kwargs,
    }
    assert producer.slow == [tuple(given[name] for name in names)]
    assert producer._open["t"].values == [] and producer._unanswered == 0


def test_no_room_in_flight_goes_to_append(impl: ModuleType) -> None:
    producer = _producer(impl, room=30)
    producer.produce("t", b"v")  # 22 bytes fit
    producer.produce("t", b"w" * 10)  # 31 more do not: _append blocks for room
    assert producer._open["t"].values == [b"v"]
    assert [args[1] for args in producer.slow] == [b"w" * 10]


def test_bad_calls_raise_type_errors(impl: ModuleType) -> None:
    producer = _producer(impl)
    with pytest.raises(TypeError):
        producer.produce("t")
    with pytest.raises(TypeError):
        producer.produce("t", b"v", nonsense=1)
    with pytest.raises(TypeError):
        producer.produce("t", b"v", None, None, 0, None, "extra")


def test_psc_produce_takes_pscs_argument_order(impl: ModuleType) -> None:
    producer = _producer(impl)
    producer.psc_produce("t", b"v", b"k")
    producer.psc_produce("t")  # no value: an empty one
    producer.psc_produce("t", None, None, 3, None, 5)  # the partition is ignored
    pending = producer._open["t"]
    assert (pending.values, pending.keys, pending.stamps[2]) == ([b"v", b"", b""], [b"k", None, None], 5)

    def report(err: Any, msg: Any) -> None:
        pass

    producer.psc_produce("t", b"w", None, -1, report, timestamp=7, headers=[("h", b"1")])
    assert producer.slow == [("t", b"w", None, [("h", b"1")], 7, report)]
    with pytest.raises(TypeError):
        producer.psc_produce()
