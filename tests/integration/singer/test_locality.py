"""Locality-aware partitioning on the real broker: racks come from the cluster's description."""

from __future__ import annotations

import uuid

from confluent_kafka.admin import AdminClient, NewTopic

from singer._partitioners import LocalityAware, Partitions
from singer._writer import Writer
from tests.services import Services


def _broker_racks(bootstrap: str) -> dict[int, str]:
    """The racks the broker reports to a plain confluent-kafka admin client: the truth to compare with."""
    admin = AdminClient({"bootstrap.servers": bootstrap})  # held: a destroyed client fails its futures
    cluster = admin.describe_cluster().result(10)
    return {node.id: node.rack for node in cluster.nodes if node.rack}


def test_locality_reads_leader_racks_and_prefers_local_partitions(services: Services) -> None:
    racks = _broker_racks(services.kafka_bootstrap_servers)
    assert racks, "the broker reports no rack: the stack configures broker.rack"
    topic = f"singer-locality-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": services.kafka_bootstrap_servers})
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(30)
    writer = Writer(
        {"psc.project": "singer-locality-test", "psc.discovery.file": services.psc_discovery_file},
    )
    try:
        uri = services.cluster_prefix + topic
        plain = writer.partitions(uri)
        with_racks = writer.partitions(uri, with_racks=True)
    finally:
        writer.close(5)
    assert plain.ids == with_racks.ids == (0, 1, 2, 3)
    assert plain.racks == {}  # plain metadata carries none, and no extra request is made for it
    (rack,) = set(racks.values())
    assert with_racks.racks == {p: rack for p in range(4)}

    local = LocalityAware(rack)
    assert local.partition(None, with_racks) in with_racks.ids and not local.missing_local
    remote = LocalityAware(rack + "-elsewhere")
    assert remote.partition(None, with_racks) in with_racks.ids and remote.missing_local
    assert LocalityAware.wants_racks and not Partitions((0,)).racks  # the writer asks for racks only for it
