"""psc.admin.AdminClient's routing and future mapping, over a recording stand-in for the native admin client."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka import admin as ck_admin

import psc
from psc.admin import AdminClient, ConfigResource, NewTopic, ResourceType
from psc.admin._futures import chain, gather, new_future

A = "plaintext:/rn:kafka:dev:local_dev::clusterA:"
B = "plaintext:/rn:kafka:dev:local_dev::clusterB:"
CONF = {"psc.project": "unit-admin", "psc.discovery.connect": "127.0.0.1:9", "psc.admin.cluster.uri": A}


def done(value: Any = None, error: BaseException | None = None) -> Future[Any]:
    future = new_future()
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
    return future


class NativeAdmin:
    """Answers like confluent's AdminClient, at once, and records every call."""

    made: list[NativeAdmin] = []

    def __init__(self, conf: dict[str, Any], **kwargs: Any) -> None:
        self.conf = conf
        self.calls: list[tuple[str, Any]] = []
        NativeAdmin.made.append(self)

    def create_topics(self, topics: list[Any], **kwargs: Any) -> dict[str, Future[Any]]:
        self.calls.append(("create_topics", [(t.topic, t.num_partitions, t.config) for t in topics]))
        exists = KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS))
        return {t.topic: done(error=exists if t.topic == "taken" else None) for t in topics}

    def describe_configs(self, resources: list[Any], **kwargs: Any) -> dict[Any, Future[Any]]:
        self.calls.append(("describe_configs", [(r.restype, r.name) for r in resources]))
        return {r: done({"name": r.name}) for r in resources}

    def list_consumer_group_offsets(self, requests: list[Any], **kwargs: Any) -> dict[str, Future[Any]]:
        (request,) = requests
        self.calls.append(
            ("list_consumer_group_offsets", [(tp.topic, tp.partition) for tp in request.topic_partitions])
        )
        found = [TopicPartition(tp.topic, tp.partition, 7) for tp in request.topic_partitions]
        return {request.group_id: done(ConsumerGroupTopicPartitions(request.group_id, found))}

    def delete_records(self, partitions: list[Any], **kwargs: Any) -> dict[Any, Future[Any]]:
        self.calls.append(("delete_records", [(tp.topic, tp.partition, tp.offset) for tp in partitions]))
        return {TopicPartition(tp.topic, tp.partition): done(ck_admin.DeletedRecords(tp.offset)) for tp in partitions}


@pytest.fixture(autouse=True)
def native(monkeypatch: pytest.MonkeyPatch) -> type[NativeAdmin]:
    NativeAdmin.made = []
    monkeypatch.setattr(ck_admin, "AdminClient", NativeAdmin)
    return NativeAdmin


def test_create_topics_fans_out_per_cluster_and_keys_futures_by_topic_uri() -> None:
    admin = AdminClient(CONF)
    futures = admin.create_topics(
        [NewTopic(A + "orders", 3, 1, config={"retention.ms": "1000"}), NewTopic(B + "taken", 1, 1)]
    )
    assert list(futures) == [A + "orders", B + "taken"]
    assert [n.calls for n in NativeAdmin.made] == [
        [("create_topics", [("orders", 3, {"retention.ms": "1000"})])],
        [("create_topics", [("taken", 1, None)])],
    ]
    assert NativeAdmin.made[0].conf["bootstrap.servers"] == "127.0.0.1:9"
    assert futures[A + "orders"].result(1) is None
    with pytest.raises(KafkaException) as caught:
        futures[B + "taken"].result(1)
    assert caught.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS


def test_one_native_client_per_cluster_across_calls() -> None:
    admin = AdminClient(CONF)
    admin.create_topics([NewTopic(A + "x", 1, 1)])
    admin.create_topics([NewTopic(A + "y", 1, 1)])
    assert len(NativeAdmin.made) == 1


def test_a_bad_uri_anywhere_fails_the_call_before_anything_is_sent() -> None:
    admin = AdminClient(CONF)
    with pytest.raises(psc.InvalidUriError, match="'orders'"):
        admin.create_topics([NewTopic(A + "ok", 1, 1), NewTopic("orders", 1, 1)])
    with pytest.raises(psc.InvalidUriError, match="names a cluster, not a topic"):
        admin.delete_records([TopicPartition(A + "ok", 0, 1), TopicPartition(B, 0, 1)])
    with pytest.raises(psc.InvalidUriError, match="at most 249 characters"):
        admin.delete_topics([A + "t" * 250])
    assert all(not n.calls for n in NativeAdmin.made)


def test_group_offsets_spanning_clusters_merge_into_one_future_with_topic_uris() -> None:
    admin = AdminClient(CONF)
    request = ConsumerGroupTopicPartitions("g", [TopicPartition(A + "a", 0), TopicPartition(B + "b", 1)])
    futures = admin.list_consumer_group_offsets([request])
    assert [n.calls for n in NativeAdmin.made] == [
        [("list_consumer_group_offsets", [("a", 0)])],
        [("list_consumer_group_offsets", [("b", 1)])],
    ]
    result = futures["g"].result(1)
    assert result.group_id == "g"
    assert [(tp.topic_uri, tp.partition, tp.offset) for tp in result.topic_partitions] == [
        (A + "a", 0, 7),
        (B + "b", 1, 7),
    ]


