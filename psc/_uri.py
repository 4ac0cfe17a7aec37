"""Topic URIs: ``<protocol>:/rn:<service>:<environment>:<cloud>_<region>:<classifier>:<cluster>:<topic>``.

Parsing has two stages. :meth:`TopicUri.parse` checks the generic grammar shared by every backend and
returns an immutable value object; :func:`validate_for_backend` then applies the rules of the URI's service
(Kafka's protocols and topic names), looked up in a registry so other backends bring their own.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from psc.errors import InvalidUriError

__all__ = [
    "TopicUri",
    "UriValidator",
    "parse_topic_uri",
    "register_uri_validator",
    "validate_for_backend",
]

DEFAULT_PROTOCOL = "plaintext"
KAFKA_PROTOCOLS = frozenset({"plaintext", "secure"})
KAFKA_TOPIC_MAX_LENGTH = 249

_PROTOCOL_RE = re.compile(r"[a-z][a-z0-9+.-]*")
_FIELD_RE = re.compile(r"[A-Za-z0-9._-]*")
_RN_SEGMENTS = 7  # rn, service, environment, cloud_region, classifier, cluster, topic
_REQUIRED = ("service", "environment", "cloud", "region", "cluster")

UriValidator = Callable[["TopicUri"], None]


@dataclass(frozen=True, slots=True)
class TopicUri:
    """A parsed topic (or, with an empty topic, cluster) URI; ``str()`` gives its canonical form."""

    protocol: str
    service: str
    environment: str
    cloud: str
    region: str
    classifier: str
    cluster: str
    topic: str
    # Precomputed because producers use the prefix per message (client cache key, metrics label).
    _prefix: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        prefix = (
            f"{self.protocol}:/rn:{self.service}:{self.environment}:{self.cloud}_{self.region}:"
            f"{self.classifier}:{self.cluster}:"
        )
        problem = _field_problem(self)
        if problem:
            raise InvalidUriError(prefix + self.topic, problem)
        object.__setattr__(self, "_prefix", prefix)

    @classmethod
    def parse(cls, text: str | TopicUri) -> TopicUri:
        """Parse ``text`` (a topic URI or a bare RN, which means ``plaintext``); results are cached."""
        if isinstance(text, TopicUri):
            return text
        if not isinstance(text, str):
            raise InvalidUriError(repr(text), f"expected a string, got {type(text).__name__}")
        return _parse_cached(text)

    @property
    def cluster_prefix(self) -> str:
        """``protocol:/rn:service:environment:cloud_region:classifier:cluster:``: the discovery key."""
        return self._prefix

    @property
    def cluster_uri(self) -> TopicUri:
        """This URI with an empty topic: the cluster it lives on."""
        return self if self.is_cluster else self.with_topic("")

    @property
    def is_cluster(self) -> bool:
        return not self.topic

    @property
    def cloud_region(self) -> str:
        return f"{self.cloud}_{self.region}"

    @property
    def rn(self) -> str:
        """The resource name alone, without the protocol."""
        return self._prefix[len(self.protocol) + 2 :] + self.topic

    def with_topic(self, topic: str) -> Self:
        """The URI of ``topic`` on the same cluster."""
        return type(self)(
            self.protocol,
            self.service,
            self.environment,
            self.cloud,
            self.region,
            self.classifier,
            self.cluster,
            topic,
        )

    def __str__(self) -> str:
        return self._prefix + self.topic


def parse_topic_uri(text: str | TopicUri) -> TopicUri:
    """Parse a topic URI or bare RN; see :meth:`TopicUri.parse`."""
    return TopicUri.parse(text)


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> TopicUri:
    protocol, rn = _split_protocol(text)
    parts = rn.split(":")
    if len(parts) < _RN_SEGMENTS:
        raise InvalidUriError(text, f"too few ':'-separated segments in the RN ({len(parts)} of {_RN_SEGMENTS})")
    if len(parts) > _RN_SEGMENTS:
        extra = ":".join(parts[_RN_SEGMENTS:])
        raise InvalidUriError(text, f"unexpected trailing segment(s) {extra!r} after the topic")
    standard, service, environment, cloud_region, classifier, cluster, topic = parts
    if standard != "rn":
        raise InvalidUriError(text, f"unsupported resource-name standard {standard!r} (only 'rn')")
    if cloud_region.count("_") != 1:
        raise InvalidUriError(text, f"cloud_region {cloud_region!r} must hold exactly one '_'")
    cloud, region = cloud_region.split("_")
    fields = (protocol, service, environment, cloud, region, classifier, cluster, topic)
    problem = _field_problem_of(fields)
    if problem:
        raise InvalidUriError(text, problem)
    return TopicUri(*fields)


def _split_protocol(text: str) -> tuple[str, str]:
    if text.startswith("rn:") and not text.startswith("rn:/"):  # a bare RN; "rn:/rn:..." names protocol rn
        return DEFAULT_PROTOCOL, text
    protocol, sep, rest = text.partition(":/")
    if not sep:
        raise InvalidUriError(text, "missing '<protocol>:/' before the RN (or a bare 'rn:...')")
    if not protocol:
        raise InvalidUriError(text, "empty protocol before ':/'")
    if rest.startswith("/"):
        raise InvalidUriError(text, "a single '/' must follow '<protocol>:', not '//'")
    lowered = protocol.lower()
    if not _PROTOCOL_RE.fullmatch(lowered):
        raise InvalidUriError(text, f"invalid protocol {protocol!r}")
    return lowered, rest


def _field_problem(uri: TopicUri) -> str | None:
    fields = (
        uri.protocol,
        uri.service,
        uri.environment,
        uri.cloud,
        uri.region,
        uri.classifier,
        uri.cluster,
        uri.topic,
    )
    return _field_problem_of(fields)


def _field_problem_of(fields: tuple[str, ...]) -> str | None:
    protocol, *rest = fields
    if not _PROTOCOL_RE.fullmatch(protocol):
        return f"invalid protocol {protocol!r}"
    names = ("service", "environment", "cloud", "region", "classifier", "cluster", "topic")
    for name, value in zip(names, rest, strict=True):
        if not isinstance(value, str) or not _FIELD_RE.fullmatch(value):
            return f"{name} {value!r} may only contain A-Za-z0-9-_."
        if not value and name in _REQUIRED:
            return f"empty {name}"
        if "_" in value and name in ("cloud", "region"):
            return f"{name} {value!r} may not contain '_' (it separates cloud and region)"
    return None


_VALIDATORS: dict[str, UriValidator] = {}


def register_uri_validator(service: str, validator: UriValidator) -> None:
    """Register the backend rules for URIs of ``service``, replacing any earlier validator."""
    _VALIDATORS[service] = validator


def validate_for_backend(uri: str | TopicUri) -> TopicUri:
    """Parse ``uri`` and apply its service's rules; services without a validator pass unchecked."""
    parsed = TopicUri.parse(uri)
    validator = _VALIDATORS.get(parsed.service)
    if validator is not None:
        validator(parsed)
    return parsed


def _validate_kafka(uri: TopicUri) -> None:
    if uri.protocol not in KAFKA_PROTOCOLS:
        raise InvalidUriError(str(uri), f"Kafka URIs use protocol 'plaintext' or 'secure', not {uri.protocol!r}")
    if len(uri.topic) > KAFKA_TOPIC_MAX_LENGTH:
        raise InvalidUriError(
            str(uri), f"Kafka topic names are at most {KAFKA_TOPIC_MAX_LENGTH} characters ({len(uri.topic)})"
        )
    if uri.topic in (".", ".."):
        raise InvalidUriError(str(uri), f"Kafka does not allow the topic name {uri.topic!r}")


register_uri_validator("kafka", _validate_kafka)
