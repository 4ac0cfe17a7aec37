"""The HTTP API's JSON forms of Pacer's values, shared by brokers and the client.

Bodies travel as base64, times as milliseconds since the epoch. Parsing checks every field and names the
one that is wrong.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pacer._errors import InvalidArgument
from pacer._models import Ack, Checkpoint, Descriptor, Job, JobInfo, JobState, Lease, from_us

T = TypeVar("T")
_MISSING: Any = object()


def field(obj: Mapping[str, Any], name: str, kind: type[T] | tuple[type, ...], default: Any = _MISSING) -> T:
    """``obj[name]`` checked to be ``kind``; a missing optional field gives ``default``."""
    if not isinstance(obj, Mapping):
        raise InvalidArgument(f"expected a JSON object, got {type(obj).__name__}")
    if name not in obj or obj[name] is None:
        if default is _MISSING:
            raise InvalidArgument(f"field {name!r} is required")
        return default  # type: ignore[no-any-return]
    value = obj[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise InvalidArgument(f"field {name!r} must be {' or '.join(k.__name__ for k in kinds)}, got a boolean")
    if not isinstance(value, kinds):
        raise InvalidArgument(f"field {name!r} must be {' or '.join(k.__name__ for k in kinds)}, got {value!r:.60}")
    return value  # type: ignore[return-value]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str, name: str = "body") -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"field {name!r} must be base64") from None


def ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def from_ms(value: int | None) -> datetime | None:
    return None if value is None else from_us(int(value) * 1000)


def job_to_json(job: Job) -> dict[str, Any]:
    out: dict[str, Any] = {"body": b64(job.body), "priority": job.priority, "attempts": job.attempts}
    if job.run_after is not None:
        out["run_after_ms"] = ms(job.run_after)
    if job.delay is not None:
        out["delay_ms"] = int(job.delay.total_seconds() * 1000)
    if job.custom_status:
        out["custom_status"] = job.custom_status
    if job.key is not None:
        out["key"] = job.key
    return out


def job_from_json(obj: Mapping[str, Any]) -> Job:
    delay = field(obj, "delay_ms", int, None)
    return Job(
        unb64(field(obj, "body", str)),
        priority=field(obj, "priority", int, 1),
        run_after=from_ms(field(obj, "run_after_ms", int, None)),
        delay=None if delay is None else timedelta(milliseconds=delay),
        attempts=field(obj, "attempts", int, 2),
        custom_status=field(obj, "custom_status", str, ""),
        key=field(obj, "key", str, None),
    )


def lease_to_json(lease: Lease) -> dict[str, Any]:
    return {
        "descriptor": str(lease.descriptor),
        "body": b64(lease.body),
        "claim": lease.claim,
        "attempts_allowed": lease.attempts_allowed,
        "attempts_remaining": lease.attempts_remaining,
        "lease_expires_at_ms": ms(lease.lease_expires_at),
    }


def lease_from_json(obj: Mapping[str, Any]) -> Lease:
    expires = from_ms(field(obj, "lease_expires_at_ms", int))
    assert expires is not None
    return Lease(
        Descriptor.parse(field(obj, "descriptor", str)),
        unb64(field(obj, "body", str)),
        field(obj, "claim", str),
        field(obj, "attempts_allowed", int),
        field(obj, "attempts_remaining", int),
        expires,
    )


def ack_to_json(ack: Ack) -> dict[str, Any]:
    return {
        "descriptor": str(ack.descriptor),
        "claim": ack.claim,
        "append_status": ack.append_status,
        "retry_delay_ms": int(ack.retry_delay.total_seconds() * 1000),
    }


def ack_from_json(obj: Mapping[str, Any], queue: str) -> Ack:
    delay = field(obj, "retry_delay_ms", int, 0)
    if delay < 0:
        raise InvalidArgument("field 'retry_delay_ms' must be >= 0")
    return Ack(
        Descriptor.parse(field(obj, "descriptor", str), queue),
        field(obj, "claim", str),
        field(obj, "append_status", str, ""),
        timedelta(milliseconds=delay),
    )


def checkpoint_to_json(item: Checkpoint) -> dict[str, Any]:
    out: dict[str, Any] = {"descriptor": str(item.descriptor), "claim": item.claim}
    if item.extend_lease is not None:
        out["extend_lease_ms"] = int(item.extend_lease.total_seconds() * 1000)
    if item.new_body is not None:
        out["new_body"] = b64(item.new_body)
    if item.move_to_pending:
        out["move_to_pending"] = True
    if item.run_after is not None:
        out["run_after_ms"] = ms(item.run_after)
    if item.attempts_allowed is not None:
        out["attempts_allowed"] = item.attempts_allowed
    if item.prepend_status is not None:
        out["prepend_status"] = item.prepend_status
    return out


def checkpoint_from_json(obj: Mapping[str, Any], queue: str) -> Checkpoint:
    extend = field(obj, "extend_lease_ms", int, None)
    if extend is not None and extend <= 0:
        raise InvalidArgument("field 'extend_lease_ms' must be > 0")
    body = field(obj, "new_body", str, None)
    return Checkpoint(
        Descriptor.parse(field(obj, "descriptor", str), queue),
        field(obj, "claim", str),
        extend_lease=None if extend is None else timedelta(milliseconds=extend),
        new_body=None if body is None else unb64(body, "new_body"),
        move_to_pending=field(obj, "move_to_pending", bool, False),
        run_after=from_ms(field(obj, "run_after_ms", int, None)),
        attempts_allowed=field(obj, "attempts_allowed", int, None),
        prepend_status=field(obj, "prepend_status", str, None),
    )


def info_to_json(info: JobInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "descriptor": str(info.descriptor),
        "state": info.state.name.lower(),
        "attempts_allowed": info.attempts_allowed,
        "attempts_remaining": info.attempts_remaining,
        "custom_status": info.custom_status,
        "created_at_ms": ms(info.created_at),
        "run_after_ms": ms(info.run_after),
        "updated_at_ms": ms(info.updated_at),
        "finished_at_ms": ms(info.finished_at),
        "claim": info.claim,
    }
    if info.body is not None:
        out["body"] = b64(info.body)
    return out


def info_from_json(obj: Mapping[str, Any]) -> JobInfo:
    body = field(obj, "body", str, None)
    created, run_after, updated = (
        from_ms(field(obj, f"{n}_ms", int)) for n in ("created_at", "run_after", "updated_at")
    )
    assert created is not None and run_after is not None and updated is not None
    return JobInfo(
        Descriptor.parse(field(obj, "descriptor", str)),
        JobState.parse(field(obj, "state", str)),
        field(obj, "attempts_allowed", int),
        field(obj, "attempts_remaining", int),
        field(obj, "custom_status", str, ""),
        created,
        run_after,
        updated,
        from_ms(field(obj, "finished_at_ms", int, None)),
        field(obj, "claim", str, None),
        None if body is None else unb64(body),
    )
