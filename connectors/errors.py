"""Errors of the connectors package: each names what was wrong so a refused job says why."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class of every error raised by connectors."""


class JobConfigError(ConnectorError):
    """A job, source, sink or checkpoint store was configured wrongly; raised before anything runs."""


class CheckpointCorruptError(ConnectorError):
    """A checkpoint file cannot be used: unreadable, wrong checksum, unknown format or another job's."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"checkpoint {name!r} is corrupt: {reason}")
        self.name = name
        self.reason = reason


class NoValidCheckpointError(ConnectorError):
    """Checkpoints exist but none is valid: the job refuses to start rather than start from scratch."""


class StateMigrationError(ConnectorError):
    """Operator state in a checkpoint cannot be restored by this connector (version, layout, missing URI)."""


class UserFunctionError(ConnectorError):
    """A user function raised on a record and the job is configured to stop on such records."""


class FencedError(ConnectorError):
    """Another instance took over this instance's transactional id: this one is a zombie and must stop,
    not restart (a restart would fence the new owner in turn)."""
