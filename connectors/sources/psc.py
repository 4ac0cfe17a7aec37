"""The PSC source: splits are (topic URI, partition); restores Kafka source state under ``psc.cluster.uri``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from connectors._ports import ConsumerPort
from connectors.checkpointing.state import CLUSTER_URI_KEY, Split, read_splits
from connectors.sources.base import Source, Start
from psc import parse_topic_uri


class PscSource(Source):
    """``topics`` are topic URIs; ``config`` holds PSC keys (``psc.project`` at least) and may set
    ``psc.cluster.uri``, needed to restore a checkpoint of the Kafka source."""

    family = "psc"

    def __init__(
        self,
        topics: Sequence[str],
        *,
        start: Start = "earliest",
        stop: Literal["latest"] | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(topics, start=start, stop=stop, config=config)
        self.cluster_uri: str | None = self.config.pop(CLUSTER_URI_KEY, None)

    def open_port(self, group_id: str) -> ConsumerPort:
        from connectors._psc_adapter import PscConsumerPort

        return PscConsumerPort(
            {
                **self.config,
                "psc.consumer.group.id": group_id,
                "psc.consumer.commit.auto.enabled": "false",
                "psc.consumer.isolation.level": "read_committed",
            }
        )

    def topic_name(self, topic: str) -> str:
        return parse_topic_uri(topic).topic

    def restore(self, section: dict[str, Any], operator: str) -> list[Split]:
        return read_splits(self.family, section, operator, self.cluster_uri)
