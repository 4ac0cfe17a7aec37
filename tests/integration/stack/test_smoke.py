"""Smoke tests: each real service answers and does its basic job.

Pointed at a closed port (e.g. ``KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1``), each of these fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import urlparse

import boto3
import pymysql
from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Producer

from tests.services import Services


def consume_all(consumer: Consumer, expected: int, timeout_s: float = 30.0) -> list[bytes]:
    import time

    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(values) < expected and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        values.append(msg.value())
    return values


def test_kafka_produce_consume_through_group(kafka_bootstrap: str, new_topic: Callable[..., str]) -> None:
    topic = new_topic(partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all", "socket.timeout.ms": 5000})
    sent = [f"m{i}".encode() for i in range(30)]
    for value in sent:
        producer.produce(topic, value)
    assert producer.flush(15) == 0, "messages still undelivered after flush"

    group = f"smoke-{uuid.uuid4().hex[:8]}"
    consumer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": group, "auto.offset.reset": "earliest",
         "enable.auto.commit": False}
    )  # fmt: skip
    consumer.subscribe([topic])
    try:
        received = consume_all(consumer, len(sent))
        assert sorted(received) == sorted(sent)
        consumer.commit(asynchronous=False)
        committed = consumer.committed(consumer.assignment(), timeout=10)
        # A partition the sticky partitioner left empty may have no position yet, so nothing is committed
        # for it; every partition that holds records must be committed up to its end.
        for tp in committed:
            _, high = consumer.get_watermark_offsets(tp, timeout=10)
            expected = {high} if high > 0 else {0, OFFSET_INVALID}
            assert tp.offset in expected, f"partition {tp.partition}: committed {tp.offset}, end {high}"
        assert sum(max(tp.offset, 0) for tp in committed) == len(sent)
    finally:
        consumer.close()


def test_kafka_committed_transaction_read_committed(kafka_bootstrap: str, new_topic: Callable[..., str]) -> None:
    topic = new_topic()
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": f"smoke-{uuid.uuid4().hex}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"aborted")
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, b"committed")
    producer.commit_transaction(30)

    consumer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": f"smoke-{uuid.uuid4().hex[:8]}",
         "auto.offset.reset": "earliest", "isolation.level": "read_committed", "enable.partition.eof": True}
    )  # fmt: skip
    consumer.subscribe([topic])
    try:
        values: list[bytes] = []
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    break
                raise KafkaException(msg.error())
            values.append(msg.value())
        assert values == [b"committed"]
    finally:
        consumer.close()


def test_mysql_create_insert_select(services: Services) -> None:
    url = urlparse(services.mysql_url)
    conn = pymysql.connect(
        host=url.hostname, port=url.port or 3306, user=url.username or "root", password=url.password or "",
        database=url.path.lstrip("/") or None, connect_timeout=5,
    )  # fmt: skip
    table = f"smoke_{uuid.uuid4().hex[:8]}"
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, body VARCHAR(64))")
            cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", [(1, "one"), (2, "two")])
            conn.commit()
            cur.execute(f"SELECT id, body FROM {table} ORDER BY id")
            assert cur.fetchall() == ((1, "one"), (2, "two"))
            cur.execute(f"DROP TABLE {table}")
    finally:
        conn.close()


def test_s3_put_get_and_ranged_get(services: Services) -> None:
    s3 = boto3.client(
        "s3", endpoint_url=services.s3_endpoint_url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )  # fmt: skip
    bucket = f"smoke-{uuid.uuid4().hex[:8]}"
    body = bytes(range(256)) * 64
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="obj", Body=body)
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == body
    ranged = s3.get_object(Bucket=bucket, Key="obj", Range="bytes=100-299")
    assert ranged["Body"].read() == body[100:300]
    assert ranged["ContentRange"] == f"bytes 100-299/{len(body)}"
