"""Operator state sections and PSC's version-range rule for reading them.

A source section holds its splits, a sink section its pending transaction. Kafka connectors write versions
below ``PSC_VERSION``; PSC connectors write ``PSC_VERSION`` and up. The PSC connectors read both, turning
each Kafka topic into a topic URI under ``psc.cluster.uri``; the Kafka connectors refuse PSC sections
(reverse migration), and every reader refuses versions it does not know, naming them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from connectors.errors import StateMigrationError
from psc import parse_topic_uri

PSC_VERSION = 100_000  # PSC's boundary: state versions from here on are PSC's
KAFKA_SOURCE_VERSIONS = (1,)
KAFKA_SINK_VERSIONS = (1,)
CLUSTER_URI_KEY = "psc.cluster.uri"

Family = Literal["kafka", "psc"]


@dataclass
class Split:
    """One partition of a source: ``topic`` is a topic name (Kafka) or a topic URI (PSC).

    ``next_offset`` is the next offset to read (``None``: not read yet, start where the source says);
    ``stop_offset`` bounds the split (read up to, not including, it). ``state`` is the user functions'
    per-split state, which moves with the split.
    """

    topic: str
    partition: int
    next_offset: int | None = None
    stop_offset: int | None = None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.stop_offset is not None and self.next_offset is not None and self.next_offset >= self.stop_offset


@dataclass(frozen=True)
class PendingTransaction:
    """The transaction a checkpoint was prepared for; ``witness`` is the mark the transaction itself writes."""

    transactional_id: str
    checkpoint_id: int
    witness: str


@dataclass(frozen=True)
class SinkState:
    transactional_id: str | None
    pending: PendingTransaction | None


def _version(section: dict[str, Any], operator: str) -> int:
    version = section.get("version")
    if not isinstance(version, int):
        raise StateMigrationError(f"operator {operator!r}: state has no integer version (kind {section.get('kind')!r})")
    return version


def _check_version(family: Family, version: int, kafka_versions: tuple[int, ...], operator: str) -> None:
    if version >= PSC_VERSION:
        if family == "kafka":
            raise StateMigrationError(
                f"operator {operator!r}: state version {version} was written by a PSC connector; reverse migration "
                "from PSC to Kafka is not supported"
            )
        if version != PSC_VERSION:
            raise StateMigrationError(
                f"operator {operator!r}: unknown PSC state version {version} (this build reads {PSC_VERSION})"
            )
    elif version not in kafka_versions:
        raise StateMigrationError(
            f"operator {operator!r}: unknown Kafka state version {version} (this build reads {list(kafka_versions)})"
        )


def topic_uri_of(cluster_uri: str | None, topic: str, operator: str) -> str:
    """PSC's mapping of a Kafka topic: the cluster URI (ending in ':') followed by the topic name."""
    if not cluster_uri:
        raise StateMigrationError(
            f"operator {operator!r}: the checkpoint holds Kafka state (topic {topic!r}); set {CLUSTER_URI_KEY} "
            "to restore it into a PSC connector"
        )
    uri = cluster_uri + topic
    parsed = parse_topic_uri(uri)
    if parsed.topic != topic:
        raise StateMigrationError(f"operator {operator!r}: {CLUSTER_URI_KEY}={cluster_uri!r} + {topic!r} is not a URI")
    return uri


def splits_section(family: Family, splits: list[Split]) -> dict[str, Any]:
    topic_field = "topic_uri" if family == "psc" else "topic"
    return {
        "kind": f"{family}.source",
        "version": PSC_VERSION if family == "psc" else KAFKA_SOURCE_VERSIONS[-1],
        "splits": [
            {
                topic_field: s.topic,
                "partition": s.partition,
                "next_offset": s.next_offset,
                "stop_offset": s.stop_offset,
                "state": s.state,
            }
            for s in splits
        ],
    }


def read_splits(family: Family, section: dict[str, Any], operator: str, cluster_uri: str | None = None) -> list[Split]:
    """The splits of a source section, read by a ``family`` source under PSC's version rule."""
    version = _version(section, operator)
    _check_version(family, version, KAFKA_SOURCE_VERSIONS, operator)
    written_by_psc = version >= PSC_VERSION
    topic_field = "topic_uri" if written_by_psc else "topic"
    splits = []
    for raw in section.get("splits", []):
        try:
            topic, partition = raw[topic_field], raw["partition"]
            next_offset, stop_offset, state = raw.get("next_offset"), raw.get("stop_offset"), raw.get("state", {})
        except (KeyError, TypeError) as exc:
            raise StateMigrationError(f"operator {operator!r}: malformed split {raw!r} ({exc!r})") from None
        if family == "psc" and not written_by_psc:
            topic = topic_uri_of(cluster_uri, topic, operator)
        splits.append(Split(topic, partition, next_offset, stop_offset, state))
    return splits


def sink_section(family: Family, state: SinkState) -> dict[str, Any]:
    pending = state.pending
    return {
        "kind": f"{family}.sink",
        "version": PSC_VERSION if family == "psc" else KAFKA_SINK_VERSIONS[-1],
        "transactional_id": state.transactional_id,
        "pending": None
        if pending is None
        else {
            "transactional_id": pending.transactional_id,
            "checkpoint_id": pending.checkpoint_id,
            "witness": pending.witness,
        },
    }


def read_sink(family: Family, section: dict[str, Any], operator: str) -> SinkState:
    """Sink state carries no topic names, so Kafka sink state restores into a PSC sink unchanged."""
    _check_version(family, _version(section, operator), KAFKA_SINK_VERSIONS, operator)
    try:
        raw = section.get("pending")
        pending = (
            None if raw is None else PendingTransaction(raw["transactional_id"], raw["checkpoint_id"], raw["witness"])
        )
        return SinkState(section.get("transactional_id"), pending)
    except (KeyError, TypeError) as exc:
        raise StateMigrationError(f"operator {operator!r}: malformed sink state ({exc!r})") from None
