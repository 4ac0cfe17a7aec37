"""Shared steps of the PSC integration tests: reading records back, changing a topic's limits."""

from __future__ import annotations

import time
import uuid

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

import psc
from tests.services import Services

# A base for explicit record timestamps: an hour ago. The broker's retention deletes records by their
# timestamps, the active segment included, so records stamped years back vanish at its next retention
# check (every 5 minutes) and a test reading them fails when that check falls between write and read.
RECENT_MS = int(time.time() * 1000) - 3_600_000


def drain(consumer: psc.Consumer, count: int, limit_s: float = 15.0) -> list[psc.Message]:
    """Up to ``count`` messages, consumed in batches for at most ``limit_s`` seconds."""
    out: list[psc.Message] = []
    deadline = time.monotonic() + limit_s
    while len(out) < count and time.monotonic() < deadline:
        out += consumer.consume(count - len(out), 0.5)
    return out


def read_from_start(
    services: Services, topic_uri: str, count: int, *, distinct: bool = False, limit_s: float = 30.0
) -> list[psc.Message]:
    """The messages of ``topic_uri`` from its start, read by a fresh group until ``count`` are in (``distinct``:
    ``count`` different values, keeping the duplicates read on the way) or ``limit_s`` seconds pass."""
    config = {
        "psc.project": "it-reader",
        "psc.discovery.file": services.psc_discovery_file,
        "psc.consumer.group.id": f"g-{uuid.uuid4().hex[:8]}",
        "psc.consumer.offset.auto.reset": "earliest",
    }
    out: list[psc.Message] = []
    deadline = time.monotonic() + limit_s
    with psc.Consumer(config) as consumer:
        consumer.subscribe([topic_uri])
        while time.monotonic() < deadline:
            read = len({m.value() for m in out}) if distinct else len(out)
            if read >= count:
                break
            out += consumer.consume(100 if distinct else count - len(out), 0.5)
    return out


def set_max_message_bytes(admin: AdminClient, topic: str, value: int, timeout: float = 30.0) -> None:
    """Set a topic's ``max.message.bytes``: records above it are then rejected by the broker."""
    entry = ConfigEntry("max.message.bytes", str(value), incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource("TOPIC", topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout)
