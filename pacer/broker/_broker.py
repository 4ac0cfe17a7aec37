"""The dequeue broker: owns the queue partitions mapped to its control partitions and serves them.

A maintenance thread reconciles ownership with the group's assignment (acquire: a new epoch; revoke:
the buffer dropped), refills buffers below their low watermark or when a doorbell rings, expires
leases and collects finished jobs. Enqueue works for any queue; owner operations only for owned partitions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from pacer._errors import Fenced, NotOwner, QueueNotFound
from pacer._models import QueueConfig
from pacer._owner import PartitionOwner
from pacer._service import Pacer
from pacer.broker._kafka import control_partition
from pacer.storage import Store
from psc.common.log import LogThrottle, get_logger
from psc.common.metrics import MetricsRegistry

log = get_logger("pacer.broker")
GC_CATCH_UP_S = 1.0  # the next GC pass of a partition whose last pass stopped at its row limit


class Broker(Pacer):
    def __init__(
        self,
        store: Store,
        *,
        address: str,
        control_partitions: int,
        metrics: MetricsRegistry,
        buffer_capacity: int = 1000,
        low_watermark: int = 250,
        refill_interval_s: float = 1.0,
        expire_interval_s: float = 1.0,
        gc_interval_s: float = 60.0,
    ) -> None:
        super().__init__(store, owner_id=address, buffer_capacity=buffer_capacity)
        self.address = address
        self.control_partitions = control_partitions
        self.low_watermark = low_watermark
        self.refill_interval_s = refill_interval_s
        self.expire_interval_s = expire_interval_s
        self.gc_interval_s = gc_interval_s
        self.owned_control: Callable[[], set[int]] = set
        self.ring: Callable[[str, int], None] = lambda queue, partition: None
        self._wake = threading.Event()
        self._bells: set[tuple[str, int]] = set()
        # Lost to a newer epoch: not taken back before the group's next assignment, or a broker that was
        # paused would steal its partitions back from the new owner while it still holds a stale assignment.
        self._fenced_out: set[tuple[str, int]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._maintain, name="pacer-maintenance", daemon=True)
        self._throttle = LogThrottle(log, interval_s=30)
        self.metrics = metrics
        self.fenced = metrics.counter("broker_fenced_total", "Owner operations refused by the epoch fence", ["op"])
        self.not_owner = metrics.counter("broker_not_owner_total", "Requests for partitions owned elsewhere", ["op"])
        self.owned_gauge = metrics.gauge("broker_owned_partitions", "Queue partitions this broker owns")
        self.buffered_gauge = metrics.gauge("broker_buffered_jobs", "Jobs held in buffers", ["queue"])
        self.expired = metrics.counter("broker_leases_expired_total", "Leases that expired", ["queue"])
        self.acquired = metrics.counter("broker_partitions_acquired_total", "Partitions taken over (epoch bumps)")

    # -- ownership ------------------------------------------------------------------------------------

    def owner(self, queue: str, partition: int) -> PartitionOwner:
        with self._lock:
            owner = self._owners.get((queue, partition))
        if owner is not None and not owner.lost:
            return owner
        raise NotOwner(
            f"{queue} partition {partition} is not owned by {self.address}", self.owner_address(queue, partition)
        )

    def owner_address(self, queue: str, partition: int) -> str | None:
        try:
            infos = self.store.partitions(queue)
        except QueueNotFound:
            return None
        found = [info.owner for info in infos if info.partition == partition]
        owner = found[0] if found else None
        return None if owner == self.address else owner

    def dequeue_partitions(self, queue: str) -> list[int]:
        with self._lock:
            mine = sorted(p for (q, p), owner in self._owners.items() if q == queue and not owner.lost)
        start = self._dequeue_start()
        if not mine:
            raise NotOwner(f"{self.address} owns no partition of {queue}", None)
        return [mine[(start + i) % len(mine)] for i in range(len(mine))]

    def _enqueued(self, queue: str, partitions: list[int]) -> None:
        for partition in partitions:
            if (queue, partition) in self._owners:
                self.doorbell(queue, partition)  # our own: no round trip through Kafka
            else:
                self.ring(queue, partition)

    def doorbell(self, queue: str, partition: int) -> None:
        with self._lock:
            self._bells.add((queue, partition))
            owner = self._owners.get((queue, partition))
        if owner is not None:
            owner.notify()
        self._wake.set()

    def ownership_changed(self) -> None:
        """The group's assignment changed: partitions lost to the fence may be taken again if assigned."""
        with self._lock:
            self._fenced_out.clear()
        self._wake.set()

    # -- the maintenance loop -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop maintenance and drop every buffer (buffered jobs are PENDING in the database)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        with self._lock:
            owners = list(self._owners.values())
            self._owners.clear()
        for owner in owners:
            self._release(owner)

    def _maintain(self) -> None:
        configs: dict[str, QueueConfig] = {}
        configs_at = last_refill = last_expire = last_gc = 0.0
        while not self._stop.is_set():
            self._wake.wait(0.2)
            self._wake.clear()
            now = time.monotonic()
            try:
                if now - configs_at > 2.0:
                    configs = {name: self.refresh_config(name) for name in self.store.queue_names()}
                    configs_at = now
                self._reconcile(configs)
                with self._lock:
                    bells, self._bells = self._bells, set()
                    owners = dict(self._owners)
                periodic = now - last_refill >= self.refill_interval_s
                for key, owner in owners.items():
                    if key in bells:
                        self._guard("refill", owner, lambda o: o.refill(force=True))
                    elif periodic:
                        self._guard("refill", owner, lambda o: o.refill())
                if periodic:
                    last_refill = now
                if now - last_expire >= self.expire_interval_s:
                    last_expire = now
                    for owner in owners.values():
                        count = self._guard("expire", owner, lambda o: o.expire())
                        if count:
                            self.expired.labels(owner.queue).inc(count)
                if now - last_gc >= self.gc_interval_s:
                    last_gc = now
                    for owner in owners.values():
                        self._guard("gc", owner, lambda o: o.gc())
                    if any(owner.gc_behind() for owner in owners.values()):
                        # A pass reads a bounded number of rows: one per interval could not keep up with a busy
                        # queue, so a partition with rows left gets its next pass within a second.
                        last_gc = now - self.gc_interval_s + min(GC_CATCH_UP_S, self.gc_interval_s)
                self._report(owners)
            except Exception as exc:  # storage trouble: keep going, the next round retries
                self._throttle.log("warning", "maintain", "maintenance_failed", error=repr(exc))
                self._stop.wait(0.5)

    def _reconcile(self, configs: dict[str, QueueConfig]) -> None:
        control = self.owned_control()
        wanted = {
            (name, partition)
            for name, config in configs.items()
            for partition in range(config.partitions)
            if control_partition(name, partition, self.control_partitions) in control
        }
        with self._lock:
            self._fenced_out |= {key for key, owner in self._owners.items() if owner.lost}
            wanted -= self._fenced_out
            current = {key for key, owner in self._owners.items() if not owner.lost}
            gone = [self._owners.pop(key) for key in list(self._owners) if key not in wanted or self._owners[key].lost]
        for owner in gone:
            self._release(owner)
        for name, partition in sorted(wanted - current):
            if self._stop.is_set():
                return
            owner = PartitionOwner(
                self.store,
                configs[name],
                partition,
                self.address,
                capacity=self.buffer_capacity,
                low_watermark=self.low_watermark,
            )
            epoch = owner.acquire()
            self.acquired.inc()
            log.info("partition_acquired", queue=name, partition=partition, epoch=epoch)
            owner.refill(force=True)
            owner.on_low = lambda key=(name, partition): self.doorbell(*key)
            with self._lock:
                self._owners[(name, partition)] = owner

    def _release(self, owner: PartitionOwner) -> None:
        try:
            owner.release()
            log.info("partition_released", queue=owner.queue, partition=owner.partition, epoch=owner.epoch)
        except Exception as exc:
            log.warning("release_failed", queue=owner.queue, partition=owner.partition, error=repr(exc))

    def _guard(self, op: str, owner: PartitionOwner, call: Callable[[PartitionOwner], Any]) -> Any:
        try:
            return call(owner)
        except Fenced as exc:
            self.fenced.labels(op).inc()
            log.warning("partition_fenced", queue=owner.queue, partition=owner.partition, op=op, error=str(exc))
            return 0

    def _report(self, owners: dict[tuple[str, int], PartitionOwner]) -> None:
        self.owned_gauge.set(len(owners))
        totals: dict[str, int] = {}
        for (queue, _), owner in owners.items():
            totals[queue] = totals.get(queue, 0) + owner.buffered()
        for queue, total in totals.items():
            self.buffered_gauge.labels(queue).set(total)

    def owned_partitions(self) -> list[tuple[str, int, int, int]]:
        """``(queue, partition, epoch, buffered)`` of every owned partition."""
        with self._lock:
            return sorted((q, p, o.epoch, o.buffered()) for (q, p), o in self._owners.items() if not o.lost)
