from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors import Job, JobConfigError, KafkaSink, KafkaSource, PscSink, PscSource, Split, State, UserFunctionError
from connectors.cli import build_parser, load_job, main
from connectors.runtime.runner import Runner, witness_of, witnessed_checkpoint

SERVERS = {"bootstrap.servers": "127.0.0.1:1"}
URI = "plaintext:/rn:kafka:local:local_dev::cluster01:"


def job(tmp_path: Path, **kwargs: Any) -> Job:
    return Job("j", checkpoints=f"file:{tmp_path}", **kwargs)


def test_transaction_timeout_below_the_checkpoint_interval_is_refused(tmp_path: Path) -> None:
    j = job(tmp_path, checkpoint_interval_s=60)
    j.source("in", KafkaSource(["t"], config=SERVERS)).sink(
        "out", KafkaSink("o", transaction_timeout_s=30, config=SERVERS)
    )
    with pytest.raises(JobConfigError, match=r"transaction_timeout_s=30.*checkpoint_interval_s=60"):
        j.validate()


def test_exactly_once_keeps_a_fallback_checkpoint(tmp_path: Path) -> None:
    j = job(tmp_path, keep_checkpoints=1)
    j.source("in", KafkaSource(["t"], config=SERVERS)).sink("out", KafkaSink("o", config=SERVERS))
    with pytest.raises(JobConfigError, match="keep_checkpoints >= 2"):
        j.validate()


def test_exactly_once_across_client_families_is_refused(tmp_path: Path) -> None:
    j = job(tmp_path)
    j.source("in", KafkaSource(["t"], config=SERVERS)).sink("out", PscSink(URI + "o", config={"psc.project": "p"}))
    with pytest.raises(JobConfigError, match="a kafka source and a psc sink"):
        j.validate()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda p: Job("bad name!", checkpoints=f"file:{p}"), "job name"),
        (lambda p: Job("j", on_error="dead_letter"), "needs dead_letter_topic"),
        (lambda p: Job("j", on_error="ignore"), "on_error must be"),  # type: ignore[arg-type]
        (lambda p: Job("j", checkpoint_interval_s=0), "checkpoint_interval_s must be positive"),
        (lambda p: KafkaSource("t", config=SERVERS), "topics must be a non-empty list"),
        (lambda p: KafkaSource(["t"], start="middle"), "start must be"),  # type: ignore[arg-type]
        (lambda p: KafkaSink("o", guarantee="maybe"), "guarantee must be"),  # type: ignore[arg-type]
        (lambda p: PscSink("not-a-uri"), "not a topic URI"),
        (lambda p: Job("j").validate(), "has no source"),
    ],
)
def test_bad_configuration_is_named(tmp_path: Path, build: Any, message: str) -> None:
    with pytest.raises(JobConfigError, match=message):
        build(tmp_path)


def test_duplicate_operator_names_are_refused(tmp_path: Path) -> None:
    stream = job(tmp_path).source("x", KafkaSource(["t"], config=SERVERS))
    with pytest.raises(JobConfigError, match="unique"):
        stream.sink("x", KafkaSink("o", config=SERVERS))


def test_witness_names_its_job_and_checkpoint() -> None:
    assert witnessed_checkpoint(witness_of("j", 12, "abcd0123"), "j") == 12
    assert witnessed_checkpoint(witness_of("j", 12, "abcd0123"), "other") is None
    assert witnessed_checkpoint(None, "j") is None
    assert witnessed_checkpoint("garbage", "j") is None


class Record:
    """A message as the clients return it: accessor methods."""

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes) -> None:
        self._fields = (topic, partition, offset, key, value)

    def topic(self) -> str:
        return self._fields[0]

    def partition(self) -> int:
        return self._fields[1]

    def offset(self) -> int:
        return self._fields[2]

    def key(self) -> bytes | None:
        return self._fields[3]

    def value(self) -> bytes:
        return self._fields[4]


class FakeWriter:
    def __init__(self) -> None:
        self.written: list[tuple[Any, bytes | None, int, str | None]] = []

    def write(self, value: Any, key: bytes | None, partition: int, topic: str | None = None) -> None:
        self.written.append((value, key, partition, topic))

    def writer_for_sink_topic(self) -> Any:
        return self.write


