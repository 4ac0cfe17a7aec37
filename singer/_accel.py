"""The text reader's line splitting: C from :mod:`singer._speedups` when it was built, else :mod:`singer._fallback`.

Set ``SINGER_NO_SPEEDUPS=1`` to run the Python version, for example to rule the C code out while debugging.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from singer._speedups import split
else:
    try:
        if os.environ.get("SINGER_NO_SPEEDUPS"):
            raise ImportError("SINGER_NO_SPEEDUPS is set")
        from singer._speedups import split
    except ImportError:  # built without a C compiler
        from singer._fallback import split

SPEEDUPS = split.__module__ == "singer._speedups"

__all__ = ["SPEEDUPS", "split"]
