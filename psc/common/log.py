"""Logging that follows the standard library convention: quiet by default, structlog on request.

Every logger of the toolkit is a standard ``logging`` logger named after its component (``psc.producer``,
``psc.librdkafka``...). :func:`get_logger` hands out structlog bound loggers that write to them, so
components log ``event, key=value`` pairs, and the application decides where records go, as with any
library: nothing is printed until it configures logging. ``psc`` carries a ``NullHandler`` and no other
handler, and nothing is ever written to stdout.

:func:`configure_logging` is the opt-in for applications and the toolkit's own services: one stderr handler
on the root logger that renders every record, the toolkit's and the application's, through structlog as
JSON lines or console lines.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Hashable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

LogFormat = Literal["json", "console", "auto"]

logging.getLogger("psc").addHandler(logging.NullHandler())

# Attributes every LogRecord has: fields of these names are renamed rather than rejected by ``extra``.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_EVENT = "toolkit_event"  # the bare event of a record written through get_logger, for structured renderers
_RESERVED_FIELDS = frozenset({"exc_info", "stack_info", "stacklevel"})


def _to_record(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog's last step: the event as a stdlib record, readable as text and with its fields as attributes."""
    event = str(event_dict.pop("event", ""))
    kwargs: dict[str, Any] = {key: event_dict.pop(key) for key in _RESERVED_FIELDS & event_dict.keys()}
    shown = " ".join(f"{key}={value}" for key, value in event_dict.items() if key != "component")
    extra = {(f"{key}_" if key in _RECORD_ATTRS else key): value for key, value in event_dict.items()}
    extra[_EVENT] = event
    return (f"{event} {shown}" if shown else event,), {"extra": extra, **kwargs}


_PROCESSORS: list[Any] = [structlog.stdlib.filter_by_level, _to_record]


def get_logger(name: str, **initial: Any) -> Any:
    """A structlog logger writing to the standard library logger ``name``, with ``component=name`` bound.

    It needs no structlog configuration: its records go wherever the application sends ``logging``'s.
    """
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=_PROCESSORS,
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        cache_logger_on_first_use=True,
        component=name,
        **initial,
    )


def _record_fields(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """For structlog's renderers: the bare event and the fields of a standard record."""
    record: logging.LogRecord | None = event_dict.get("_record")
    if record is None:
        return event_dict
    fields = {key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRS}
    event = fields.pop(_EVENT, None)
    if event is not None:
        event_dict["event"] = event
    event_dict.update(fields)
    return event_dict


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now: it may be replaced (daemonising, test capture)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


_handler: logging.Handler | None = None


def configure_logging(level: str | int = "INFO", fmt: LogFormat = "auto") -> None:
    """Send every log record at ``level`` and above to stderr, rendered by structlog; idempotent.

    ``auto`` picks console output when stderr is a terminal and JSON lines otherwise. The ``TOOLKIT_LOG_FORMAT``
    environment variable overrides ``fmt`` and ``TOOLKIT_LOG_LEVEL`` overrides ``level``. Records of the
    application's own ``logging`` and structlog loggers are rendered the same way.
    """
    global _handler
    fmt = os.environ.get("TOOLKIT_LOG_FORMAT", fmt)  # type: ignore[assignment]
    level = os.environ.get("TOOLKIT_LOG_LEVEL", level)
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    numeric_level = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}; expected DEBUG, INFO, WARNING, ERROR or CRITICAL")

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(default=str)
        ending: list[Any] = [structlog.processors.format_exc_info, renderer]
    else:
        ending = [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _record_fields],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *ending],
        )
    )
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    _handler = handler


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
