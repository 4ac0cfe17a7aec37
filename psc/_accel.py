"""The per-record hot paths: C from :mod:`psc._speedups` when it was built, else :mod:`psc._fallback`.

Set ``PSC_NO_SPEEDUPS=1`` to run the Python versions, for example to rule the C code out while debugging.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from psc._speedups import (
        DeliveryTally,
        FastPoll,
        FastProduce,
        MemberBase,
        Message,
        RouteBase,
        wrap_batch,
    )
else:
    try:
        if os.environ.get("PSC_NO_SPEEDUPS"):
            raise ImportError("PSC_NO_SPEEDUPS is set")
        from psc._speedups import DeliveryTally, FastPoll, FastProduce, MemberBase, Message, RouteBase, wrap_batch
    except ImportError:  # built without a C compiler
        from psc._fallback import DeliveryTally, FastPoll, FastProduce, MemberBase, Message, RouteBase, wrap_batch

SPEEDUPS = FastProduce.__module__ == "psc._speedups"

__all__ = ["SPEEDUPS", "DeliveryTally", "FastPoll", "FastProduce", "MemberBase", "Message", "RouteBase", "wrap_batch"]
