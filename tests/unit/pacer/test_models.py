"""Descriptors and leases made from stored values are the same values their constructors make."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from pacer import Descriptor, Lease
from pacer._models import made_descriptor, made_lease


def test_a_made_descriptor_is_the_constructed_one() -> None:
    made, built = made_descriptor("jobs", 3, 1, 42), Descriptor("jobs", 3, 1, 42)
    assert made == built and hash(made) == hash(built) and str(made) == "jobs:q3:p1:42"
    assert {made: "x"}[built] == "x"  # usable as the same key (an ack's rejected map)
    assert made < Descriptor("jobs", 3, 1, 43)
    assert Descriptor.parse(str(made), "jobs") == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.local_id = 7  # type: ignore[misc]


def test_a_made_lease_is_the_constructed_one() -> None:
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    descriptor = made_descriptor("jobs", 0, 2, 9)
    made = made_lease(descriptor, b"body", "5.1", 3, 2, expires)
    assert made == Lease(Descriptor("jobs", 0, 2, 9), b"body", "5.1", 3, 2, expires)
    assert dataclasses.asdict(made)["lease_expires_at"] == expires
    assert dataclasses.replace(made, claim="5.2").claim == "5.2"
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.claim = "x"  # type: ignore[misc]
