"""The migration checker accepts the three edits and rejects everything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from psc._config import CONFIG_KEYS, PscConfig
from tests.migration import check_edits

ORIGINAL = '''\
"""A small producer."""

import os

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

BOOTSTRAP = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
PREFIX = os.environ["MIGRATION_PREFIX"]
ORDERS = PREFIX + "orders"

# keep the batch small
conf = {
    "bootstrap.servers": BOOTSTRAP,
    "client.id": "orders",
    "linger.ms": 5,
    "enable.partition.eof": True,
    "ssl.ca.location": "/etc/ca.pem",
}
admin = AdminClient({"bootstrap.servers": BOOTSTRAP, "client.id": "admin"})
producer = Producer(conf, logger=None)
producer.produce(topic=ORDERS, value=b"v")
'''

PORT = '''\
"""A small producer."""

import os

from psc import Producer
from psc.admin import AdminClient

CLUSTER = "plaintext:/rn:kafka:local:local_dev::cluster01:"
PREFIX = os.environ["MIGRATION_PREFIX"]
ORDERS = CLUSTER + PREFIX + "orders"

# keep the batch small
conf = {
    "psc.project": "orders",
    "psc.producer.batch.duration.ms": 5,
    "psc.consumer.enable.partition.eof": True,
    "psc.ssl.ca.location": "/etc/ca.pem",
}
admin = AdminClient({"psc.admin.cluster.uri": CLUSTER, "psc.project": "admin"})
producer = Producer(conf, logger=None)
producer.produce(topic=ORDERS, value=b"v")
'''


def check(tmp_path: Path, original: str, port: str) -> tuple[list[check_edits.Edit], list[check_edits.Problem]]:
    (tmp_path / "original.py").write_text(original)
    (tmp_path / "port.py").write_text(port)
    return check_edits.check_pair(tmp_path / "original.py", tmp_path / "port.py")


def test_the_three_edits_are_accepted_and_classified(tmp_path: Path) -> None:
    edits, problems = check(tmp_path, ORIGINAL, PORT)
    assert problems == []
    kinds = sorted({(edit.kind, edit.text) for edit in edits})
    assert ("import", "confluent_kafka -> psc") in kinds
    assert ("import", "confluent_kafka.admin -> psc.admin") in kinds
    assert ("config", "linger.ms -> psc.producer.batch.duration.ms") in kinds
    assert ("config", "client.id -> psc.project") in kinds
    assert ("resource", "topic name prefixed with CLUSTER") in kinds
    assert ("resource", "bootstrap.servers deleted") in kinds
    assert sum(edit.kind == "config" for edit in edits) == 5


@pytest.mark.parametrize(
    ("before", "after", "why"),
    [
        ('"linger.ms": 5,', '"psc.producer.batch.duration.ms": 50,', "a changed value"),
        ('"linger.ms": 5,', '"psc.consumer.batch.duration.ms": 5,', "a key renamed to the wrong PSC key"),
        ('"enable.partition.eof": True,', '"psc.consumer.enable.partition.eof": False,', "a flipped flag"),
        ("# keep the batch small", "# keep the batch tiny", "an edited comment"),
        ("from confluent_kafka import Producer", "from psc import Producer, Consumer", "an extra imported name"),
        ("from confluent_kafka.admin import AdminClient", "from psc.adm import AdminClient", "an unmirrored module"),
        ('ORDERS = PREFIX + "orders"', 'ORDERS = CLUSTER + PREFIX + "orders2"', "a renamed topic"),
        ('ORDERS = PREFIX + "orders"', 'ORDERS = OTHER + PREFIX + "orders"', "a prefix that is not the cluster"),
        ("producer = Producer(conf, logger=None)", "producer = Producer(conf)", "a dropped argument"),
        ('value=b"v")', 'value="psc.project")', "a string value"),
        ('producer.produce(topic=ORDERS, value=b"v")', 'producer.produce(topic_uri=ORDERS, value=b"v")', "a kwarg"),
        ('    "client.id": "orders",\n', "", "a deleted setting that is not a connection setting"),
    ],
)
def test_any_other_change_is_rejected_with_file_and_line(tmp_path: Path, before: str, after: str, why: str) -> None:
    assert before in PORT or before in ORIGINAL
    port = PORT.replace(_ported(before), after) if _ported(before) in PORT else PORT.replace(before, after)
    assert port != PORT, why
    _, problems = check(tmp_path, ORIGINAL, port)
    assert problems, why
    assert all(problem.line > 0 and problem.path.name in ("original.py", "port.py") for problem in problems)


def _ported(text: str) -> str:
    """The port's form of an original line of the example above."""
    for old, new in [
        ('"linger.ms"', '"psc.producer.batch.duration.ms"'),
        ('"enable.partition.eof"', '"psc.consumer.enable.partition.eof"'),
        ('"client.id"', '"psc.project"'),
        ("from confluent_kafka", "from psc"),
        ("PREFIX +", "CLUSTER + PREFIX +"),
    ]:
        text = text.replace(old, new)
    return text


def test_a_key_renamed_by_subscript_is_accepted(tmp_path: Path) -> None:
    original = ORIGINAL + 'conf["group.id"] = "g"\n'
    port = PORT + 'conf["psc.consumer.group.id"] = "g"\n'
    edits, problems = check(tmp_path, original, port)
    assert problems == []
    assert ("config", "group.id -> psc.consumer.group.id") in {(edit.kind, edit.text) for edit in edits}


