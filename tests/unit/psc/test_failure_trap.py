"""A Kafka producer whose default ``on_delivery`` is a ``FailureReports`` hears of every failure, only once, and
of no success; a record's own callback hears of its own report only. With the speedups the failures come
through ``psc._failure_trap``, without them through confluent-kafka's default callback: the same either way.

librdkafka's in-process mock cluster (``test.mock.num.brokers``) stands in for Kafka.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import confluent_kafka as ck
import pytest

from psc.backends.base import FailureReports
from psc.backends.kafka import KafkaProducer

URI = "plaintext:/rn:kafka:local:local_dev::mock:"


class Reports:
    """A delivery callback that keeps what it is given: a ``FailureReports`` of it keeps failures only."""

    def __init__(self, failures_only: bool = False) -> None:
        self.failures_only = failures_only
        self.calls: list[tuple[Any, Any]] = []

    def __call__(self, err: Any, msg: Any) -> None:
        if err is not None or not self.failures_only:
            self.calls.append((err, msg))


def producer(reports: Reports, **config: Any) -> KafkaProducer:
    reports.failures_only = True
    native = {"test.mock.num.brokers": 1, "on_delivery": FailureReports(reports), **config}
    return KafkaProducer(URI, native)


def test_successes_are_not_reported_and_a_records_own_callback_is() -> None:
    reports, own = Reports(), Reports()
    p = producer(reports)
    for i in range(100):
        p.produce("orders", b"v%d" % i, b"k")
    p.produce("orders", b"mine", on_delivery=own)
    assert p.flush(10) == 0
    assert len(p) == 0
    assert reports.calls == []
    assert [(err, msg.value()) for err, msg in own.calls] == [(None, b"mine")]
    p.close()


def test_timed_out_records_are_reported_once_with_their_contents() -> None:
    reports, own = Reports(), Reports()
    # The mock broker answers after 5 s: every record times out first.
    p = producer(reports, **{"test.mock.broker.rtt": 5000, "message.timeout.ms": 200})
    p.produce("orders", b"v1", b"k1", timestamp=1234, headers=[("h", b"1"), ("empty", None)])
    p.produce("orders", b"v2")
    p.produce("orders", b"v3", on_delivery=own)
    assert p.flush(10) == 0
    assert len(p) == 0
    timed_out = ck.KafkaError._MSG_TIMED_OUT
    got = [(err.code(), msg.topic(), msg.key(), msg.value()) for err, msg in reports.calls]
    assert got == [(timed_out, "orders", b"k1", b"v1"), (timed_out, "orders", None, b"v2")]
    assert all(msg.error() == err for err, msg in reports.calls)
    if p.reports_headers:  # the trap copies them; confluent-kafka's own reports have none
        assert [msg.headers() for _, msg in reports.calls] == [[("h", b"1"), ("empty", None)], None]
    assert [(err.code(), msg.value()) for err, msg in own.calls] == [(timed_out, b"v3")]
    p.poll(0)
    assert len(reports.calls) == 2  # reported once
    p.close()


def test_purged_records_are_reported_from_poll() -> None:
    reports = Reports()
    p = producer(reports, **{"linger.ms": 60_000})
    for i in range(10):
        p.produce("orders", b"v%d" % i)
    p.purge(in_queue=True, in_flight=True, blocking=True)
    deadline = 50
    while len(reports.calls) < 10 and deadline:
        p.poll(0.1)
        deadline -= 1
    assert sorted(msg.value() for _, msg in reports.calls) == [b"v%d" % i for i in range(10)]
    assert {err.code() for err, _ in reports.calls} == {ck.KafkaError._PURGE_QUEUE}
    assert len(p) == 0
    p.close()


def test_a_record_refused_by_produce_raises_and_is_not_reported() -> None:
    reports = Reports()
    p = producer(reports)
    p.produce("orders", b"first")
    assert p.flush(10) == 0  # the topic's partitions are known now
    with pytest.raises(ck.KafkaException) as refused:
        p.produce("orders", b"nowhere", partition=10_000)
    assert refused.value.args[0].code() == ck.KafkaError._UNKNOWN_PARTITION
    p.poll(0.2)
    assert reports.calls == []
    assert len(p) == 0
    p.close()


def test_an_ordinary_callable_elsewhere() -> None:
    seen: list[tuple[Any, Any]] = []
    report = FailureReports(lambda err, msg: seen.append((err, msg)))
    report("boom", "msg")
    assert seen == [("boom", "msg")]


def test_with_the_speedups_the_trap_keeps_the_failures() -> None:
    # In a process of its own with the speedups on, so it also runs in the fallback pass of the unit tests.
    code = (
        "from psc.backends.base import FailureReports\n"
        "from psc.backends.kafka import KafkaProducer\n"
        f"p = KafkaProducer({URI!r}, {{'test.mock.num.brokers': 1, 'on_delivery': FailureReports(print)}})\n"
        "for i in range(100):\n"
        "    p.produce('orders', b'v')\n"
        "assert p.flush(10) == 0\n"
        "assert p.reports_headers\n"
        "print(type(p._trap).__module__)\n"
        "p.close()\n"
    )
    env = {name: value for name, value in os.environ.items() if name != "PSC_NO_SPEEDUPS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["psc._failure_trap"]  # and no report of the 100 successes was printed
