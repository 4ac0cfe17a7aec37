"""``python -m benchmarks.singer_partitioners`` in short, on the real broker: 8 hosts, 24 partitions."""

from __future__ import annotations

from benchmarks.singer_partitioners import Setup, run_partitioner
from tests.services import Services


def test_single_partition_compresses_better_and_skews_more_than_round_robin(services: Services) -> None:
    setup = Setup(
        bootstrap=services.kafka_bootstrap_servers,
        cluster_prefix=services.cluster_prefix,
        discovery_file=services.psc_discovery_file,
        hosts=8,
        partitions=24,
        lines_per_host=600,
        batch_lines=200,
    )
    spread = run_partitioner(setup, "round-robin", "round_robin", {})
    fixed = run_partitioner(setup, "fixed-4", "fixed", {"count": 4})
    single = run_partitioner(setup, "single", "single", {})

    for outcome in (spread, fixed, single):
        assert outcome.records == 8 * 600
        assert outcome.stored_bytes > 0 and len(outcome.partition_bytes) == 24
        assert outcome.connections >= 8  # every producer holds at least one broker connection
    assert spread.raw_bytes == fixed.raw_bytes == single.raw_bytes  # the same corpus each time
    assert spread.partitions_written == 24
    assert fixed.partitions_written <= 8 * 4
    assert single.partitions_written <= 8
    assert single.compression_ratio > spread.compression_ratio
    assert single.produce_requests < fixed.produce_requests < spread.produce_requests
    assert spread.skew < single.skew
    assert single.connections_30_brokers == 8 < spread.connections_30_brokers
