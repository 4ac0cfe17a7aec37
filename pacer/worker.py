"""Worker pools: run a handler over a queue's jobs with bounded concurrency, acks and lease extension.

``pacer worker module:handler --queue Q`` runs one pool per queue. A handler takes a :class:`Lease` and
returns an optional status to append; raising :class:`Retry` picks the retry delay, any other exception
fails the attempt with an exponential backoff with jitter. Leases of long jobs are extended while the
handler runs. On SIGTERM a pool stops dequeuing, lets running jobs finish for ``grace`` seconds, acks
them, and hands the rest back to PENDING.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from pacer._errors import InvalidArgument
from pacer._models import Ack, AckResult, Checkpoint, Lease
from psc.common.log import LogThrottle, configure_logging, get_logger
from psc.common.metrics import MetricsRegistry

log = get_logger("pacer.worker")
Handler = Callable[[Lease], "str | None"]
RetryPolicy = Callable[[int], timedelta]


class JobSource(Protocol):
    """What a worker needs: :class:`pacer.Client` (brokers) and :class:`pacer.Pacer` (embedded) both fit."""

    def dequeue(self, queue: str, limit: int = 1) -> list[Lease]: ...

    def ack(
        self, queue: str, *, succeeded: Iterable[Ack | Lease] = (), failed: Iterable[Ack | Lease] = ()
    ) -> AckResult: ...

    def checkpoint(self, queue: str, items: Iterable[Checkpoint]) -> list[bool]: ...


@runtime_checkable
class AckingSource(JobSource, Protocol):
    """A source that acks and dequeues in one call: :class:`pacer.Pacer` and :class:`pacer.Client` both are."""

    def ack_and_dequeue(
        self, queue: str, limit: int = 1, *, succeeded: Iterable[Ack | Lease] = (), failed: Iterable[Ack | Lease] = ()
    ) -> tuple[AckResult, list[Lease]]: ...


class Retry(Exception):
    """Raise from a handler to fail this attempt and run the job again ``after`` the given delay."""

    def __init__(self, after: timedelta = timedelta(0), status: str = "") -> None:
        super().__init__(status or f"retry after {after}")
        self.after = after
        self.status = status


def exponential(
    first: timedelta = timedelta(seconds=1),
    factor: float = 2.0,
    cap: timedelta = timedelta(hours=1),
    jitter: float = 0.1,
) -> RetryPolicy:
    """Delay before retry ``n`` (1-based): ``first * factor**(n-1)``, capped, spread by ±``jitter``."""

    def delay(attempt: int) -> timedelta:
        base = min(cap.total_seconds(), first.total_seconds() * factor ** max(0, attempt - 1))
        return timedelta(seconds=max(0.0, base * (1 + random.uniform(-jitter, jitter))))

    return delay


@dataclass
class _Running:
    lease: Lease
    future: concurrent.futures.Future[str | None]
    lease_length: timedelta
    extend_at: float


class Worker:
    """One pool serving one queue."""

    def __init__(
        self,
        source: JobSource,
        queue: str,
        handler: Handler,
        *,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        poll_interval: float = 0.5,
        grace: float = 30.0,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        if concurrency < 1:
            raise InvalidArgument("concurrency must be >= 1")
        self.source = source
        self._acking = source if isinstance(source, AckingSource) else None  # checked once: a protocol check is slow
        self.queue = queue
        self.handler = handler
        self.concurrency = concurrency
        self.retry = retry or exponential()
        self.poll_interval = poll_interval
        self.grace = grace
        self.stopping = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(concurrency, thread_name_prefix=f"pacer-{queue}")
        self._running: dict[str, _Running] = {}
        self._throttle = LogThrottle(log, interval_s=30)
        metrics = metrics or MetricsRegistry("pacer")
        self._jobs = metrics.counter("worker_jobs_total", "Jobs run by result", ["queue", "result"])
        self._seconds = metrics.histogram("worker_job_seconds", "Handler run time", ["queue"])

    def run(self) -> None:
        """Serve until :meth:`stop`; then drain as described in the module."""
        log.info("worker_started", queue=self.queue, concurrency=self.concurrency)
        while not self.stopping.is_set():
            succeeded, failed = self._collect_done()
            self._extend_leases()
            free = self.concurrency - len(self._running)
            leases: list[Lease] = []
            if free > 0 and self._acking is not None and (succeeded or failed):
                leases = self._ack_and_dequeue(self._acking, succeeded, failed, free)
            else:
                self._ack(succeeded, failed)
                if free > 0:
                    leases = self._dequeue(free)
            for lease in leases:
                self._start(lease)
            if not leases:
                self._wait(self.poll_interval)
        self._drain()
        log.info("worker_stopped", queue=self.queue)

    def stop(self) -> None:
        self.stopping.set()

    def _start(self, lease: Lease) -> None:
        length = lease.lease_expires_at - datetime.now(UTC)
        extend_in = max(0.05, length.total_seconds() / 3)
        started = time.monotonic()

        def call() -> str | None:
            try:
                return self.handler(lease)
            finally:
                self._seconds.labels(self.queue).observe(time.monotonic() - started)

        future = self._pool.submit(call)
        self._running[str(lease.descriptor)] = _Running(lease, future, length, time.monotonic() + extend_in)

    def _wait(self, timeout: float) -> None:
        futures = [r.future for r in self._running.values()]
        if futures:
            concurrent.futures.wait(
                futures, timeout=min(timeout, self._next_extension()), return_when="FIRST_COMPLETED"
            )
        else:
            self.stopping.wait(timeout)

    def _next_extension(self) -> float:
        soonest = min((r.extend_at for r in self._running.values()), default=time.monotonic() + 1)
        return max(0.01, soonest - time.monotonic())

    def _dequeue(self, limit: int) -> list[Lease]:
        try:
            return self.source.dequeue(self.queue, limit)
        except Exception as exc:  # brokers moving or storage down: try again shortly
            self._throttle.log("warning", "dequeue", "dequeue_failed", queue=self.queue, error=repr(exc))
            return []

    def _ack_and_dequeue(
        self, source: AckingSource, succeeded: Sequence[Ack], failed: Sequence[Ack], limit: int
    ) -> list[Lease]:
        """The finished jobs' acks and the next jobs in one call; if it fails, the acks alone as :meth:`_ack` does
        (a replayed ack is accepted) and no jobs this turn."""
        try:
            result, leases = source.ack_and_dequeue(self.queue, limit, succeeded=succeeded, failed=failed)
        except Exception as exc:
            self._throttle.log("warning", "ack", "ack_and_dequeue_failed", queue=self.queue, error=repr(exc))
            self._ack(succeeded, failed)
            return []
        self._acked(result, succeeded, failed)
        return leases

    def _finish_done(self) -> None:
        self._ack(*self._collect_done())

    def _collect_done(self) -> tuple[list[Ack], list[Ack]]:
        """The acks of the jobs whose handlers returned, which leave the running set."""
        succeeded: list[Ack] = []
        failed: list[Ack] = []
        done = [key for key, r in self._running.items() if r.future.done()]
        for key in done:
            running = self._running.pop(key)
            lease = running.lease
            exc = running.future.exception()
            if exc is None:
                succeeded.append(Ack(lease.descriptor, lease.claim, running.future.result() or ""))
                continue
            attempt = lease.attempts_allowed - lease.attempts_remaining + 1
            delay = exc.after if isinstance(exc, Retry) else self.retry(attempt)
            status = exc.status if isinstance(exc, Retry) else f"{type(exc).__name__}: {exc}"
            failed.append(Ack(lease.descriptor, lease.claim, status[:200] + ";", delay))
            if not isinstance(exc, Retry):
                log.warning("job_failed", queue=self.queue, descriptor=key, attempt=attempt, error=repr(exc))
        return succeeded, failed

    def _ack(self, succeeded: Sequence[Ack], failed: Sequence[Ack]) -> None:
        if not succeeded and not failed:
            return
        try:
            result = self.source.ack(self.queue, succeeded=succeeded, failed=failed)
        except Exception as exc:  # the lease runs out and the job runs again: at least once
            self._throttle.log("warning", "ack", "ack_failed", queue=self.queue, error=repr(exc))
            return
        self._acked(result, succeeded, failed)

    def _acked(self, result: AckResult, succeeded: Sequence[Ack], failed: Sequence[Ack]) -> None:
        self._jobs.labels(self.queue, "succeeded").inc(len(succeeded))
        self._jobs.labels(self.queue, "failed").inc(len(failed))
        if result.rejected:
            log.warning("acks_rejected", queue=self.queue, rejected={str(d): r for d, r in result.rejected.items()})

    def _extend_leases(self) -> None:
        now = time.monotonic()
        due = [r for r in self._running.values() if r.extend_at <= now and not r.future.done()]
        if not due:
            return
        items = [Checkpoint(r.lease.descriptor, r.lease.claim, extend_lease=r.lease_length) for r in due]
        try:
            applied = self.source.checkpoint(self.queue, items)
        except Exception as exc:
            self._throttle.log("warning", "extend", "lease_extension_failed", queue=self.queue, error=repr(exc))
            applied = [False] * len(due)
        for running, ok in zip(due, applied, strict=True):
            running.extend_at = now + max(0.05, running.lease_length.total_seconds() / 3)
            if not ok:
                log.warning("lease_lost", queue=self.queue, descriptor=str(running.lease.descriptor))

    def _drain(self) -> None:
        deadline = time.monotonic() + self.grace
        while self._running and time.monotonic() < deadline:
            self._finish_done()
            self._extend_leases()
            if self._running:
                self._wait(min(0.2, max(0.0, deadline - time.monotonic())))
        self._finish_done()
        if self._running:  # still running after the grace period: hand them back
            items = [
                Checkpoint(r.lease.descriptor, r.lease.claim, move_to_pending=True) for r in self._running.values()
            ]
            try:
                self.source.checkpoint(self.queue, items)
            except Exception as exc:
                log.warning("release_failed", queue=self.queue, error=repr(exc))
        self._pool.shutdown(wait=False, cancel_futures=True)


def load_handler(path: str) -> Handler:
    """``module:function`` to the function, with an error that says which part is wrong."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise InvalidArgument(f"handler {path!r} must look like module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgument(f"handler {path!r}: cannot import {module_name!r}: {exc}") from exc
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise InvalidArgument(f"handler {path!r}: {module_name} has no function {attribute!r}")
    return handler  # type: ignore[no-any-return]


def run_workers(
    handler: str,
    queues: Sequence[str],
    *,
    brokers: Sequence[str] | None = None,
    storage: str | None = None,
    concurrency: int = 8,
    max_retry_delay: float = 3600.0,
    metrics_port: int | None = None,
) -> None:
    """One pool per queue, each in its own thread, until SIGTERM/SIGINT."""
    configure_logging()
    function = load_handler(handler)
    source: Any
    if brokers:
        from pacer.client import Client

        source = Client(brokers)
    elif storage:
        from pacer._service import Pacer

        source = Pacer.open(storage)
    else:
        raise InvalidArgument("give broker URLs or a storage URL")
    metrics = MetricsRegistry("pacer")
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, registry=metrics.registry)
    retry = exponential(cap=timedelta(seconds=max_retry_delay))
    workers = [Worker(source, q, function, concurrency=concurrency, retry=retry, metrics=metrics) for q in queues]

    def stop_all(*_: object) -> None:
        for worker in workers:
            worker.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop_all)
    threads = [threading.Thread(target=w.run, name=f"pool-{w.queue}") for w in workers]
    for thread in threads:
        thread.start()
    print(f"pacer worker serving {', '.join(queues)}", flush=True)
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(timeout=0.5)
