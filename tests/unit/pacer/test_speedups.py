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
from pacer import Ack, Descriptor, Lease
from pacer._accel import SPEEDUPS, configure
from pacer._fallback import lease_expiry
from pacer.storage.base import Reserved
from tests.unit.implementations import implementations

speedups, IMPLEMENTATIONS = implementations(fallback, "pacer._speedups")
MakeLeases = Callable[[list[Reserved], list[int | None], int, str, int], list[Lease]]
NOW = 1_700_000_000_000_000


def configured(module: ModuleType) -> ModuleType:
    """The module, the C one set up as pacer._accel sets it up where it is in use."""
    return configure(module) if module is speedups else module


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


def test_acks_are_grouped_by_partition_as_the_python_version_groups_them() -> None:
    from pacer._accel import ack_groups

    leases = [
        Lease(Descriptor("emails", p, 1, i), b"", f"3.{i}", 2, 2, lease_expiry(NOW)) for i, p in enumerate([2, 0, 2])
    ]
    expected = fallback.ack_groups(leases[:2], leases[2:], "emails")
    assert ack_groups(leases[:2], leases[2:], "emails") == expected
    assert expected == {
        2: fallback.AckGroup(
            [leases[0].descriptor, leases[2].descriptor], [(0, "3.0", True, "", 0), (2, "3.2", False, "", 0)]
        ),
        0: fallback.AckGroup([leases[1].descriptor], [(1, "3.1", True, "", 0)]),
    }
    assert [type(item).__name__ for group in expected.values() for item in group.items] == ["AckItem"] * 3


@pytest.mark.skipif(speedups is None, reason="the C extension was not built here")
def test_the_c_grouping_takes_only_lists_of_the_queues_leases() -> None:
    assert speedups is not None
    configured(speedups)
    lease = Lease(Descriptor("emails", 1, 1, 7), b"", "3.1", 2, 2, lease_expiry(NOW))
    made = speedups.ack_groups([lease], (), "emails")
    assert made == fallback.ack_groups([lease], (), "emails")
    assert [type(item) for item in made[1].items] == [type(fallback.ack_groups([lease], (), "emails")[1].items[0])]
    other = Lease(Descriptor("other", 1, 1, 7), b"", "3.1", 2, 2, lease_expiry(NOW))
    for succeeded in (iter([lease]), [other], [Ack(lease.descriptor, lease.claim)], [lease, "emails:q1:p1:7"]):
        assert speedups.ack_groups(succeeded, [], "emails") is None
    before = sys.getrefcount(lease.descriptor), sys.getrefcount(lease.claim)
    for _ in range(200):
        speedups.ack_groups([lease] * 5, [lease], "emails")
    assert (sys.getrefcount(lease.descriptor), sys.getrefcount(lease.claim)) == before
