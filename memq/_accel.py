"""The producer's per-record hot paths: C from :mod:`memq._speedups` when it was built, else :mod:`memq._fallback`.

Set ``MEMQ_NO_SPEEDUPS=1`` to run the Python versions, for example to rule the C code out while debugging.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memq._speedups import OpenBase, ProducerBase, encode_plain
else:
    try:
        if os.environ.get("MEMQ_NO_SPEEDUPS"):
            raise ImportError("MEMQ_NO_SPEEDUPS is set")
        from memq._speedups import OpenBase, ProducerBase, encode_plain
    except ImportError:  # built without a C compiler
        from memq._fallback import OpenBase, ProducerBase, encode_plain

SPEEDUPS = ProducerBase.__module__ == "memq._speedups"

__all__ = ["SPEEDUPS", "OpenBase", "ProducerBase", "encode_plain"]