def test_a_key_literal_outside_a_key_position_is_not_renamed(tmp_path: Path) -> None:
    original = ORIGINAL + 'print("group.id")\n'
    port = PORT + 'print("psc.consumer.group.id")\n'
    _, problems = check(tmp_path, original, port)
    assert problems


def test_an_added_statement_is_rejected(tmp_path: Path) -> None:
    port = PORT.replace("producer = Producer(", 'conf["psc.project"] = "x"\nproducer = Producer(')
    _, problems = check(tmp_path, ORIGINAL, port)
    assert [problem.path.name for problem in problems] == ["port.py"]


def test_a_connection_entry_may_only_become_the_cluster(tmp_path: Path) -> None:
    port = PORT.replace('"psc.admin.cluster.uri": CLUSTER', '"psc.admin.cluster.uri": "elsewhere"')
    _, problems = check(tmp_path, ORIGINAL, port)
    assert problems


def test_a_connection_entry_becomes_no_other_key(tmp_path: Path) -> None:
    port = PORT.replace('"psc.admin.cluster.uri": CLUSTER', '"psc.admin.bootstrap": CLUSTER')
    _, problems = check(tmp_path, ORIGINAL, port)
    assert problems


def test_a_bootstrap_value_from_the_command_line_may_name_the_admin_cluster(tmp_path: Path) -> None:
    original = 'import sys\nbroker = sys.argv[1]\nadmin = AdminClient({"bootstrap.servers": broker})\n'
    port = 'import sys\nbroker = sys.argv[1]\nadmin = AdminClient({"psc.admin.cluster.uri": broker})\n'
    edits, problems = check(tmp_path, original, port)
    assert problems == []
    assert [edit.kind for edit in edits] == ["resource", "resource"]
    _, problems = check(tmp_path, original, port.replace(": broker", ": sys.argv[2]"))
    assert problems


def test_a_module_import_may_keep_its_name(tmp_path: Path) -> None:
    original = "import confluent_kafka\n\nc = confluent_kafka.Consumer({})\n"
    edits, problems = check(
        tmp_path, original, original.replace("import confluent_kafka", "import psc as confluent_kafka")
    )
    assert problems == []
    assert [edit.text for edit in edits] == ["confluent_kafka -> psc as confluent_kafka"]
    _, problems = check(tmp_path, original, original.replace("import confluent_kafka", "import psc as ck"))
    assert problems


def test_a_layout_only_change_is_rejected(tmp_path: Path) -> None:
    port = PORT.replace('value=b"v")', 'value=b"v"\n)')
    _, problems = check(tmp_path, ORIGINAL, port)
    assert problems


def test_every_migration_pair_differs_by_the_three_edits_only() -> None:
    assert check_edits.check_all() == []
    assert len(check_edits.pairs()) >= 6


def test_a_program_without_a_port_is_reported(tmp_path: Path) -> None:
    (tmp_path / "confluent").mkdir()
    (tmp_path / "psc").mkdir()
    (tmp_path / "confluent" / "lonely.py").write_text("x = 1\n")
    problems = check_edits.check_all(tmp_path / "confluent", tmp_path / "psc")
    assert [problem.path.name for problem in problems] == ["lonely.py"]


def test_the_cli_fails_on_a_bad_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "confluent").mkdir()
    (tmp_path / "psc").mkdir()
    (tmp_path / "confluent" / "p.py").write_text(ORIGINAL)
    (tmp_path / "psc" / "p.py").write_text(PORT.replace("5,", "6,"))
    monkeypatch.setattr(check_edits, "ORIGINALS", tmp_path / "confluent")
    monkeypatch.setattr(check_edits, "PORTS", tmp_path / "psc")
    assert check_edits.main([]) == 1


def test_the_rename_table_matches_the_documented_native_keys() -> None:
    native_of = {key.name: key.native for key in CONFIG_KEYS}
    aliases = {"queue.buffering.max.ms": "linger.ms", "message.timeout.ms": "delivery.timeout.ms"}
    for confluent_key, psc_keys in check_edits.RENAMES.items():
        for psc_key in psc_keys:
            if psc_key == "psc.project":  # required by PSC; psc.client.id defaults to it
                continue
            if psc_key.startswith("psc.ssl."):
                assert psc_key == "psc." + confluent_key
                continue
            if confluent_key.endswith(("serializer", "deserializer")):  # PSC-side: no librdkafka key
                assert native_of[psc_key] is None and psc_key.endswith(confluent_key), psc_key
                continue
            assert native_of[psc_key] == aliases.get(confluent_key, confluent_key), psc_key


def test_pass_through_and_callback_keys_keep_their_name_under_the_client_namespace() -> None:
    assert check_edits.psc_keys_for("enable.partition.eof") == (
        "psc.producer.enable.partition.eof",
        "psc.consumer.enable.partition.eof",
        "psc.admin.enable.partition.eof",
    )
    assert "psc.consumer.on_commit" in check_edits.psc_keys_for("on_commit")
    assert check_edits.psc_keys_for("bootstrap.servers") == ()
    mapped = {key.native for key in CONFIG_KEYS if key.native}
    assert not mapped & set(check_edits.PASS_THROUGH), "a mapped key must be renamed, not passed through"


def test_a_property_every_client_has_may_keep_its_name_under_psc_for_a_shared_dict() -> None:
    assert check_edits.psc_keys_for("debug")[0] == "psc.debug"
    for key in check_edits.GENERIC_PASS_THROUGH:
        for client in ("producer", "consumer", "admin"):
            config = PscConfig.from_mapping({f"psc.{key}": "1" if key != "debug" else "broker"}, client_type=client)
            assert key in config.native, (key, client)
