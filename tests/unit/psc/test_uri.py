from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from psc import _uri
from psc._uri import TopicUri, parse_topic_uri, register_uri_validator, validate_for_backend
from psc.errors import URI_SHAPE, InvalidUriError, PscError

GOOD = "plaintext:/rn:kafka:env:aws_us-west-1::kafkacluster01:topic01"


def test_parses_plaintext_topic_uri() -> None:
    uri = parse_topic_uri(GOOD)
    assert (uri.protocol, uri.service, uri.environment) == ("plaintext", "kafka", "env")
    assert (uri.cloud, uri.region, uri.classifier) == ("aws", "us-west-1", "")
    assert (uri.cluster, uri.topic) == ("kafkacluster01", "topic01")
    assert uri.cluster_prefix == "plaintext:/rn:kafka:env:aws_us-west-1::kafkacluster01:"
    assert uri.rn == "rn:kafka:env:aws_us-west-1::kafkacluster01:topic01"
    assert uri.cloud_region == "aws_us-west-1"
    assert str(uri) == GOOD
    assert not uri.is_cluster


def test_parses_secure_uri_with_classifier() -> None:
    uri = TopicUri.parse("secure:/rn:kafka:prod:aws_us-west-1:pii:cluster01:my_topic")
    assert uri.protocol == "secure"
    assert uri.classifier == "pii"
    assert uri.topic == "my_topic"
    assert uri.cluster_prefix == "secure:/rn:kafka:prod:aws_us-west-1:pii:cluster01:"


def test_parses_cluster_uri() -> None:
    uri = parse_topic_uri("plaintext:/rn:kafka:env:cloud_region::cluster:")
    assert uri.is_cluster
    assert uri.topic == ""
    assert (uri.cloud, uri.region) == ("cloud", "region")
    assert str(uri) == "plaintext:/rn:kafka:env:cloud_region::cluster:"
    assert uri.cluster_uri is uri


def test_bare_rn_defaults_to_plaintext() -> None:
    uri = parse_topic_uri("rn:kafka:env:aws_us-west-1::c1:t1")
    assert uri.protocol == "plaintext"
    assert str(uri) == "plaintext:/rn:kafka:env:aws_us-west-1::c1:t1"
    assert uri == parse_topic_uri("plaintext:/rn:kafka:env:aws_us-west-1::c1:t1")


def test_cluster_uri_and_with_topic() -> None:
    uri = parse_topic_uri(GOOD)
    cluster = uri.cluster_uri
    assert str(cluster) == "plaintext:/rn:kafka:env:aws_us-west-1::kafkacluster01:"
    assert cluster.is_cluster
    assert cluster.with_topic("topic01") == uri
    assert str(uri.with_topic("other")) == "plaintext:/rn:kafka:env:aws_us-west-1::kafkacluster01:other"


def test_is_immutable_and_hashable() -> None:
    uri = parse_topic_uri(GOOD)
    with pytest.raises(dataclasses.FrozenInstanceError):
        uri.topic = "x"  # type: ignore[misc]
    assert {uri: 1}[parse_topic_uri(GOOD)] == 1


def test_parse_is_cached_and_accepts_uri() -> None:
    assert parse_topic_uri(GOOD) is parse_topic_uri(GOOD)
    uri = parse_topic_uri(GOOD)
    assert TopicUri.parse(uri) is uri


def test_protocol_is_case_insensitive() -> None:
    assert parse_topic_uri("SECURE:/rn:kafka:prod:aws_us-west-1::c:t").protocol == "secure"


def test_a_protocol_named_rn_is_not_taken_for_a_bare_rn() -> None:
    uri = parse_topic_uri("rn:/rn:kafka:prod:aws_us-west-1::c:")
    assert (uri.protocol, uri.is_cluster, str(uri)) == ("rn", True, "rn:/rn:kafka:prod:aws_us-west-1::c:")


REJECTED = {
    "protocol://rn:kafka:env:aws_us-west-1::c1:t1": "single '/'",
    ":/rn:kafka:env:aws_us-west-1::c1:t1": "empty protocol",
    "plaintext:/rn:kafka:env:aws_us-west-1::c1:t1:more": "trailing segment",
    "plaintext:/rn:kafka:env:aws_us-west-1::c1": "too few",
    "plaintext:/rn:kafka:env": "too few",
    "plaintext:/urn:kafka:env:aws_us-west-1::c1:t1": "standard 'urn'",
    "plaintext:/rn:kafka:env:aws_us-west-1::c1:to$pic": "may only contain",
    "plaintext:/rn:kaf ka:env:aws_us-west-1::c1:t1": "may only contain",
    "plaintext:/rn::env:aws_us-west-1::c1:t1": "empty service",
    "plaintext:/rn:kafka::aws_us-west-1::c1:t1": "empty environment",
    "plaintext:/rn:kafka:env:_us-west-1::c1:t1": "empty cloud",
    "plaintext:/rn:kafka:env:aws_::c1:t1": "empty region",
    "plaintext:/rn:kafka:env:aws_us-west-1:::t1": "empty cluster",
    "plaintext:/rn:kafka:env:awsuswest1::c1:t1": "exactly one '_'",
    "plaintext:/rn:kafka:env:aws_us_west_1::c1:t1": "exactly one '_'",
    "kafka:rn:kafka:env:aws_us-west-1::c1:t1": "missing '<protocol>:/'",
    "": "missing",
    "pl@in:/rn:kafka:env:aws_us-west-1::c1:t1": "invalid protocol",
}


