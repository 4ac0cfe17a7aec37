"""Broker racks, for locality-aware partitioning.

The metadata ``list_topics`` returns carries no racks (librdkafka's broker metadata has none), so they come
from the cluster's description (Kafka's DescribeCluster) through ``psc.admin.AdminClient``, asked only for
topics whose partitioner prefers local leaders.
"""

from __future__ import annotations

from collections.abc import Mapping

import psc
import psc.admin
from psc.common.log import get_logger

_log = get_logger("singer.racks")

RACKS_TIMEOUT_S = 10.0


def admin_config(producer_config: Mapping[str, str], topic_uri: str) -> dict[str, str]:
    """An admin client's config for the cluster of ``topic_uri``: the producer's, without its own keys."""
    shared = {key: value for key, value in producer_config.items() if not key.startswith("psc.producer.")}
    return {**shared, "psc.admin.cluster.uri": topic_uri}


class RackReader:
    """Reads partition leaders' racks, with one admin client per cluster kept for the writer's life."""

    def __init__(self, producer_config: Mapping[str, str]) -> None:
        self._config = dict(producer_config)
        self._admins: dict[psc.TopicUri, psc.admin.AdminClient] = {}

    def leader_racks(self, topic_uri: str, leaders: Mapping[int, int]) -> dict[int, str]:
        """Each partition's leader's rack (partition id to rack), for the partitions whose leader has one.

        ``leaders`` maps partition ids to leader broker ids. A cluster that cannot be described gives no
        racks: locality then falls back to every partition, which costs cross-rack traffic, never records.
        """
        cluster_uri = psc.parse_topic_uri(topic_uri).cluster_uri
        admin = self._admins.get(cluster_uri)
        if admin is None:
            admin = self._admins[cluster_uri] = psc.admin.AdminClient(admin_config(self._config, topic_uri))
        try:
            cluster = admin.describe_cluster(request_timeout=RACKS_TIMEOUT_S).result(RACKS_TIMEOUT_S)
        except Exception as exc:
            _log.warning("cannot read broker racks", topic_uri=topic_uri, error=str(exc))
            return {}
        racks = {node.id: node.rack for node in cluster.nodes if node.rack}
        return {partition: racks[leader] for partition, leader in leaders.items() if leader in racks}