def test_config_resources_name_topics_by_uri_and_brokers_by_cluster_uri_or_id() -> None:
    admin = AdminClient(CONF)
    topic = ConfigResource(ResourceType.TOPIC, B + "orders")
    broker_on_b = ConfigResource(ResourceType.BROKER, B + "2")
    broker_by_id = ConfigResource("broker", "1")  # confluent's form: the psc.admin.cluster.uri cluster
    futures = admin.describe_configs([topic, broker_on_b, broker_by_id])
    assert list(futures) == [topic, broker_on_b, broker_by_id]
    assert [n.calls for n in NativeAdmin.made] == [
        [("describe_configs", [(ResourceType.TOPIC, "orders"), (ResourceType.BROKER, "2")])],
        [("describe_configs", [(ResourceType.BROKER, "1")])],
    ]
    assert futures[topic].result(1) == {"name": "orders"}
    with pytest.raises(psc.InvalidUriError, match="broker id"):
        admin.describe_configs([ConfigResource(ResourceType.BROKER, B + "leader")])


def test_delete_records_futures_are_keyed_by_the_callers_partitions() -> None:
    admin = AdminClient(CONF)
    mine = TopicPartition(A + "t", 0, 4)
    futures = admin.delete_records([mine])
    assert list(futures) == [mine]
    assert futures[mine].result(1).low_watermark == 4
    assert NativeAdmin.made[0].calls == [("delete_records", [("t", 0, 4)])]


def test_calls_that_name_no_topic_need_the_admin_cluster_uri() -> None:
    admin = AdminClient({k: v for k, v in CONF.items() if k != "psc.admin.cluster.uri"})
    for call in (admin.list_consumer_groups, admin.describe_cluster, lambda: admin.describe_consumer_groups(["g"])):
        with pytest.raises(psc.ConfigError, match=r"set psc\.admin\.cluster\.uri"):
            call()


def test_admin_config_is_checked_like_every_psc_config() -> None:
    with pytest.raises(psc.ConfigError) as caught:
        AdminClient(
            {
                "psc.project": "p",
                "psc.admin.cluster.uri": "kafka01",
                "psc.admin.socket.timeout.msec": "1",
                "psc.admin.bootstrap.servers": "h:1",
            }
        )
    problems = "\n".join(caught.value.problems)
    assert "psc.admin.cluster.uri='kafka01'" in problems
    assert "did you mean 'psc.admin.socket.timeout.ms'" in problems
    assert "bootstrap.servers is set by PSC" in problems
    admin = AdminClient({**CONF, "psc.admin.socket.timeout.ms": "1234"})
    admin.create_topics([NewTopic(A + "t", 1, 1)])
    assert NativeAdmin.made[0].conf["socket.timeout.ms"] == "1234"


def test_chain_converts_results_and_passes_exceptions_through() -> None:
    source, failing = new_future(), new_future()
    converted, failed = chain(source, lambda v: v * 2), chain(failing)
    source.set_result(21)
    error = KafkaException(KafkaError(KafkaError._TIMED_OUT))
    failing.set_exception(error)
    assert converted.result(1) == 42
    assert failed.exception(1) is error


def test_gather_waits_for_every_part_and_reports_the_first_failure() -> None:
    first, second = new_future(), new_future()
    together = gather([first, second], lambda results: [item for result in results for item in result])
    second.set_result([2])
    assert not together.done()
    first.set_result([1])
    assert together.result(1) == [1, 2]

    bad, good = new_future(), new_future()
    failed = gather([bad, good], lambda results: results)
    good.set_result(1)
    bad.set_exception(ValueError("broken"))
    with pytest.raises(ValueError, match="broken"):
        failed.result(1)
    assert gather([], lambda results: results).result(1) == []
    assert not new_future().cancel()  # running, as confluent-kafka's futures are


def test_confluent_callbacks_and_logger_reach_every_native_client() -> None:
    def on_error(error: Any) -> None:
        pass

    logger = logging.getLogger("unit-admin")
    admin = AdminClient(
        {**CONF, "psc.admin.error_cb": on_error, "psc.admin.statistics.interval.ms": 1000}, logger=logger
    )
    admin.create_topics([NewTopic(A + "t", 1, 1), NewTopic(B + "t", 1, 1)])
    for made in NativeAdmin.made:
        assert made.conf["error_cb"] is on_error
        assert made.conf["logger"] is logger
        assert made.conf["statistics.interval.ms"] == "1000"
    with pytest.raises(psc.ConfigError, match=r"psc\.admin\.stats_cb='no': expected a callable"):
        AdminClient({**CONF, "psc.admin.stats_cb": "no"})
    with pytest.raises(psc.ConfigError, match="the throttle_cb callback is given twice"):
        AdminClient({**CONF, "throttle_cb": on_error, "psc.admin.throttle_cb": on_error})
    AdminClient(CONF, stats_cb=on_error).create_topics([NewTopic(A + "u", 1, 1)])
    assert NativeAdmin.made[-1].conf["stats_cb"] is on_error
