"""Pure-Python versions of :mod:`pacer._speedups`, for builds without a C compiler."""

from __future__ import annotations

import binascii
import functools
import struct
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from pacer._models import Ack, Descriptor, Lease, from_us, made_descriptor, made_lease
from pacer.storage.base import AckItem, Reserved, claim_token

# A packed refill's job (pacer/storage/mysql.py): seven numbers as 16 hex digits each, then the body.
_PACKED_HEADER = struct.Struct(">qqqQqqq")
_HEADER_DIGITS = 2 * _PACKED_HEADER.size
_new_tuple = tuple.__new__


@functools.lru_cache(maxsize=64)
def lease_expiry(expires_us: int) -> datetime:
    """A lease's expiry as a datetime; the jobs of one grant share it, so it is made once."""
    moment = from_us(expires_us)
    assert moment is not None
    return moment


def leases(jobs: list[Reserved], expiries: list[int | None], epoch: int, queue: str, partition: int) -> list[Lease]:
    """The leases of the jobs a write leased (an expiry, not None). The jobs of one write share their expiry, and
    mostly their dispatch count: each distinct expiry and claim is made once."""
    out: list[Lease] = []
    claims: dict[int, str] = {}
    moment_us: int | None = None
    moment: datetime
    for job, expires_us in zip(jobs, expiries, strict=True):
        if expires_us is None:
            continue
        if expires_us != moment_us:
            moment_us, moment = expires_us, lease_expiry(expires_us)
        claim = claims.get(job.dispatches)
        if claim is None:
            claim = claims[job.dispatches] = claim_token(epoch, job)
        descriptor = made_descriptor(queue, partition, job.priority, job.local_id)
        out.append(made_lease(descriptor, job.body, claim, job.attempts_allowed, job.attempts_remaining, moment))
    return out


def unpack_jobs(packed: bytes) -> list[Reserved]:
    """The whole jobs of a packed refill (see ``MysqlStore._ready``), priority 1 first, then oldest first."""
    jobs: list[tuple[int, int, int, Reserved]] = []
    at, end = 0, len(packed)
    while at + _HEADER_DIGITS <= end:
        length, priority, run_after, local_id, allowed, remaining, dispatches = _PACKED_HEADER.unpack(
            binascii.unhexlify(packed[at : at + _HEADER_DIGITS])
        )
        at += _HEADER_DIGITS
        if at + length > end:
            break  # cut off by group_concat_max_len
        body = packed[at : at + length]
        at += length
        reserved = _new_tuple(Reserved, (local_id, priority, allowed, remaining, dispatches, body))  # Reserved(...)
        jobs.append((priority, run_after, local_id, reserved))
    jobs.sort()  # by priority, run_after, local_id: ids are unique, so the jobs themselves are never compared
    return [job for *_, job in jobs]


class AckGroup(NamedTuple):
    """A partition's acks: their descriptors as given, and the store's items, in the same order."""

    descriptors: list[Descriptor]
    items: list[AckItem]


def ack_groups(succeeded: Iterable[Ack | Lease], failed: Iterable[Ack | Lease], queue: str) -> dict[int, AckGroup]:
    """The acks of ``queue`` (a valid name) by partition, as the store's items; every descriptor checked first."""
    groups: dict[int, AckGroup] = {}
    for acks, ok in ((succeeded, True), (failed, False)):
        for ack in acks:
            descriptor = ack.descriptor
            if type(descriptor) is not Descriptor or descriptor.queue != queue:  # else parse() returns it as is
                descriptor = Descriptor.parse(descriptor, queue)
            group = groups.get(descriptor.partition)
            if group is None:
                group = groups[descriptor.partition] = AckGroup([], [])
            group.descriptors.append(ack.descriptor)
            group.items.append(_ack_item(ack, ok))
    return groups


def _ack_item(ack: Ack | Lease, succeeded: bool) -> AckItem:
    if isinstance(ack, Lease):  # the common case, a plain success or failure: no Ack made in between
        return _new_tuple(AckItem, (ack.descriptor.local_id, ack.claim, succeeded, "", 0))  # as AckItem(...), in C
    delay_us = int(ack.retry_delay.total_seconds() * 1_000_000)
    return AckItem(ack.descriptor.local_id, ack.claim, succeeded, ack.append_status, delay_us)
