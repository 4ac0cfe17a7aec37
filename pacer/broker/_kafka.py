"""Kafka's part: group membership over the control topic (ownership) and doorbell records (wake-ups).

The member assigned control partition ``k`` owns every queue partition mapped to ``k``. A doorbell is a
small record on the owning control partition, produced after an enqueue is committed to MySQL; it only
hastens a refill, so losing one (Kafka down) delays dispatch until the next periodic refill.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Callable
from typing import Any

import psc
from psc.common.log import LogThrottle, get_logger

log = get_logger("pacer.broker.kafka")


def control_partition(queue: str, partition: int, control_partitions: int) -> int:
    """The control partition that owns a queue partition: a queue's partitions spread over consecutive ones."""
    return (zlib.crc32(queue.encode()) + partition) % control_partitions


class Membership:
    """A consumer-group member on the control topic, polled in its own thread."""

    def __init__(
        self,
        config: dict[str, Any],
        control_topic: str,
        on_doorbell: Callable[[str, int], None],
        on_change: Callable[[], None],
    ) -> None:
        self._consumer = psc.Consumer(config)
        self._topic = control_topic
        self._on_doorbell = on_doorbell
        self._on_change = on_change
        self._owned: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pacer-membership", daemon=True)
        self._throttle = LogThrottle(log, interval_s=30)

    def owned(self) -> set[int]:
        with self._lock:
            return set(self._owned)

    def start(self) -> None:
        self._consumer.subscribe([self._topic], on_assign=self._assigned, on_revoke=self._revoked)
        self._thread.start()

    def _assigned(self, consumer: Any, partitions: list[Any]) -> None:
        with self._lock:
            self._owned |= {p.partition for p in partitions}
        log.info("control_partitions_assigned", partitions=sorted(p.partition for p in partitions))
        self._on_change()

    def _revoked(self, consumer: Any, partitions: list[Any]) -> None:
        with self._lock:
            self._owned -= {p.partition for p in partitions}
        log.info("control_partitions_revoked", partitions=sorted(p.partition for p in partitions))
        self._on_change()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._consumer.poll(0.5)
            except Exception as exc:  # Kafka trouble: ownership stays as it is until the group says otherwise
                self._throttle.log("warning", "poll", "control_poll_failed", error=str(exc))
                self._stop.wait(1.0)
                continue
            if msg is None:
                continue
            error = msg.error() if callable(getattr(msg, "error", None)) else None
            if error is not None:
                if not (callable(getattr(msg, "is_eof", None)) and msg.is_eof()):
                    self._throttle.log("warning", "record", "control_record_error", error=str(error))
                continue
            try:
                bell = json.loads(msg.value())
                self._on_doorbell(str(bell["queue"]), int(bell["partition"]))
            except (ValueError, KeyError, TypeError):
                self._throttle.log("warning", "malformed", "doorbell_malformed")

    def close(self) -> None:
        """Leave the group (its partitions move at once) and stop polling."""
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self._consumer.close()
        except Exception as exc:
            log.warning("consumer_close_failed", error=str(exc))


class Doorbell:
    """Produces wake-up records; never raises, so a Kafka outage cannot fail an enqueue."""

    def __init__(self, config: dict[str, Any], control_topic: str, control_partitions: int) -> None:
        self._producer = psc.Producer(config)
        self._topic = control_topic
        self._partitions = control_partitions
        self._lock = threading.Lock()
        self._throttle = LogThrottle(log, interval_s=30)
        self.failures = 0

    def ring(self, queue: str, partition: int) -> None:
        value = json.dumps({"queue": queue, "partition": partition}).encode()
        key = f"{queue}:{partition}".encode()
        try:
            with self._lock:
                self._producer.produce(
                    self._topic, value, key, partition=control_partition(queue, partition, self._partitions)
                )
                self._producer.poll(0)
        except Exception as exc:
            self.failures += 1
            self._throttle.log("warning", "ring", "doorbell_failed", error=str(exc))

    def close(self) -> None:
        try:
            self._producer.flush(5)
        except Exception as exc:
            log.warning("doorbell_flush_failed", error=str(exc))
