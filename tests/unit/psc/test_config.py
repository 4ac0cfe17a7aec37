from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from psc._config import CONFIG_KEYS, REDACTED, PscConfig, is_secret_key, render_markdown
from psc.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
BASE = {"psc.project": "ads-ingest"}


def config_error(mapping: dict[str, Any], client_type: str = "producer") -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        PscConfig.from_mapping(mapping, client_type=client_type)  # type: ignore[arg-type]
    return caught.value


def test_producer_platform_defaults() -> None:
    config = PscConfig.from_mapping(BASE, client_type="producer")
    assert config.project == "ads-ingest"
    assert config.client_type == "producer"
    assert config.native == {
        "client.id": "ads-ingest",
        "linger.ms": "5",
        "enable.idempotence": "true",
        "acks": "all",
        "compression.type": "lz4",
        "delivery.timeout.ms": "120000",
    }
    assert config.key_serde == "bytes"
    assert config.value_serde == "bytes"
    assert config.auto_resolution_enabled is True
    assert config.auto_resolution_retry_count == 5
    assert config.auto_resolution_backoff_initial_ms == 100
    assert config.auto_resolution_backoff_max_ms == 10000
    assert config.config_logging_enabled is False
    assert config.metrics_enabled is True
    assert config.latency_sample_rate == 0.01
    assert config.ssl_reset_before_expiry_seconds == 300


def test_consumer_platform_defaults() -> None:
    config = PscConfig.from_mapping(BASE, client_type="consumer")
    assert config.native == {
        "client.id": "ads-ingest",
        "auto.offset.reset": "latest",
        "fetch.queue.backoff.ms": "50",
    }
    assert config.poll_messages_max == 500


def test_documented_keys_map_to_native_keys() -> None:
    producer = PscConfig.from_mapping(
        {
            **BASE,
            "psc.client.id": "ingest-1",
            "psc.producer.batch.duration.ms": "20",
            "psc.producer.batch.size.bytes": 65536,
            "psc.producer.idempotence.enabled": "false",
            "psc.producer.acks": 1,
            "psc.producer.compression.type": "ZSTD",
            "psc.producer.retries": "3",
            "psc.producer.request.timeout.ms": "1000",
            "psc.producer.delivery.timeout.ms": "60000",
            "psc.producer.transactional.id": "txn-1",
            "psc.producer.transaction.timeout.ms": "30000",
            "psc.producer.buffer.max.messages": "1000",
            "psc.producer.buffer.max.kbytes": "2048",
            "psc.producer.value.serializer": "json",
        }
    )
    assert producer.native == {
        "client.id": "ingest-1",
        "linger.ms": "20",
        "batch.size": "65536",
        "enable.idempotence": "false",
        "acks": "1",
        "compression.type": "zstd",
        "retries": "3",
        "request.timeout.ms": "1000",
        "delivery.timeout.ms": "60000",
        "transactional.id": "txn-1",
        "transaction.timeout.ms": "30000",
        "queue.buffering.max.messages": "1000",
        "queue.buffering.max.kbytes": "2048",
    }
    assert producer.value_serde == "json"
    assert producer.client_id == "ingest-1"


def test_consumer_keys_map_to_native_keys() -> None:
    consumer = PscConfig.from_mapping(
        {
            **BASE,
            "psc.consumer.group.id": "g1",
            "psc.consumer.offset.auto.reset": "earliest",
            "psc.consumer.commit.auto.enabled": True,
            "psc.consumer.commit.auto.interval.ms": 1000,
            "psc.consumer.poll.messages.max": "50",
            "psc.consumer.poll.interval.max.ms": "60000",
            "psc.consumer.session.timeout.ms": "10000",
            "psc.consumer.isolation.level": "read_uncommitted",
            "psc.consumer.partition.assignment.strategy": "cooperative-sticky",
            "psc.consumer.fetch.max.bytes": "1048576",
            "psc.consumer.key.deserializer": "string",
            "psc.consumer.value.deserializer": "mypkg.serde:make_deserializer",
        },
        client_type="consumer",
    )
    assert consumer.native == {
        "client.id": "ads-ingest",
        "group.id": "g1",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": "true",
        "auto.commit.interval.ms": "1000",
        "max.poll.interval.ms": "60000",
        "session.timeout.ms": "10000",
        "isolation.level": "read_uncommitted",
        "partition.assignment.strategy": "cooperative-sticky",
        "fetch.max.bytes": "1048576",
        "fetch.queue.backoff.ms": "50",
    }
    assert consumer.poll_messages_max == 50
    assert (consumer.key_serde, consumer.value_serde) == ("string", "mypkg.serde:make_deserializer")


