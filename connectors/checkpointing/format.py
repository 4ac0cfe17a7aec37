"""The checkpoint file format: versioned JSON with a SHA-256 of its canonical body.

A checkpoint holds one section per operator, keyed by the operator's name (not its class), so a job that
swaps its Kafka source for a PSC source under the same name finds the old state. Each section carries its
own ``kind`` and ``version``; the operators decide how to read them (see ``state.py``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import CheckpointCorruptError

FORMAT = "connectors.checkpoint"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """One consistent snapshot of a job: its operators' sections by operator name."""

    job: str
    checkpoint_id: int
    incarnation: str  # the writing process's random id: two processes never write the same file name
    created_ms: int
    operators: dict[str, dict[str, Any]] = field(default_factory=dict)


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def encode(checkpoint: Checkpoint) -> bytes:
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "job": checkpoint.job,
        "checkpoint_id": checkpoint.checkpoint_id,
        "incarnation": checkpoint.incarnation,
        "created_ms": checkpoint.created_ms,
        "operators": checkpoint.operators,
    }
    digest = hashlib.sha256(_canonical(body)).hexdigest()
    return _canonical({**body, "sha256": digest})


def decode(data: bytes, name: str, job: str) -> Checkpoint:
    """Parse and verify one checkpoint file; every defect raises ``CheckpointCorruptError`` naming ``name``."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointCorruptError(name, f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise CheckpointCorruptError(name, "not a JSON object")
    digest = doc.pop("sha256", None)
    if not isinstance(digest, str):
        raise CheckpointCorruptError(name, "no sha256 field")
    if hashlib.sha256(_canonical(doc)).hexdigest() != digest:
        raise CheckpointCorruptError(name, "sha256 does not match the content")
    if doc.get("format") != FORMAT:
        raise CheckpointCorruptError(name, f"format is {doc.get('format')!r}, expected {FORMAT!r}")
    if doc.get("format_version") != FORMAT_VERSION:
        raise CheckpointCorruptError(
            name, f"format_version {doc.get('format_version')!r} is not supported (this build reads {FORMAT_VERSION})"
        )
    if doc.get("job") != job:
        raise CheckpointCorruptError(name, f"written by job {doc.get('job')!r}, not {job!r}")
    checkpoint_id, created_ms, operators = doc.get("checkpoint_id"), doc.get("created_ms"), doc.get("operators")
    incarnation = doc.get("incarnation")
    if not (isinstance(checkpoint_id, int) and isinstance(created_ms, int) and isinstance(incarnation, str)):
        raise CheckpointCorruptError(name, "checkpoint_id, incarnation or created_ms missing or mistyped")
    if not isinstance(operators, dict) or not all(isinstance(v, dict) for v in operators.values()):
        raise CheckpointCorruptError(name, "operators is not an object of objects")
    return Checkpoint(job, checkpoint_id, incarnation, created_ms, operators)
