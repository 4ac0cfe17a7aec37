"""``pacer.Client``: Pacer's API over the brokers' HTTP API.

Enqueues and reads go to any broker. Dequeues, acks and checkpoints go to the partition's owner: the
client keeps a map of owners, follows a non-owner's pointer, and when an owner dies or is fenced it
re-reads the map and retries until ``retry_for`` runs out. Acks and checkpoints are safe to retry (a
replayed success ack is accepted); an enqueue is retried only when it cannot have been stored twice
(the connection was refused, or every job has an idempotency key).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from pacer import _errors as errors
from pacer import _wire as wire
from pacer._models import (
    Ack,
    AckResult,
    Checkpoint,
    Descriptor,
    Job,
    JobInfo,
    JobState,
    Lease,
    PartitionInfo,
    ScanPage,
)
from pacer._names import queue_name

T = TypeVar("T")


class Unreachable(errors.PacerError):
    """No answer from a broker; ``sent`` says whether the request may have arrived."""

    def __init__(self, message: str, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class Client:
    def __init__(
        self,
        brokers: str | Sequence[str],
        *,
        admin_token: str | None = None,
        timeout: float = 10.0,
        retry_for: float = 30.0,
    ) -> None:
        self.brokers = [brokers] if isinstance(brokers, str) else list(brokers)
        if not self.brokers:
            raise errors.InvalidArgument("Client needs at least one broker URL")
        self.admin_token = admin_token
        self.timeout = timeout
        self.retry_for = retry_for
        self._owners: dict[str, dict[int, str | None]] = {}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._turn = 0

    def close(self) -> None:
        for conn in getattr(self._local, "conns", {}).values():
            conn.close()
        self._local.conns = {}

    # -- transport ------------------------------------------------------------------------------------

    def _request(self, base: str, method: str, path: str, body: Any = None, admin: bool = False) -> Any:
        conns: dict[str, http.client.HTTPConnection] = self._local.__dict__.setdefault("conns", {})
        url = urlsplit(base)
        payload = b"" if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(payload))}
        if admin and self.admin_token is not None:
            headers["Authorization"] = f"Bearer {self.admin_token}"
        for attempt in (0, 1):  # a kept-alive connection the broker closed meanwhile is retried once
            conn = conns.get(base)
            if conn is None:
                conn = conns[base] = http.client.HTTPConnection(
                    url.hostname or "", url.port or 80, timeout=self.timeout
                )
            sent = False
            try:
                conn.request(method, path, payload, headers)
                sent = True
                response = conn.getresponse()
                data = response.read()
                break
            except (ConnectionError, OSError, http.client.HTTPException) as exc:
                conn.close()
                conns.pop(base, None)
                fresh = isinstance(exc, http.client.RemoteDisconnected | BrokenPipeError | ConnectionResetError)
                if attempt == 0 and fresh and not isinstance(exc, TimeoutError):
                    continue
                refused = isinstance(exc, ConnectionRefusedError) or not sent
                raise Unreachable(f"{base}: {exc!r}", sent=not refused) from exc
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            raise errors.PacerError(f"{base}{path}: answer is not JSON (status {response.status})") from None
        if response.status >= 400:
            raise _error(answer, response.status)
        return answer

    def _any(self, method: str, path: str, body: Any = None, *, admin: bool = False, resend: bool = True) -> Any:
        """Ask brokers in turn until one answers; ``resend`` False: never after a request may have arrived."""
        deadline = time.monotonic() + self.retry_for
        while True:
            with self._lock:
                self._turn += 1
                start = self._turn
            last: Exception | None = None
            for i in range(len(self.brokers)):
                base = self.brokers[(start + i) % len(self.brokers)]
                try:
                    return self._request(base, method, path, body, admin)
                except Unreachable as exc:
                    if exc.sent and not resend:
                        raise
                    last = exc
                except errors.PacerError as exc:
                    if not isinstance(exc, _Unavailable):
                        raise
                    last = exc
            if time.monotonic() > deadline:
                assert last is not None
                raise last
            time.sleep(0.2)

    def _post(self, path: str, body: Any) -> Callable[[str], Any]:
        return lambda owner: self._request(owner, "POST", path, body)

    # -- owners ---------------------------------------------------------------------------------------

    def partitions(self, queue: str) -> list[PartitionInfo]:
        answer = self._any("GET", f"/v1/queues/{queue_name(queue)}/partitions")
        infos = [
            PartitionInfo(queue, int(p["partition"]), int(p["shard"]), int(p["epoch"]), p.get("owner"))
            for p in answer["partitions"]
        ]
        with self._lock:
            self._owners[queue] = {info.partition: info.owner for info in infos}
        return infos

    def _owner_map(self, queue: str, refresh: bool = False) -> dict[int, str | None]:
        with self._lock:
            known = self._owners.get(queue)
        if known is None or refresh:
            self.partitions(queue)
            with self._lock:
                known = self._owners[queue]
        return known

    def _to_owner(self, queue: str, partition: int, send: Callable[[str], T]) -> T:
        """``send(owner)`` to the partition's owner, following moves until ``retry_for`` runs out."""
        deadline = time.monotonic() + self.retry_for
        refresh = False
        while True:
            owner = self._owner_map(queue, refresh).get(partition)
            try:
                if owner is None:
                    raise errors.NotOwner(f"{queue} partition {partition} has no owner yet")
                return send(owner)
            except errors.NotOwner as exc:
                if exc.owner:
                    with self._lock:
                        self._owners.setdefault(queue, {})[partition] = exc.owner
                    refresh = False
                    continue
                last: Exception = exc
            except (Unreachable, errors.Fenced, _Unavailable) as exc:
                last = exc
            if time.monotonic() > deadline:
                raise last
            refresh = True
            time.sleep(0.2)

    # -- the API --------------------------------------------------------------------------------------

    def queue_names(self) -> list[str]:
        return list(self._any("GET", "/v1/queues")["queues"])

    def create_queue(
        self,
        name: str,
        *,
        partitions: int = 1,
        lease: timedelta = timedelta(minutes=5),
        max_jobs_per_second: float | None = None,
        succeeded_ttl: timedelta = timedelta(hours=24),
        failed_ttl: timedelta = timedelta(days=7),
    ) -> None:
        body = {
            "name": queue_name(name),
            "partitions": partitions,
            "lease_ms": int(lease.total_seconds() * 1000),
            "max_jobs_per_second": max_jobs_per_second,
            "succeeded_ttl_s": int(succeeded_ttl.total_seconds()),
            "failed_ttl_s": int(failed_ttl.total_seconds()),
        }
        self._any("POST", "/v1/queues", body, admin=True)

    def delete_queue(self, name: str) -> None:
        self._any("DELETE", f"/v1/queues/{queue_name(name)}", admin=True)

    def set_rate_limit(self, name: str, jobs_per_second: float | None) -> None:
        self._any(
            "PUT", f"/v1/queues/{queue_name(name)}/rate_limit", {"max_jobs_per_second": jobs_per_second}, admin=True
        )

    def enqueue(self, queue: str, jobs: Iterable[Job | bytes]) -> list[Descriptor]:
        batch = [job if isinstance(job, Job) else Job(job) for job in jobs]
        body = {"jobs": [wire.job_to_json(job) for job in batch]}
        keyed = all(job.key is not None for job in batch)
        answer = self._any("POST", f"/v1/queues/{queue_name(queue)}/jobs", body, resend=keyed)
        return [Descriptor.parse(text) for text in answer["descriptors"]]

    def dequeue(self, queue: str, limit: int = 1) -> list[Lease]:
        """Up to ``limit`` jobs from the owners of the queue's partitions, visited in turn."""
        owners = sorted({o for o in self._owner_map(queue).values() if o})
        if not owners:
            owners = sorted({o for o in self._owner_map(queue, refresh=True).values() if o})
        with self._lock:
            self._turn += 1
            start = self._turn
        stale = False
        for i in range(len(owners)):
            owner = owners[(start + i) % len(owners)]
            try:
                answer = self._request(owner, "POST", f"/v1/queues/{queue_name(queue)}/dequeue", {"limit": limit})
            except (Unreachable, errors.NotOwner, errors.Fenced, _Unavailable):
                stale = True
                continue
            leases = [wire.lease_from_json(obj) for obj in answer["jobs"]]
            if leases:
                return leases
        if stale or not owners:
            self._owner_map(queue, refresh=True)
        return []

    def ack(
        self, queue: str, *, succeeded: Iterable[Ack | Lease] = (), failed: Iterable[Ack | Lease] = ()
    ) -> AckResult:
        return self._send_acks(queue, _ack_bodies(queue, succeeded, failed))

    def _send_acks(self, queue: str, bodies: dict[int, dict[str, list[dict[str, Any]]]]) -> AckResult:
        result = AckResult()
        for partition, body in sorted(bodies.items()):
            _add_acked(result, self._to_owner(queue, partition, self._post(f"/v1/queues/{queue}/ack", body)))
        return result

    def ack_and_dequeue(
        self,
        queue: str,
        limit: int = 1,
        *,
        succeeded: Iterable[Ack | Lease] = (),
        failed: Iterable[Ack | Lease] = (),
    ) -> tuple[AckResult, list[Lease]]:
        """:meth:`ack`, then :meth:`dequeue`: one request to the owner of the acks' partition when they are of one
        (a worker's mostly are), which acks them and dequeues from its own partitions; otherwise the two calls."""
        bodies = _ack_bodies(queue, succeeded, failed)
        if len(bodies) != 1:
            return self._send_acks(queue, bodies), self.dequeue(queue, limit)
        ((partition, body),) = bodies.items()
        path = f"/v1/queues/{queue}/ack_and_dequeue"
        answer = self._to_owner(queue, partition, self._post(path, body | {"limit": limit}))
        result = AckResult()
        _add_acked(result, answer)
        return result, [wire.lease_from_json(obj) for obj in answer["jobs"]]

    def checkpoint(self, queue: str, items: Iterable[Checkpoint]) -> list[bool]:
        batch = list(items)
        by_partition: dict[int, list[int]] = defaultdict(list)
        for index, item in enumerate(batch):
            by_partition[Descriptor.parse(item.descriptor, queue_name(queue)).partition].append(index)
        applied: dict[int, bool] = {}
        for partition, indexes in sorted(by_partition.items()):
            body = {"items": [wire.checkpoint_to_json(batch[i]) for i in indexes]}
            answer = self._to_owner(queue, partition, self._post(f"/v1/queues/{queue}/checkpoint", body))
            applied |= dict(zip(indexes, answer["applied"], strict=True))
        return [applied[i] for i in range(len(batch))]

    def lookup(
        self, descriptors: Iterable[Descriptor | str], *, include_body: bool = False
    ) -> dict[Descriptor, JobInfo]:
        body = {"descriptors": [str(Descriptor.parse(d)) for d in descriptors], "include_body": include_body}
        answer = self._any("POST", "/v1/lookup", body)
        return {Descriptor.parse(text): wire.info_from_json(obj) for text, obj in answer["jobs"].items()}

    def count(
        self,
        queue: str,
        state: JobState | str,
        *,
        priority: int | None = None,
        future: bool | None = None,
        body_regex: str | None = None,
    ) -> int:
        query = _query(
            state=JobState.parse(state).name.lower(), priority=priority, future=future, body_regex=body_regex
        )
        return int(self._any("GET", f"/v1/queues/{queue_name(queue)}/count?{query}")["count"])

    def scan(
        self,
        queue: str,
        state: JobState | str,
        *,
        priority: int | None = None,
        future: bool | None = None,
        body_regex: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ScanPage:
        query = _query(
            state=JobState.parse(state).name.lower(),
            priority=priority,
            future=future,
            body_regex=body_regex,
            limit=limit,
            cursor=cursor,
        )
        answer = self._any("GET", f"/v1/queues/{queue_name(queue)}/scan?{query}")
        return ScanPage([wire.info_from_json(obj) for obj in answer["jobs"]], answer["cursor"])

    def retry_failed(
        self,
        queue: str,
        *,
        priority: int | None = None,
        attempts: int = 1,
        run_after: datetime | None = None,
        limit: int = 1000,
    ) -> int:
        body = {"priority": priority, "attempts": attempts, "run_after_ms": wire.ms(run_after), "limit": limit}
        return int(self._any("POST", f"/v1/queues/{queue_name(queue)}/retry_failed", body, admin=True)["retried"])

    def delete_jobs(
        self,
        queue: str,
        state: JobState | str,
        *,
        priority: int | None = None,
        body_regex: str | None = None,
        limit: int = 1000,
    ) -> int:
        body = {
            "state": JobState.parse(state).name.lower(),
            "priority": priority,
            "body_regex": body_regex,
            "limit": limit,
        }
        return int(self._any("POST", f"/v1/queues/{queue_name(queue)}/delete_jobs", body, admin=True)["deleted"])


class _Unavailable(errors.PacerError):
    """The broker answered 5xx: storage down or an internal error; worth retrying elsewhere or later."""


_BY_NAME: dict[str, type[errors.PacerError]] = {
    cls.__name__: cls
    for cls in (
        errors.InvalidArgument,
        errors.QueueNameInvalid,
        errors.PriorityNotSupported,
        errors.InvalidDescriptor,
    )
}


def _error(answer: Any, status: int) -> errors.PacerError:
    code = answer.get("error", "") if isinstance(answer, dict) else ""
    message = answer.get("message", str(answer)) if isinstance(answer, dict) else str(answer)
    if code in _BY_NAME:
        return _BY_NAME[code](message)
    if code == "not_owner":
        return errors.NotOwner(message, answer.get("owner"))
    simple: dict[str, type[errors.PacerError]] = {
        "fenced": errors.Fenced,
        "queue_not_found": errors.QueueNotFound,
        "unauthorized": errors.Unauthorized,
        "queue_exists": errors.QueueExists,
    }
    if code in simple:
        return simple[code](message)
    if status >= 500:
        return _Unavailable(f"{status} {code}: {message}")
    return errors.InvalidArgument(f"{status} {code}: {message}")


def _query(**params: Any) -> str:
    return urlencode({k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items() if v is not None})


def _ack_bodies(
    queue: str, succeeded: Iterable[Ack | Lease], failed: Iterable[Ack | Lease]
) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """The acks as request bodies by partition; every descriptor checked first."""
    groups: dict[int, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: {"succeeded": [], "failed": []})
    for kind, items in (("succeeded", succeeded), ("failed", failed)):
        for item in items:
            ack = Ack.of(item)
            Descriptor.parse(ack.descriptor, queue_name(queue))
            groups[ack.descriptor.partition][kind].append(wire.ack_to_json(ack))
    return groups


def _add_acked(result: AckResult, answer: Any) -> None:
    result.accepted.extend(Descriptor.parse(text) for text in answer["accepted"])
    result.rejected.update({Descriptor.parse(text): reason for text, reason in answer["rejected"].items()})