def test_generic_typed_values() -> None:
    config = PscConfig.from_mapping(
        {
            **BASE,
            "psc.auto.resolution.enabled": "no",
            "psc.auto.resolution.retry.count": "2",
            "psc.metrics.latency.sample.rate": "0.5",
            "psc.config.logging.enabled": "TRUE",
            "psc.config.logging.topic.uri": "rn:kafka:env:aws_us-west-1::c1:config_log",
            "psc.discovery.connect": "b1:9092, b2:9092",
        }
    )
    assert config.auto_resolution_enabled is False
    assert config.auto_resolution_retry_count == 2
    assert config.latency_sample_rate == 0.5
    assert config.config_logging_enabled is True
    assert config.config_logging_topic_uri == "rn:kafka:env:aws_us-west-1::c1:config_log"
    assert config.discovery_connect == "b1:9092, b2:9092"


def test_pass_through_strips_the_prefix() -> None:
    mapping: dict[str, Any] = {
        **BASE,
        "psc.producer.queue.buffering.backpressure.threshold": 5,
        "psc.producer.sticky.partitioning.linger.ms": "10",
        "psc.producer.enable.gapless.guarantee": True,
    }
    producer = PscConfig.from_mapping(mapping, client_type="producer")
    assert producer.native["queue.buffering.backpressure.threshold"] == "5"
    assert producer.native["sticky.partitioning.linger.ms"] == "10"
    assert producer.native["enable.gapless.guarantee"] == "true"
    consumer = PscConfig.from_mapping({**BASE, "psc.consumer.fetch.wait.max.ms": "50"}, client_type="consumer")
    assert consumer.native["fetch.wait.max.ms"] == "50"


def test_native_name_of_a_mapped_key_sets_the_psc_key() -> None:
    config = PscConfig.from_mapping({**BASE, "psc.producer.queue.buffering.max.messages": "1000"})
    assert config.native["queue.buffering.max.messages"] == "1000"
    assert config.settings["psc.producer.buffer.max.messages"] == 1000
    aliased = PscConfig.from_mapping({**BASE, "psc.producer.queue.buffering.max.ms": "40"})
    assert aliased.native["linger.ms"] == "40"
    assert "queue.buffering.max.ms" not in aliased.native


def test_empty_value_means_backend_default() -> None:
    config = PscConfig.from_mapping(
        {**BASE, "psc.producer.compression.type": "", "psc.producer.acks": "  ", "psc.producer.linger.ms": ""}
    )
    assert "compression.type" not in config.native
    assert "acks" not in config.native
    assert "linger.ms" not in config.native
    assert config.settings["psc.producer.compression.type"] is None
    # A PSC-side key has no backend default: empty means the platform default.
    consumer = PscConfig.from_mapping({**BASE, "psc.consumer.poll.messages.max": ""}, client_type="consumer")
    assert consumer.poll_messages_max == 500


def test_project_defaults_to_the_programs_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # confluent-kafka needs no client.id, so a migrated program with none must still start.
    monkeypatch.setattr(sys, "argv", ["/opt/app/orders-ingest.py", "--flag"])
    for mapping in ({}, {"psc.project": ""}, {"psc.project": "   "}):
        config = PscConfig.from_mapping(mapping)
        assert (config.project, config.native["client.id"]) == ("orders-ingest", "orders-ingest")
    monkeypatch.setattr(sys, "argv", ["-c"])
    assert PscConfig.from_mapping({}).project == "psc-application"
    assert PscConfig.from_mapping({"psc.project": "ads"}).project == "ads"


def test_all_problems_reported_at_once() -> None:
    error = config_error(
        {
            "psc.producer.batch.duration.ms": "abc",
            "psc.producer.idempotence.enabled": "maybe",
            "linger.ms": 5,
            "psc.foo": 1,
            "psc.projct": "x",
            "psc.producer.batch.duraton.ms": 3,
            "psc.producer.bootstrap.servers": "b:9092",
            "psc.metrics.latency.sample.rate": 2,
            "psc.consumer.offset.auto.reset": "begin",
            "psc.discovery.connect": "a:b",
            "psc.config.logging.topic.uri": "nope",
        }
    )
    problems = error.problems
    assert problems == [
        "psc.producer.batch.duration.ms='abc': expected int >= 0",
        "psc.producer.idempotence.enabled='maybe': expected bool (true/false)",
        "unknown key 'linger.ms'; did you mean 'psc.producer.batch.duration.ms'?",
        "unknown key 'psc.foo'",
        "unknown key 'psc.projct'; did you mean 'psc.project'?",
        "psc.producer.batch.duraton.ms: unknown key: neither a PSC key nor a librdkafka producer property; "
        "did you mean 'psc.producer.batch.duration.ms'?",
        "psc.producer.bootstrap.servers: bootstrap.servers is set by PSC; use the topic URI "
        "(discovery; psc.discovery.connect to override)",
        "psc.metrics.latency.sample.rate=2: expected float in [0, 1]",
        "psc.consumer.offset.auto.reset='begin': expected one of earliest, latest, error",
        "psc.discovery.connect='a:b': 'a:b' is not host:port (expected host:port[,host:port...])",
        "psc.config.logging.topic.uri='nope': missing '<protocol>:/' before the RN (or a bare 'rn:...')",
    ]
    assert "(11 problem(s))" in str(error)
    for problem in problems:
        assert problem in str(error)


