"""Pacer's API contract on the embedded SQLite store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacer import Pacer
from tests.pacer_contract import *  # noqa: F403


@pytest.fixture
def pacer(tmp_path: Path) -> Iterator[Pacer]:
    service = Pacer.open(f"sqlite:///{tmp_path}/jobs.db")
    yield service
    service.close()


@pytest.fixture
def queue(pacer: Pacer) -> str:
    name = f"q_{uuid.uuid4().hex[:8]}"
    pacer.create_queue(name)
    return name
