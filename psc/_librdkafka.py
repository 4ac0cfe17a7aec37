"""Where PSC's C modules find librdkafka: they load it at run time, never link it.

The copy confluent-kafka ships (beside its package, in ``confluent_kafka.libs``) comes first, so one copy
serves the process; the system's is the fallback. A module that works on confluent-kafka's own clients
(``psc._failure_trap``) takes only the copy confluent-kafka uses.
"""

from __future__ import annotations

import ctypes.util
import importlib
import os
from pathlib import Path
from types import ModuleType

import confluent_kafka


def _bundled() -> list[str]:
    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    return sorted(str(p) for p in libs.glob("librdkafka*.so*"))


def _system() -> list[str]:
    found = ctypes.util.find_library("rdkafka")
    return [found] if found else []


def load_module(name: str, *, same_as_confluent: bool = False) -> tuple[ModuleType | None, str | None]:
    """The C module ``name`` with librdkafka loaded (its ``load(path)``), or None and why not.

    ``same_as_confluent``: only the copy confluent-kafka itself uses (its bundled one when it ships one)."""
    if os.environ.get("PSC_NO_SPEEDUPS"):
        return None, "PSC_NO_SPEEDUPS is set"
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # built without a C compiler
        return None, f"{name} is not built: {exc}"
    bundled = _bundled()
    paths = (bundled or _system()) if same_as_confluent else [*bundled, *_system()]
    problems = []
    for path in paths:
        try:
            module.load(path)
            return module, None
        except ImportError as exc:
            problems.append(str(exc))
    return None, "; ".join(problems) or "librdkafka not found"
