"""structlog configuration: JSON lines for services, coloured console output for humans."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

LogFormat = Literal["json", "console", "auto"]


def configure_logging(level: str | int = "INFO", fmt: LogFormat = "auto") -> None:
    """Configure structlog and the standard library logging once for the process.

    ``auto`` picks console output when stderr is a terminal and JSON otherwise; the ``TOOLKIT_LOG_FORMAT``
    environment variable overrides it, and ``TOOLKIT_LOG_LEVEL`` overrides ``level``.
    """
    fmt = os.environ.get("TOOLKIT_LOG_FORMAT", fmt)  # type: ignore[assignment]
    level = os.environ.get("TOOLKIT_LOG_LEVEL", level)
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    numeric_level = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}; expected DEBUG, INFO, WARNING, ERROR or CRITICAL")

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if fmt == "json":
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        # Look sys.stderr up per logger, not once: it may be replaced (daemonising, test capture).
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=numeric_level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")


def get_logger(name: str, **initial: Any) -> Any:
    """A structlog logger named after its component.

    The logger is a lazy proxy, so loggers created at import time still follow a later ``configure_logging``.
    """
    return structlog.get_logger(name, component=name, **initial)


@dataclass
class _Held:
    until: float
    count: int = 0
    level: str = "warning"
    event: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


class LogThrottle:
    """Writes each kind of event at most once per ``interval_s``.

    A failure that repeats per record (a broker down, every queued record timing out) or per reconnect
    would otherwise write a line each time. The first line of a kind is written at once. Repeats within
    the interval are counted, and the next line of that kind carries ``repeated=N``. ``flush`` writes what
    is still held back, e.g. when the client closes. ``key`` says which events are of one kind.
    """

    def __init__(self, logger: Any, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        self._held: dict[Hashable, _Held] = {}

    def log(self, level: str, key: Hashable, event: str, **fields: Any) -> None:
        now = self._clock()
        held = self._held.get(key)
        if held is not None and now < held.until:
            held.count += 1
            held.level, held.event, held.fields = level, event, fields
            return
        self._held[key] = _Held(until=now + self._interval_s)
        if held is not None and held.count:
            fields["repeated"] = held.count
        getattr(self._logger, level)(event, **fields)

    def flush(self) -> None:
        for held in self._held.values():
            if held.count:
                getattr(self._logger, held.level)(held.event, **held.fields, repeated=held.count)
        self._held.clear()
