from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest

import psc.admin
from singer import _racks


class FakeAdmin:
    configs: list[dict[str, str]] = []

    def __init__(self, config: dict[str, str]) -> None:
        FakeAdmin.configs.append(config)

    def describe_cluster(self, **kwargs: Any) -> Future[Any]:
        done: Future[Any] = Future()
        nodes = [SimpleNamespace(id=1, rack="a"), SimpleNamespace(id=2, rack="b"), SimpleNamespace(id=3, rack=None)]
        done.set_result(SimpleNamespace(nodes=nodes))
        return done


class BrokenAdmin(FakeAdmin):
    def describe_cluster(self, **kwargs: Any) -> Future[Any]:
        failed: Future[Any] = Future()
        failed.set_exception(RuntimeError("unreachable"))
        return failed


URI = "plaintext:/rn:kafka:local:local_dev::cluster01:logs"
CONFIG = {"psc.project": "p", "psc.producer.acks": "all", "psc.discovery.file": "/d.json"}


def test_each_partition_gets_its_leaders_rack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psc.admin, "AdminClient", FakeAdmin)
    FakeAdmin.configs.clear()
    reader = _racks.RackReader(CONFIG)
    assert reader.leader_racks(URI, {0: 1, 1: 2, 2: 3, 3: 9}) == {0: "a", 1: "b"}
    assert reader.leader_racks(URI.replace(":logs", ":audit"), {0: 2}) == {0: "b"}
    assert len(FakeAdmin.configs) == 1  # one admin client for the cluster, however many topics and refreshes
    # The admin client gets the producer's shared keys and the topic's cluster, not producer keys.
    assert FakeAdmin.configs[-1] == {"psc.project": "p", "psc.discovery.file": "/d.json", "psc.admin.cluster.uri": URI}


def test_a_cluster_that_cannot_be_described_gives_no_racks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psc.admin, "AdminClient", BrokenAdmin)
    assert _racks.RackReader(CONFIG).leader_racks(URI, {0: 1}) == {}
