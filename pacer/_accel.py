"""A dequeue's per-job loops: C from :mod:`pacer._speedups` when it was built, else :mod:`pacer._fallback`.

The C ``ack_groups`` takes the common call alone (lists of leases of the queue) and answers None to any
other, which the Python version then takes.

Set ``PACER_NO_SPEEDUPS=1`` to run the Python versions, for example to rule the C code out while debugging.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING

from pacer import _fallback
from pacer._fallback import AckGroup, lease_expiry
from pacer._models import Ack, Descriptor, Lease
from pacer.storage.base import AckItem, Reserved


def configure(speedups: ModuleType) -> ModuleType:
    """``pacer._speedups`` told the classes it makes and how a lease's expiry becomes a datetime; returned."""
    speedups.configure(Lease, Descriptor, Reserved, AckItem, AckGroup, lease_expiry)
    return speedups


if TYPE_CHECKING:
    from pacer._fallback import ack_groups, leases, unpack_jobs
else:
    try:
        if os.environ.get("PACER_NO_SPEEDUPS"):
            raise ImportError("PACER_NO_SPEEDUPS is set")
        from pacer import _speedups
        from pacer._speedups import leases, unpack_jobs

        configure(_speedups)

        def ack_groups(
            succeeded: Iterable[Ack | Lease], failed: Iterable[Ack | Lease], queue: str
        ) -> dict[int, AckGroup]:
            groups = _speedups.ack_groups(succeeded, failed, queue)
            return _fallback.ack_groups(succeeded, failed, queue) if groups is None else groups

    except ImportError:  # built without a C compiler
        from pacer._fallback import ack_groups, leases, unpack_jobs

SPEEDUPS = unpack_jobs.__module__ == "pacer._speedups"

__all__ = ["SPEEDUPS", "AckGroup", "ack_groups", "leases", "unpack_jobs"]
