"""Pacer's exceptions: one base class, with bad input apart from conditions of the cluster."""

from __future__ import annotations


class PacerError(Exception):
    """Base class of every error Pacer raises."""


class InvalidArgument(PacerError, ValueError):
    """A request Pacer refuses as malformed: it names what was wrong."""


class QueueNameInvalid(InvalidArgument):
    """A queue name outside ``^[a-z][a-z0-9_]{0,47}$`` (names become table names)."""


class PriorityNotSupported(InvalidArgument):
    """A priority outside 1..3."""


class InvalidDescriptor(InvalidArgument):
    """A job descriptor that does not parse, or that names another queue than the call."""


class QueueNotFound(PacerError, LookupError):
    """The queue does not exist."""


class QueueExists(PacerError):
    """``create_queue`` with settings that differ from the existing queue's."""


class Fenced(PacerError):
    """This owner lost its partition: another owner holds a higher epoch."""


class NotOwner(PacerError):
    """A broker was asked for a partition it does not own; ``owner`` is the owner's address, if known."""

    def __init__(self, message: str, owner: str | None = None) -> None:
        super().__init__(message)
        self.owner = owner


class Unauthorized(PacerError):
    """An admin operation without the admin token."""
