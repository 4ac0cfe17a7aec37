"""A dequeue's per-job loops: C from :mod:`pacer._speedups` when it was built, else :mod:`pacer._fallback`.

Set ``PACER_NO_SPEEDUPS=1`` to run the Python versions, for example to rule the C code out while debugging.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pacer._fallback import lease_expiry
from pacer._models import Descriptor, Lease
from pacer.storage.base import Reserved

if TYPE_CHECKING:
    from pacer._fallback import leases, unpack_jobs
else:
    try:
        if os.environ.get("PACER_NO_SPEEDUPS"):
            raise ImportError("PACER_NO_SPEEDUPS is set")
        from pacer._speedups import configure, leases, unpack_jobs

        configure(Lease, Descriptor, Reserved, lease_expiry)
    except ImportError:  # built without a C compiler
        from pacer._fallback import leases, unpack_jobs

SPEEDUPS = unpack_jobs.__module__ == "pacer._speedups"

__all__ = ["SPEEDUPS", "leases", "unpack_jobs"]
