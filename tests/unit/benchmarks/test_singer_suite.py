"""The Singer throughput suite's parts that need no broker: a fair comparison and the figures it reports."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from benchmarks.suites import singer as suite
from psc.backends.base import BrokerMetadata, ClusterMetadata, PartitionMetadata, TopicMetadata
from singer._partitioners import RoundRobin
from singer._records import Record
from singer._watermark import Watermark
from singer._writer import Batch, Writer

URI = "plaintext:/rn:kafka:local:local_dev::cluster01:logs"


class HeaderProducer:
    def __init__(self, config: Any) -> None:
        self.headers: list[dict[str, bytes]] = []

    def produce(self, topic: str, value: bytes, key: Any, partition: int, **kwargs: Any) -> None:
        self.headers.append(dict(kwargs["headers"]))

    def list_topics(self, uri: str, timeout: float) -> ClusterMetadata:
        topic = TopicMetadata(uri, {0: PartitionMetadata(0, 1, (1,), (1,))})
        return ClusterMetadata("c", None, 1, {1: BrokerMetadata(1, "b", 9092)}, {uri: topic})


def test_kcat_gets_headers_of_the_names_and_sizes_singer_sends() -> None:
    writer = Writer({}, factory=HeaderProducer)
    batch = Batch(Watermark(1, 2, 0, "f", 0, "p"), 1, 4, 0.0)
    host = socket.gethostname().encode()  # the agent's default host
    writer.send(URI, [Record(b"line", 5000)], batch, RoundRobin(), 7, host, lambda upto: b"12345678")
    [sent] = writer.producer.headers
    assert {name: len(value) for name, value in sent.items()} == {
        name: len(value.encode()) for name, value in suite.KCAT_HEADERS.items()
    }


def test_the_file_holds_the_lines_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    suite.write_file(path, "1KiB", 2500)
    data = path.read_bytes()
    assert len(data) == 2500 * 1024 and data.count(b"\n") == 2500 and data.endswith(b"\n")


def test_each_run_gives_its_steady_rate_its_start_to_finish_rate_and_cpu_per_line() -> None:
    shipped = [
        suite.Shipped(seconds=2.0, cpu_s=0.5, steady_lines_per_s=800.0),
        suite.Shipped(seconds=4.0, cpu_s=3.0, steady_lines_per_s=300.0),
    ]
    made: list[str] = []

    class Files:
        def run(self, prefix: str, ship: Any, size: str, lines: int) -> suite.Shipped:
            made.append(prefix)
            return shipped[len(made) - 1]

    steady, start_to_finish, cpu = suite._scenarios(Files(), "100B", 1000)  # type: ignore[arg-type]
    assert (steady.name, steady.unit, steady.higher_is_better) == ("ship-100B", "lines/s", True)
    assert (start_to_finish.name, start_to_finish.unit) == ("run-100B", "lines/s")
    assert (cpu.name, cpu.unit, cpu.higher_is_better) == ("cpu-100B", "ns/line", False)
    assert steady.systems["kcat"]() == 800.0
    assert steady.systems["singer"]() == 300.0
    # The other scenarios read the same runs, in the same order: no program ships the file again.
    assert start_to_finish.systems["kcat"]() == 500.0
    assert cpu.systems["kcat"]() == 0.5 / 1000 * 1e9
    assert cpu.systems["singer"]() == 3.0 / 1000 * 1e9
    assert made == ["kcat", "singer"]
