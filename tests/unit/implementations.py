"""Both implementations of a package's hot paths, for tests that run each case against the two."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest


def implementations(fallback: ModuleType, extension: str) -> tuple[ModuleType | None, list[Any]]:
    """The C extension named ``extension`` (None where it was not built) and the pytest params of every
    implementation: the Python ``fallback`` always, the extension where it was built."""
    try:
        speedups: ModuleType | None = importlib.import_module(extension)
    except ImportError:  # pragma: no cover - built without a compiler
        speedups = None
    params = [pytest.param(fallback, id="python")]
    if speedups is not None:
        params.append(pytest.param(speedups, id="c"))
    return speedups, params
