"""Avro and JSON records through a mock Schema Registry; subjects follow the topic names."""

import os

from psc import (
    OFFSET_BEGINNING,
    Consumer,
    DeserializingConsumer,
    KafkaException,
    Producer,
    SerializingProducer,
    TopicPartition,
)
from psc.schema_registry import SchemaRegistryClient
from psc.schema_registry.avro import AvroDeserializer, AvroSerializer
from psc.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from psc.serialization import MessageField, SerializationContext, StringDeserializer, StringSerializer

CLUSTER = "plaintext:/rn:kafka:local:local_dev::cluster01:"
PREFIX = os.environ["MIGRATION_PREFIX"]
USERS = CLUSTER + PREFIX + "users"
PAYMENTS = CLUSTER + PREFIX + "payments"

USER_SCHEMA = """
{"type": "record", "name": "User", "namespace": "example",
 "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}]}
"""
PAYMENT_SCHEMA = """
{"title": "Payment", "type": "object",
 "properties": {"id": {"type": "string"}, "cents": {"type": "integer"}}, "required": ["id", "cents"]}
"""


def main() -> None:
    registry = SchemaRegistryClient.new_client({"url": "mock://"})
    to_avro = AvroSerializer(registry, USER_SCHEMA)
    to_json = JSONSerializer(PAYMENT_SCHEMA, registry)
    key_to_bytes = StringSerializer("utf_8")

    producer = Producer({"psc.project": "serde-producer"})
    users = [{"name": "ada", "age": 36}, {"name": "alan", "age": 41}]
    for user in users:
        value = to_avro(user, SerializationContext(USERS, MessageField.VALUE))
        producer.produce(USERS, key=key_to_bytes(user["name"]), value=value)
    producer.flush(30)

    serializing = SerializingProducer(
        {
            "psc.project": "payments-producer",
            "psc.producer.key.serializer": key_to_bytes,
            "psc.producer.value.serializer": to_json,
        }
    )
    for payment in [{"id": "p-1", "cents": 1250}, {"id": "p-2", "cents": 99}]:
        serializing.produce(topic=PAYMENTS, key=payment["id"], value=payment)
    serializing.flush(30)

    for subject in sorted(registry.get_subjects()):
        versions = registry.get_versions(subject)
        print("subject", subject.removeprefix(PREFIX), "versions", versions)

    from_avro = AvroDeserializer(registry)
    from_json = JSONDeserializer(PAYMENT_SCHEMA)
    key_from_bytes = StringDeserializer("utf_8")
    consumer = Consumer({"psc.project": "serde-consumer", "psc.consumer.group.id": PREFIX + "serde"})
    consumer.assign([TopicPartition(USERS, 0, OFFSET_BEGINNING), TopicPartition(PAYMENTS, 0, OFFSET_BEGINNING)])
    decoders = {USERS: ("users", from_avro), PAYMENTS: ("payments", from_json)}
    records = []
    while len(records) < 4:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        label, decode = decoders[msg.topic()]
        value = decode(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
        key = key_from_bytes(msg.key(), SerializationContext(msg.topic(), MessageField.KEY))
        records.append((label, msg.offset(), key, sorted(value.items())))
    consumer.close()
    for record in sorted(records):
        print("decoded", *record)

    deserializing = DeserializingConsumer(
        {
            "psc.project": "payments-reader",
            "psc.consumer.group.id": PREFIX + "payments",
            "psc.consumer.offset.auto.reset": "earliest",
            "psc.consumer.key.deserializer": key_from_bytes,
            "psc.consumer.value.deserializer": from_json,
        }
    )
    deserializing.subscribe([PAYMENTS])
    payments = []
    while len(payments) < 2:
        msg = deserializing.poll(1.0)
        if msg is not None:
            payments.append((msg.offset(), msg.key(), msg.value()["cents"]))
    deserializing.close()
    for payment in sorted(payments):
        print("deserialized payment", *payment)


if __name__ == "__main__":
    main()
