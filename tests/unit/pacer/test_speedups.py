"""A dequeue's per-job loops: the C version (``pacer._speedups``) and the Python one (``pacer._fallback``) make
equal leases, and the C one is in use wherever it was built."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from types import ModuleType

import pytest

import pacer._fallback as fallback
from pacer import Descriptor, Lease
from pacer._accel import SPEEDUPS
from pacer._fallback import lease_expiry
from pacer.storage.base import Reserved
from tests.unit.implementations import implementations

speedups, IMPLEMENTATIONS = implementations(fallback, "pacer._speedups")
MakeLeases = Callable[[list[Reserved], list[int | None], int, str, int], list[Lease]]
NOW = 1_700_000_000_000_000


def configured(module: ModuleType) -> ModuleType:
    """The module, the C one told the classes to make (as pacer._accel does where it is in use)."""
    if module is speedups:
        module.configure(Lease, Descriptor, Reserved, lease_expiry)
    return module


@pytest.fixture(params=IMPLEMENTATIONS)
def leases(request: pytest.FixtureRequest) -> MakeLeases:
    made: MakeLeases = configured(request.param).leases
    return made


def test_the_c_extension_is_built_where_a_compiler_is() -> None:
    assert SPEEDUPS == (speedups is not None and not os.environ.get("PACER_NO_SPEEDUPS"))  # noqa: SIM300


def test_leases_are_those_the_constructors_make(leases: MakeLeases) -> None:
    jobs = [
        Reserved(5, 1, 3, 3, 0, b"a"),
        Reserved(6, 2, 3, 2, 1, b"b"),  # not leased: no expiry
        Reserved(7, 1, 4, 1, 2, b""),
        Reserved(2**63 + 5, 3, 1000, 1000, 4_000_000_000, b"\x00'"),
    ]
    expiries = [NOW, None, NOW, NOW + 1]
    made = leases(jobs, expiries, 9, "emails", 3)
    expected = [
        Lease(Descriptor("emails", 3, job.priority, job.local_id), job.body, f"9.{job.dispatches + 1}",
              job.attempts_allowed, job.attempts_remaining, lease_expiry(expires))
        for job, expires in zip(jobs, expiries, strict=True) if expires is not None
    ]  # fmt: skip
    assert made == expected
    assert [hash(lease.descriptor) for lease in made] == [hash(lease.descriptor) for lease in expected]
    assert [lease.lease_expires_at.timestamp() for lease in made] == [NOW / 1e6, NOW / 1e6, (NOW + 1) / 1e6]
    with pytest.raises(dataclasses.FrozenInstanceError):
        made[0].claim = "forged"  # type: ignore[misc]
    assert leases([], [], 9, "emails", 3) == []


def test_leases_keep_no_reference_they_do_not_hand_out(leases: MakeLeases) -> None:
    queue, body = "refcounted", b"body" * 10
    jobs = [Reserved(i, 1, 2, 2, i % 2, body) for i in range(50)]
    before = sys.getrefcount(queue), sys.getrefcount(body)
    for _ in range(200):
        leases(jobs, [NOW + i % 3 for i in range(50)], 4, queue, 0)
    assert (sys.getrefcount(queue), sys.getrefcount(body)) == before


@pytest.mark.skipif(speedups is None, reason="the C extension was not built here")
def test_the_c_version_refuses_what_it_cannot_read() -> None:
    assert speedups is not None
    configured(speedups)
    with pytest.raises(TypeError, match="same length"):
        speedups.leases([Reserved(1, 1, 1, 1, 0, b"")], [], 1, "q", 0)
    with pytest.raises(TypeError, match="Reserved"):
        speedups.leases([("not", "a", "job")], [NOW], 1, "q", 0)
    with pytest.raises(TypeError, match="bytes"):
        speedups.unpack_jobs("text")
