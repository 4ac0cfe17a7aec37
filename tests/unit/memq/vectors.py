"""The reference's interop vectors, read from the shared directory beside the repository."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def interop_dir() -> Path:
    # CI clones the repository beside `shared/`; a worktree may sit deeper, so look in every ancestor.
    for base in (REPO, *REPO.parents):
        candidate = base / "shared" / "interop" / "memq"
        if candidate.is_dir():
            return candidate
    pytest.fail(f"interop vectors not found: no shared/interop/memq beside {REPO} or any of its ancestors")


def vector(name: str) -> bytes:
    return base64.b64decode((interop_dir() / name).read_text())
