"""Every package of the distribution imports cleanly, says what it is, and ships its type marker."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

PACKAGES = ("psc", "memq", "singer", "pacer", "connectors")


@pytest.mark.parametrize("name", PACKAGES)
def test_package_imports_with_a_docstring_and_py_typed(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__ and len(module.__doc__.strip()) > 40, f"{name} needs a docstring saying what it is"
    assert module.__file__ is not None
    assert (Path(module.__file__).parent / "py.typed").exists(), f"{name} is missing py.typed"


def test_psc_imports_none_of_the_packages_built_on_it() -> None:
    root = Path(importlib.import_module("psc").__file__ or "").parent
    for source in root.rglob("*.py"):
        text = source.read_text()
        for upper in PACKAGES[1:]:
            assert f"import {upper}" not in text and f"from {upper}" not in text, f"{source} imports {upper}"