@pytest.mark.parametrize(("text", "reason"), REJECTED.items())
def test_rejects_malformed_uris_quoting_input_and_shape(text: str, reason: str) -> None:
    with pytest.raises(InvalidUriError) as caught:
        parse_topic_uri(text)
    message = str(caught.value)
    assert repr(text) in message
    assert URI_SHAPE in message
    assert reason in message
    assert caught.value.uri == text


def test_invalid_uri_error_is_value_error_and_psc_error() -> None:
    with pytest.raises(ValueError):
        parse_topic_uri("nope")
    with pytest.raises(PscError):
        parse_topic_uri("nope")


def test_rejects_non_string() -> None:
    with pytest.raises(InvalidUriError, match="expected a string"):
        TopicUri.parse(42)  # type: ignore[arg-type]


def test_direct_construction_is_validated() -> None:
    with pytest.raises(InvalidUriError, match="empty cluster"):
        TopicUri("plaintext", "kafka", "env", "aws", "us", "", "", "t")
    with pytest.raises(InvalidUriError, match="may not contain '_'"):
        TopicUri("plaintext", "kafka", "env", "aws_x", "us", "", "c", "t")


def test_generic_parser_accepts_other_protocols_but_kafka_validator_does_not() -> None:
    uri = parse_topic_uri("ssl+tcp:/rn:kafka:env:aws_us-west-1::c1:t1")
    assert uri.protocol == "ssl+tcp"
    with pytest.raises(InvalidUriError, match="'plaintext' or 'secure'") as caught:
        validate_for_backend(uri)
    assert "'ssl+tcp:/rn:kafka:env:aws_us-west-1::c1:t1'" in str(caught.value)


def test_kafka_validator_accepts_valid_uris() -> None:
    assert validate_for_backend(GOOD) == parse_topic_uri(GOOD)
    secure = "secure:/rn:kafka:prod:aws_us-west-1:pii:cluster01:my_topic"
    assert validate_for_backend(secure).protocol == "secure"
    assert validate_for_backend("plaintext:/rn:kafka:env:cloud_region::cluster:").is_cluster


@pytest.mark.parametrize("topic", [".", "..", "t" * 250])
def test_kafka_validator_rejects_topics_kafka_rejects(topic: str) -> None:
    with pytest.raises(InvalidUriError, match="Kafka"):
        validate_for_backend(f"plaintext:/rn:kafka:env:aws_us-west-1::c1:{topic}")


def test_kafka_validator_accepts_longest_topic() -> None:
    assert len(validate_for_backend(f"rn:kafka:env:aws_us-west-1::c1:{'t' * 249}").topic) == 249


def test_services_without_validator_pass_and_registered_ones_run() -> None:
    uri = "memqx:/rn:testsvc:env:aws_us-west-1::c1:t1"
    assert validate_for_backend(uri).service == "testsvc"
    seen: list[TopicUri] = []

    def reject(parsed: TopicUri) -> None:
        seen.append(parsed)
        raise InvalidUriError(str(parsed), "testsvc says no")

    register_uri_validator("testsvc", reject)
    try:
        with pytest.raises(InvalidUriError, match="testsvc says no"):
            validate_for_backend(uri)
        assert seen == [parse_topic_uri(uri)]
    finally:
        _uri._VALIDATORS.pop("testsvc", None)


_field = st.text(alphabet="abcXYZ019-_.", max_size=8)
_required = st.text(alphabet="abcXYZ019-_.", min_size=1, max_size=8)
_cloud_part = st.text(alphabet="abcXYZ019-.", min_size=1, max_size=8)
_protocol = st.from_regex(r"[a-z][a-z0-9+.-]{0,6}", fullmatch=True)


@st.composite
def topic_uris(draw: st.DrawFn) -> TopicUri:
    return TopicUri(
        draw(_protocol),
        draw(_required),
        draw(_required),
        draw(_cloud_part),
        draw(_cloud_part),
        draw(_field),
        draw(_required),
        draw(_field),
    )


@given(topic_uris())
def test_format_then_parse_round_trips(uri: TopicUri) -> None:
    text = str(uri)
    assert text == (
        f"{uri.protocol}:/rn:{uri.service}:{uri.environment}:{uri.cloud}_{uri.region}:"
        f"{uri.classifier}:{uri.cluster}:{uri.topic}"
    )
    assert parse_topic_uri(text) == uri
    assert str(parse_topic_uri(text)) == text
    assert parse_topic_uri(uri.rn).with_topic(uri.topic).rn == uri.rn
    assert parse_topic_uri(str(uri.cluster_uri)) == uri.cluster_uri