class FakeReader:
    """Every record belongs to one split."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def split_of(self, record: Any) -> Split:
        return self.split


def runner_for(j: Job) -> Runner:
    return Runner(j)


def test_user_functions_chain_and_keep_per_key_state(tmp_path: Path) -> None:
    j = job(tmp_path)

    def count(value: bytes, state: State) -> bytes:
        state.set("n", state.get("n", 0) + 1)
        return value + str(state.get("n")).encode()

    j.source("in", KafkaSource(["t"], config=SERVERS)).filter(lambda v: v != b"drop").map(count, state="key").flat_map(
        lambda v: [v, v]
    ).sink("out", KafkaSink("o", config=SERVERS))
    writer = FakeWriter()
    split = Split("t", 0, 0)
    process = runner_for(j)._processor(FakeReader(split), writer)  # type: ignore[arg-type]
    batch = [(b"a", b"x"), (b"b", b"y"), (b"a", b"drop"), (b"a", b"z")]
    assert process([Record("t", 0, offset, key, value) for offset, (key, value) in enumerate(batch)]) == 6
    assert [w[0] for w in writer.written] == [b"x1", b"x1", b"y1", b"y1", b"z2", b"z2"]
    assert split.state == {"step1": {b"a".hex(): {"n": 2}, b"b".hex(): {"n": 1}}}


def test_a_raising_function_stops_the_job_or_goes_to_the_dead_letter_topic(tmp_path: Path) -> None:
    def boom(value: bytes) -> bytes:
        raise ValueError("bad record")

    stopping = job(tmp_path)
    stopping.source("in", KafkaSource(["t"], config=SERVERS)).map(boom).sink("out", KafkaSink("o", config=SERVERS))
    with pytest.raises(UserFunctionError, match=r"t \[2\] @ 7.*bad record"):
        runner_for(stopping)._processor(FakeReader(Split("t", 2)), FakeWriter())([Record("t", 2, 7, b"k", b"v")])  # type: ignore[arg-type]

    dead = job(tmp_path, on_error="dead_letter", dead_letter_topic="dlq")
    dead.source("in", KafkaSource(["t"], config=SERVERS)).map(boom).sink("out", KafkaSink("o", config=SERVERS))
    writer = FakeWriter()
    process = runner_for(dead)._processor(FakeReader(Split("t", 2)), writer)  # type: ignore[arg-type]
    assert process([Record("t", 2, 7, b"k", b"v")]) == 0
    assert writer.written == [(b"v", b"k", 2, "dlq")]


def test_cli_help_and_bad_job_specs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["run", "--help"])
    assert info.value.code == 0
    assert "module:attribute" in capsys.readouterr().out
    with pytest.raises(JobConfigError, match="module:attribute"):
        load_job("nocolon")
    with pytest.raises(JobConfigError, match="cannot import module 'no_such_module_x'"):
        load_job("no_such_module_x:job")
    with pytest.raises(JobConfigError, match="has no attribute 'nope'"):
        load_job("connectors:nope")
    assert main(["run", "connectors:Split"]) == 2


def test_psc_source_takes_the_cluster_uri_from_its_config() -> None:
    source = PscSource([URI + "t"], config={"psc.project": "p", "psc.cluster.uri": URI})
    assert source.cluster_uri == URI and "psc.cluster.uri" not in source.config


def test_split_owner_follows_flinks_rule_and_gives_each_partition_one_owner() -> None:
    from connectors.sources.base import java_string_hash, split_owner

    assert java_string_hash("hello") == 99162322
    assert java_string_hash("a-much-longer-topic-name-that-overflows") == _java_hash_reference(
        "a-much-longer-topic-name-that-overflows"
    )
    for instances in (1, 2, 3, 5):
        owners = [split_owner("clicks", p, instances) for p in range(12)]
        assert set(owners) == set(range(instances))
    source = PscSource([URI + "clicks"], config={"psc.project": "p"})
    assert source.topic_name(URI + "clicks") == "clicks"


def _java_hash_reference(text: str) -> int:
    value = 0
    for ch in text:
        value = (value * 31 + ord(ch)) % (1 << 32)
    return value - (1 << 32) if value >= 1 << 31 else value


def test_instance_numbers_are_checked(tmp_path: Path) -> None:
    j = job(tmp_path)
    j.source("in", KafkaSource(["t"], config=SERVERS)).sink("out", KafkaSink("o", config=SERVERS))
    with pytest.raises(JobConfigError, match="instance 2 of 2"):
        Runner(j, instance=2, instances=2)
