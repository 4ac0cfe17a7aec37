"""confluent-kafka parity of the client API: call shapes, keyword names, error objects, exported names."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import confluent_kafka
import pytest

import psc
from psc._message import Source
from tests.unit.psc.test_clients import CONFIG, FakeBackend, FakeRecord, backend

__all__ = ["backend"]  # the fixture, imported for the tests below

A = "plaintext:/rn:fake:env:cloud_region::clusterA:"
GROUP = {**CONFIG, "psc.consumer.group.id": "g"}


# --- names and objects -------------------------------------------------------------------------------


def test_psc_exports_the_top_level_names_of_confluent_kafka_that_apply() -> None:
    for name in [
        "KafkaError",
        "KafkaException",
        "TopicPartition",
        "Message",
        "Producer",
        "Consumer",
        "OFFSET_BEGINNING",
        "OFFSET_END",
        "OFFSET_STORED",
        "OFFSET_INVALID",
        "TIMESTAMP_NOT_AVAILABLE",
        "TIMESTAMP_CREATE_TIME",
        "TIMESTAMP_LOG_APPEND_TIME",
        "ConsumerGroupTopicPartitions",
        "ConsumerGroupState",
        "Uuid",
        "Node",
        "libversion",
    ]:
        assert name in psc.__all__, name
        native = getattr(confluent_kafka, name)
        if isinstance(native, int):
            assert getattr(psc, name) == native, name
    assert psc.KafkaError is confluent_kafka.KafkaError
    assert psc.KafkaException is confluent_kafka.KafkaException


def test_topic_partition_answers_as_confluents_with_the_topic_uri_as_topic() -> None:
    tp = psc.TopicPartition(A + "t", 3, 42)
    assert (tp.topic, tp.partition, tp.offset, tp.metadata, tp.leader_epoch, tp.error) == (
        A + "t",
        3,
        42,
        None,
        None,
        None,
    )
    assert tp.topic_uri == tp.topic
    assert psc.TopicPartition(A + "t").offset == confluent_kafka.TopicPartition("t").offset == psc.OFFSET_INVALID
    assert psc.TopicUriPartition is psc.TopicPartition
    assert tp == psc.TopicPartition(A + "t", 3) and hash(tp) == hash(psc.TopicPartition(A + "t", 3, 7))
    assert sorted([psc.TopicPartition(A + "t", 2), tp]) == [psc.TopicPartition(A + "t", 2), tp]
    assert "partition=3" in str(tp) and "offset=42" in str(tp)


def test_every_psc_error_is_a_kafka_exception_carrying_a_kafka_error() -> None:
    error = psc.ConfigError(["bad key"])
    assert isinstance(error, confluent_kafka.KafkaException) and isinstance(error, ValueError)
    kafka_error = error.args[0]
    assert isinstance(kafka_error, confluent_kafka.KafkaError)
    assert kafka_error.code() == confluent_kafka.KafkaError._INVALID_ARG
    assert "bad key" in kafka_error.str() and "bad key" in str(error)
    closed = psc.ClientClosedError("the consumer is closed")
    assert isinstance(closed, RuntimeError) and closed.args[0].code() == confluent_kafka.KafkaError._STATE


def test_a_backend_error_carries_the_native_kafka_error_itself() -> None:
    native = confluent_kafka.KafkaError(confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART, "no such topic")
    error = psc.BackendError.from_native(confluent_kafka.KafkaException(native))
    assert error.args[0] is native
    assert error.args[0] == confluent_kafka.KafkaError.UNKNOWN_TOPIC_OR_PART
    txn = psc.TransactionError("abortable", txn_requires_abort=True, retriable=False)
    assert txn.args[0].txn_requires_abort() and not txn.args[0].retriable()


def test_message_error_is_the_kafka_error_and_compares_with_codes() -> None:
    eof = confluent_kafka.KafkaError(confluent_kafka.KafkaError._PARTITION_EOF, "end")
    record = FakeRecord("t", None, error=eof)  # type: ignore[arg-type]
    message = psc.Message(record, Source(A))  # type: ignore[arg-type]
    error = message.error()
    assert error is eof
    assert error is not None and error.code() == confluent_kafka.KafkaError._PARTITION_EOF
    assert error == confluent_kafka.KafkaError._PARTITION_EOF
    assert (error.name(), error.fatal(), error.retriable(), error.txn_requires_abort()) == (
        "_PARTITION_EOF",
        False,
        False,
        False,
    )
    assert psc.Message(FakeRecord("t", b"v"), Source(A)).error() is None  # type: ignore[arg-type]


def test_a_partition_eof_reaches_the_application_as_a_message(backend: FakeBackend) -> None:
    consumer = psc.Consumer({**GROUP, "psc.consumer.enable.partition.eof": "true"})
    consumer.subscribe([A + "t"])
    [fake] = backend.consumers
    eof = confluent_kafka.KafkaError(confluent_kafka.KafkaError._PARTITION_EOF, "end")
    fake.records = [FakeRecord("t", b"1"), FakeRecord("t", None, offset=1, error=eof)]  # type: ignore[list-item]
    first = consumer.poll(0.01)
    second = consumer.poll(0.01)
    assert first is not None and first.error() is None
    assert second is not None and second.error() is not None
    assert second.error().code() == confluent_kafka.KafkaError._PARTITION_EOF  # type: ignore[union-attr]
    assert second.topic() == A + "t"


# --- call shapes ---------------------------------------------------------------------------------------


def _parameters(func: Any) -> list[tuple[str, Any]]:
    return [(p.name, p.default) for p in inspect.signature(func).parameters.values() if p.name != "self"]


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        (
            psc.Producer.produce,
            [
                ("topic", inspect.Parameter.empty),
                ("value", None),
                ("key", None),
                ("partition", -1),
                ("callback", None),
                ("on_delivery", None),
                ("timestamp", 0),
                ("headers", None),
            ],
        ),
        (psc.Producer.list_topics, [("topic", None), ("timeout", -1)]),
        (psc.Producer.purge, [("in_queue", True), ("in_flight", True), ("blocking", True)]),
        (
            psc.Producer.send_offsets_to_transaction,
            [("positions", inspect.Parameter.empty), ("group_metadata", inspect.Parameter.empty), ("timeout", -1)],
        ),
        (
            psc.Consumer.subscribe,
            [("topics", inspect.Parameter.empty), ("on_assign", None), ("on_revoke", None), ("on_lost", None)],
        ),
        (psc.Consumer.commit, [("message", None), ("offsets", None), ("asynchronous", True)]),
        (psc.Consumer.store_offsets, [("message", None), ("offsets", None)]),
        (psc.Consumer.list_topics, [("topic", None), ("timeout", -1)]),
        (psc.Consumer.consume, [("num_messages", 1), ("timeout", None)]),
        (psc.Consumer.committed, [("partitions", inspect.Parameter.empty), ("timeout", -1)]),
        (psc.Consumer.offsets_for_times, [("partitions", inspect.Parameter.empty), ("timeout", -1)]),
        (psc.Producer.cluster_id, [("timeout", -1), ("topic", None)]),
        (psc.Consumer.cluster_id, [("timeout", -1), ("topic", None)]),
        (psc.Consumer.memberid, [("topic", None)]),
    ],
    ids=lambda v: getattr(v, "__qualname__", ""),
)
def test_keyword_names_are_confluents(method: Any, expected: list[tuple[str, Any]]) -> None:
    assert _parameters(method) == expected


def test_produce_takes_confluents_keywords_and_positions(backend: FakeBackend) -> None:
    producer = psc.Producer(CONFIG)
    reports: list[tuple[Any, Any]] = []
    producer.produce(topic=A + "t", value=b"v", key=b"k", on_delivery=lambda e, m: reports.append((e, m)))
    producer.produce(A + "t", b"v2", b"k2", -1, lambda e, m: reports.append((e, m)))  # callback, 5th as confluent's
    producer.produce(A + "t", b"v3", callback=lambda e, m: reports.append((e, m)), timestamp=5, headers=None)
    producer.flush()
    assert [(e, m.value(), m.topic()) for e, m in reports] == [
        (None, b"v", A + "t"),
        (None, b"v2", A + "t"),
        (None, b"v3", A + "t"),
    ]
    assert producer.list_topics(topic=A + "t").cluster_uri == A


@pytest.mark.parametrize(
    "make",
    [
        lambda conf: psc.Producer(conf),
        lambda conf: psc.Producer(**conf),
        lambda conf: psc.Producer({"psc.project": conf["psc.project"]}, **conf),
    ],
    ids=["dict", "kwargs", "dict+kwargs"],
)
def test_a_producer_takes_its_config_as_confluents_does(backend: FakeBackend, make: Any) -> None:
    producer = make(CONFIG)
    producer.produce(A + "t", b"v")
    assert producer.flush() == 0
    assert backend.producers[0].produced == [("t", b"v")]


def test_keyword_arguments_override_the_config_dict(backend: FakeBackend) -> None:
    psc.Consumer(GROUP, **{"psc.consumer.group.id": "other"}).subscribe([A + "t"])
    assert backend.consumers[0].config["group.id"] == "other"


def test_consumer_takes_confluents_call_shapes(backend: FakeBackend) -> None:
    consumer = psc.Consumer(**GROUP)
    consumer.subscribe(topics=[A + "t"], on_assign=None)
    [fake] = backend.consumers
    fake.records = [FakeRecord("t", b"1")]
    message = consumer.poll(timeout=-1)  # -1 waits as long as needed, as in confluent-kafka
    assert message is not None and message.value() == b"1"
    assert consumer.list_topics(topic=A + "t").cluster_uri == A


def test_callbacks_in_the_config_reach_the_native_client(backend: FakeBackend) -> None:
    logger = logging.getLogger("app")

    def stats(text: str) -> None: ...
    def throttle(event: Any) -> None: ...
    def oauth(config: str) -> tuple[str, float]:
        return "token", 0.0

    producer = psc.Producer(
        {**CONFIG, "psc.producer.stats_cb": stats, "psc.producer.throttle_cb": throttle},
        logger=logger,
        oauth_cb=oauth,
    )
    producer.produce(A + "t", b"v")
    config = backend.producers[0].config
    assert (config["stats_cb"], config["throttle_cb"], config["oauth_cb"], config["logger"]) == (
        stats,
        throttle,
        oauth,
        logger,
    )
    consumer = psc.Consumer({**GROUP, "stats_cb": stats}, logger=logger)
    consumer.subscribe([A + "t"])
    assert (backend.consumers[0].config["stats_cb"], backend.consumers[0].config["logger"]) == (stats, logger)


def test_error_cb_hears_client_errors_after_psc_handled_them(backend: FakeBackend) -> None:
    heard: list[Any] = []
    producer = psc.Producer({**CONFIG, "psc.producer.error_cb": heard.append})
    producer.produce(A + "t", b"v")
    down = confluent_kafka.KafkaError(confluent_kafka.KafkaError._ALL_BROKERS_DOWN, "all down")
    backend.producers[0].config["error_cb"](down)
    assert heard == [down]
    consumer = psc.Consumer(GROUP, error_cb=heard.append)
    consumer.subscribe([A + "t"])
    backend.consumers[0].config["error_cb"](down)
    assert heard == [down, down]


def test_on_commit_in_the_config_hears_commits_with_topic_uris(backend: FakeBackend) -> None:
    commits: list[tuple[Any, list[psc.TopicPartition]]] = []
    consumer = psc.Consumer({**GROUP, "psc.consumer.on_commit": lambda e, p: commits.append((e, p))})
    consumer.subscribe([A + "t"])
    native = confluent_kafka.TopicPartition("t", 0, 5)
    from psc.backends.kafka import from_native

    backend.consumers[0].config["on_commit"](None, from_native([native]))
    assert commits == [(None, [psc.TopicPartition(A + "t", 0, 5)])]
    assert commits[0][1][0].offset == 5


def test_a_default_on_delivery_in_the_config_hears_every_record(backend: FakeBackend) -> None:
    delivered: list[Any] = []
    producer = psc.Producer({**CONFIG, "psc.producer.on_delivery": lambda e, m: delivered.append((e, m.value()))})
    producer.produce(A + "t", b"v1")
    producer.produce(A + "t", b"v2", on_delivery=lambda e, m: delivered.append(("own", m.value())))
    producer.flush()
    assert delivered == [(None, b"v1"), ("own", b"v2")]


def test_a_callback_that_is_not_callable_is_a_config_error(backend: FakeBackend) -> None:
    with pytest.raises(psc.ConfigError, match=r"psc\.producer\.error_cb=.*expected a callable"):
        psc.Producer({**CONFIG, "psc.producer.error_cb": "print"})
    with pytest.raises(psc.ConfigError, match="given twice"):
        psc.Producer({**CONFIG, "psc.producer.error_cb": print}, error_cb=print)


def test_a_delivery_failure_reaches_the_callback_as_a_kafka_error(backend: FakeBackend) -> None:
    producer = psc.Producer({**CONFIG, "psc.auto.resolution.enabled": "false"})
    too_large = confluent_kafka.KafkaError(confluent_kafka.KafkaError.MSG_SIZE_TOO_LARGE, "too large")
    backend.failures.append(too_large)  # type: ignore[arg-type]
    errors: list[Any] = []
    producer.produce(A + "t", b"v", on_delivery=lambda e, m: errors.append(e))
    producer.flush()
    assert errors == [too_large]
    assert errors[0].code() == confluent_kafka.KafkaError.MSG_SIZE_TOO_LARGE


def test_a_consumer_without_a_group_id_is_refused_at_construction_naming_psc_s_key() -> None:
    with pytest.raises(psc.ConfigError, match=r"psc\.consumer\.group\.id must be set") as caught:
        psc.Consumer(CONFIG)
    assert isinstance(caught.value, ValueError)  # as confluent-kafka's "group.id must be set"
    assert caught.value.args[0].code() == confluent_kafka.KafkaError._INVALID_ARG


def test_a_topic_uri_is_parsed_once_at_the_edge(backend: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    import psc._uri

    parsed: list[str] = []
    real = psc._uri._parse_cached

    def counting(text: str) -> psc.TopicUri:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(psc._uri, "_parse_cached", counting)
    producer = psc.Producer(CONFIG)
    producer.produce(A + "t", b"v")  # a new route: parse, validate, discover, create the backend producer
    assert parsed == [A + "t"]
    producer.produce(A + "t", b"v")
    producer.produce(A + "t", b"v", on_delivery=lambda e, m: None)
    producer.flush()
    assert parsed == [A + "t"]
    parsed.clear()
    consumer = psc.Consumer(GROUP)
    consumer.subscribe([A + "t", A + "u"])
    assert parsed == [A + "t", A + "u"]
    parsed.clear()
    consumer.commit(offsets=[psc.TopicPartition(A + "t", 0, 5)], asynchronous=False)
    consumer.list_topics(A + "t")
    assert parsed == [A + "t", A + "t"]


def test_message_answers_confluents_other_accessors() -> None:
    class Record(FakeRecord):
        def leader_epoch(self) -> int | None:
            return 7

        def latency(self) -> float | None:
            return 0.25

    message = psc.Message(Record("t", b"value", offset=3), Source(A))  # type: ignore[arg-type]
    assert (message.leader_epoch(), message.latency(), len(message), message.offset()) == (7, 0.25, 5, 3)
    assert message.timestamp() == (1, 1003) and message.key() == b"k" and message.headers() is None
