"""Queue name validation: names become SQL table names, so they are checked on every call."""

from __future__ import annotations

import re

from pacer._errors import QueueNameInvalid

MAX_QUEUE_NAME = 48
_QUEUE_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")


def queue_name(name: object) -> str:
    """``name`` if it is a valid queue name, else :class:`QueueNameInvalid` naming the rule it broke.

    Lower case only, so a name means the same table under any ``lower_case_table_names``.
    """
    if not isinstance(name, str):
        raise QueueNameInvalid(f"queue name must be a string, got {type(name).__name__}")
    if len(name) > MAX_QUEUE_NAME:
        raise QueueNameInvalid(f"queue name {name[:60]!r} is {len(name)} characters; at most {MAX_QUEUE_NAME}")
    if not _QUEUE_NAME.fullmatch(name):
        raise QueueNameInvalid(
            f"queue name {name!r} is invalid: use a lower-case letter then lower-case letters, digits or '_'"
        )
    return name


def partition_table(queue: str, partition: int) -> str:
    """The table of one queue partition; built only from a validated name and an integer."""
    return f"pq_{queue_name(queue)}_p{int(partition):04d}"