def test_unknown_key_suggestions() -> None:
    problems = config_error({**BASE, "fetch.wait.max.ms": 1, "psc.producer.auto.offset.reset": "x"}).problems
    assert problems == [
        "unknown key 'fetch.wait.max.ms'; did you mean 'psc.consumer.fetch.wait.max.ms'?",
        "psc.producer.auto.offset.reset: not a librdkafka producer property",
    ]


def test_setting_a_property_twice_is_an_error() -> None:
    error = config_error(
        {**BASE, "psc.producer.batch.duration.ms": 10, "psc.producer.linger.ms": 20},
    )
    assert error.problems == [
        "psc.producer.linger.ms: sets the same property as psc.producer.batch.duration.ms; set it once"
    ]


@pytest.mark.parametrize(
    "key",
    ["psc.producer.security.protocol", "psc.consumer.ssl.ca.location", "psc.producer.metadata.broker.list"],
)
def test_connection_settings_cannot_be_passed_through(key: str) -> None:
    (problem,) = config_error({**BASE, key: "x"}, key.split(".")[1]).problems
    assert problem.startswith(f"{key}: ")
    assert "set by PSC" in problem


@pytest.mark.parametrize(
    ("key", "client_type"),
    [
        ("psc.consumer.poll.messages.max", "producer"),
        ("psc.consumer.client.id", "producer"),
        ("psc.consumer.group.id", "producer"),
        ("psc.producer.linger.ms", "consumer"),
        ("psc.producer.message.timeout.ms", "consumer"),
    ],
)
def test_keys_of_the_other_client_type_are_checked_then_ignored_with_a_warning(
    key: str, client_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    # One dict may configure a producer and a consumer, as with librdkafka: not applied, but not silent.
    mine = PscConfig.from_mapping(BASE, client_type)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="psc"):
        shared = PscConfig.from_mapping({**BASE, key: "1"}, client_type)  # type: ignore[arg-type]
    assert (shared.native, shared.passthrough) == (mine.native, mine.passthrough)
    (record,) = [r for r in caplog.records if "another client type" in r.getMessage()]
    assert record.levelno == logging.WARNING and key in record.getMessage()


def test_keys_of_the_other_client_type_are_still_checked() -> None:
    (problem,) = config_error({**BASE, "psc.consumer.offset.auto.reset": "begin"}).problems
    assert problem.startswith("psc.consumer.offset.auto.reset='begin'")


def test_a_misspelled_pass_through_key_gets_suggestions_from_its_neighbourhood() -> None:
    (problem,) = config_error({**BASE, "psc.producer.linger.msec": "5"}).problems
    assert problem.endswith("did you mean 'psc.producer.linger.ms'?")
    (problem,) = config_error({**BASE, "psc.consumer.sesion.timeout.ms": "5"}, "consumer").problems
    assert problem.endswith("did you mean 'psc.consumer.session.timeout.ms' or 'psc.consumer.socket.timeout.ms'?")


def test_bool_for_int_and_non_scalar_values_are_rejected() -> None:
    problems = config_error({**BASE, "psc.producer.retries": True, "psc.producer.transactional.id": ["a"]}).problems
    assert problems == [
        "psc.producer.retries=True: expected int >= 0",
        "psc.producer.transactional.id=['a']: expected string",
    ]


def test_backoff_max_below_initial_is_rejected() -> None:
    problems = config_error(
        {**BASE, "psc.auto.resolution.backoff.initial.ms": 500, "psc.auto.resolution.backoff.max.ms": 100}
    ).problems
    assert problems == ["psc.auto.resolution.backoff.max.ms=100 is below psc.auto.resolution.backoff.initial.ms=500"]


