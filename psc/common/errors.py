"""The exception base every package derives its own hierarchy from.

Each package defines one root (``PscError``, ``MemqError``, ...) that subclasses :class:`ToolkitError`,
and specific errors below it, so callers can catch a whole package or one failure precisely.
"""

from __future__ import annotations

from typing import Any


class ToolkitError(Exception):
    """Root of every error raised by the toolkit.

    ``context`` carries the structured facts of the failure (the offending input, the key, the endpoint)
    so that logs and error messages can name exactly what was wrong.
    """

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        return self.message
