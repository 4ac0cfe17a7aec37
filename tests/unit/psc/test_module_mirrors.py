"""psc.admin, psc.serialization and psc.schema_registry offer every public name of confluent-kafka's modules."""

from __future__ import annotations

import importlib

import pytest

MIRRORS = [
    ("confluent_kafka.admin", "psc.admin"),
    ("confluent_kafka.serialization", "psc.serialization"),
    ("confluent_kafka.schema_registry", "psc.schema_registry"),
    ("confluent_kafka.schema_registry.avro", "psc.schema_registry.avro"),
    ("confluent_kafka.schema_registry.json_schema", "psc.schema_registry.json_schema"),
    ("confluent_kafka.schema_registry.error", "psc.schema_registry.error"),
]
# Adapted to topic URIs; every other name is confluent-kafka's own object.
ADAPTED = {
    "AdminClient",
    "topic_subject_name_strategy",
    "topic_record_subject_name_strategy",
    "AvroSerializer",
    "AvroDeserializer",
    "AsyncAvroSerializer",
    "AsyncAvroDeserializer",
    "JSONSerializer",
    "JSONDeserializer",
    "AsyncJSONSerializer",
    "AsyncJSONDeserializer",
}
TYPING_LEFTOVERS = {"Any", "Dict", "List", "Optional", "Set", "Tuple", "Union", "concurrent", "warnings", "string_type"}


def public_names(module: object) -> set[str]:
    declared = getattr(module, "__all__", None)
    names = set(declared) if declared is not None else {n for n in dir(module) if not n.startswith("_")}
    return {n for n in names if type(getattr(module, n)).__name__ != "module"} - TYPING_LEFTOVERS


@pytest.mark.parametrize(("confluent_name", "psc_name"), MIRRORS)
def test_every_confluent_name_is_offered(confluent_name: str, psc_name: str) -> None:
    confluent, mirror = importlib.import_module(confluent_name), importlib.import_module(psc_name)
    missing = sorted(public_names(confluent) - set(mirror.__all__))
    assert missing == []
    for name in public_names(confluent):
        ours, theirs = getattr(mirror, name), getattr(confluent, name)
        if name in ADAPTED:
            assert ours is not theirs, name
            if isinstance(theirs, type) and name != "AdminClient":  # it spans clusters: one native client each
                assert issubclass(ours, theirs), name
        else:
            assert ours is theirs, name


def test_the_top_level_exports_the_clients_built_on_psc() -> None:
    import psc
    from psc.admin import AdminClient

    assert psc.AdminClient is AdminClient
    assert issubclass(psc.SerializingProducer, psc.Producer)
    assert issubclass(psc.DeserializingConsumer, psc.Consumer)