def test_bad_serde_name_is_rejected() -> None:
    (problem,) = config_error({**BASE, "psc.producer.value.serializer": "not a module"}).problems
    assert problem.startswith("psc.producer.value.serializer='not a module': expected a serde name")


def test_effective_lists_every_key_in_scope() -> None:
    config = PscConfig.from_mapping({**BASE, "psc.producer.sticky.partitioning.linger.ms": "7"})
    effective = config.effective()
    in_scope = {k.name for k in CONFIG_KEYS if k.client_type in ("generic", "producer")}
    assert set(effective) == in_scope | {"psc.producer.sticky.partitioning.linger.ms"}
    assert effective["psc.producer.batch.duration.ms"] == 5
    assert effective["psc.producer.batch.size.bytes"] is None
    assert effective["psc.client.id"] == "ads-ingest"
    assert effective["psc.producer.sticky.partitioning.linger.ms"] == "7"
    assert list(effective) == sorted(effective)


def test_redacted_hides_secrets_only() -> None:
    config = PscConfig.from_mapping(
        {
            **BASE,
            "psc.ssl.key.password": "hunter2",
            "psc.ssl.key.location": "/etc/tls/client.key",
            "psc.producer.sasl.password": "s3cret",
            "psc.producer.sasl.oauthbearer.client.secret": "abc",
            "psc.producer.ssl.key.pem": "-----BEGIN",
        }
    )
    assert config.effective()["psc.ssl.key.password"] == "hunter2"
    redacted = config.redacted()
    assert redacted["psc.ssl.key.password"] == REDACTED
    assert redacted["psc.producer.sasl.password"] == REDACTED
    assert redacted["psc.producer.sasl.oauthbearer.client.secret"] == REDACTED
    assert redacted["psc.producer.ssl.key.pem"] == REDACTED
    assert redacted["psc.ssl.key.location"] == "/etc/tls/client.key"
    assert redacted["psc.project"] == "ads-ingest"
    assert "hunter2" not in repr(config)
    assert "s3cret" not in repr(config)
    assert config.ssl_key_password is not None
    assert config.ssl_key_password.get_secret_value() == "hunter2"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("psc.ssl.key.password", True),
        ("sasl.password", True),
        ("ssl.keystore.password", True),
        ("sasl.oauthbearer.client.secret", True),
        ("my.api.token", True),
        ("ssl.key.location", False),
        ("psc.project", False),
    ],
)
def test_is_secret_key(name: str, secret: bool) -> None:
    assert is_secret_key(name) is secret


def test_invalid_client_type() -> None:
    assert config_error(BASE, client_type="streams").problems == [
        "client_type must be one of producer, consumer, admin, got 'streams'"
    ]


def test_config_is_frozen() -> None:
    config = PscConfig.from_mapping(BASE)
    with pytest.raises(ValueError):
        config.project = "other"


def test_key_table_is_consistent() -> None:
    names = [k.name for k in CONFIG_KEYS]
    assert len(names) == len(set(names))
    for key in CONFIG_KEYS:
        prefix = "psc." if key.client_type == "generic" else f"psc.{key.client_type}."
        assert key.name.startswith(prefix), key.name
        assert key.doc, key.name
        if key.attr:
            assert key.attr in PscConfig.model_fields, key.attr
    natives = [k.native for k in CONFIG_KEYS if k.native]
    assert len(natives) == len(set(natives))


def test_committed_doc_matches_generated_output() -> None:
    committed = (ROOT / "docs" / "psc-config.md").read_text(encoding="utf-8")
    assert committed == render_markdown(), "regenerate: python -m psc._config --markdown > docs/psc-config.md"


def test_markdown_command_prints_the_reference() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "psc._config", "--markdown"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert result.stdout == render_markdown()
    assert "| `psc.producer.batch.duration.ms` | int >= 0 | `5` | `linger.ms` |" in result.stdout


@pytest.mark.parametrize("client_type", ["producer", "consumer"])
def test_effective_round_trips(client_type: str) -> None:
    own = (
        {"psc.producer.acks": "", "psc.producer.linger.ms": 7, "psc.producer.sticky.partitioning.linger.ms": "3"}
        if client_type == "producer"
        else {"psc.consumer.group.id": "g", "psc.consumer.fetch.wait.max.ms": 20}
    )
    mapping = {**BASE, **own, "psc.ssl.key.password": "x"}
    config = PscConfig.from_mapping(mapping, client_type=client_type)  # type: ignore[arg-type]
    again = PscConfig.from_mapping(config.effective(), client_type=client_type)  # type: ignore[arg-type]
    assert again == config
    assert again.native == config.native
