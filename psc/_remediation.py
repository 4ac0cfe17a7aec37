"""Automatic remediation of known backend errors.

A catalogue kept as data (``remediation_catalogue.json``) maps a backend error code, optionally narrowed by
a message pattern, to an action. :class:`Remediator` runs client operations and applies the action when
one raises: swallow, retry with bounded exponential backoff and full jitter, reset the backend client,
retry then reset, or throw a typed PSC exception. Every action is counted and logged.
"""

from __future__ import annotations

import json
import random as _random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Self, TypeVar

from confluent_kafka import KafkaError

import psc.errors as psc_errors
from psc._metrics import ClientMetrics, client_metrics
from psc.common import LogThrottle, get_logger
from psc.errors import BackendError, ConfigError, PscError, RemediationExhaustedError, TransactionError

T = TypeVar("T")

_log = get_logger("psc.remediation")

CLIENT_TYPES = frozenset({"producer", "transactional_producer", "consumer"})
_FATAL_NAME = "_FATAL"
_QUEUE_FULL_CODE = -184  # librdkafka RD_KAFKA_RESP_ERR__QUEUE_FULL


class Action(StrEnum):
    NONE = "NONE"
    RETRY = "RETRY"
    RESET = "RESET"
    RETRY_THEN_RESET = "RETRY_THEN_RESET"
    THROW = "THROW"


@dataclass(frozen=True, slots=True)
class Remedy:
    """What to do about one error. ``on_exhausted`` applies when retries (and the one reset) run out."""

    action: Action
    on_exhausted: Action = Action.THROW
    reason: str = ""
    exception_name: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A backend error as plain data, so backends without confluent-kafka (MemQ) can be remediated too."""

    code: int | None
    name: str
    message: str = ""
    fatal: bool = False
    retriable: bool = False
    txn_requires_abort: bool = False
    native: object = field(default=None, compare=False)

    @classmethod
    def of(cls, error: Any) -> ErrorInfo:
        """From an ``ErrorInfo``, a :class:`BackendError`, or anything shaped like ``KafkaError``."""
        if isinstance(error, ErrorInfo):
            return error
        if isinstance(error, BackendError):
            return cls(error.code, error.name, error.message, error.fatal, error.retriable, native=error)
        code = error.code()
        return cls(
            code=code if isinstance(code, int) else None,
            name=str(error.name()),
            message=str(error.str()),
            fatal=_flag(error, "fatal"),
            retriable=_flag(error, "retriable"),
            txn_requires_abort=_flag(error, "txn_requires_abort"),
            native=error,
        )


def _flag(error: Any, method: str) -> bool:
    func = getattr(error, method, None)
    return bool(func()) if callable(func) else False


def is_fatal(info: ErrorInfo) -> bool:
    """True when the error leaves the client that reported it unusable (flagged fatal, or ``_FATAL``)."""
    return info.fatal or info.name == _FATAL_NAME


def backend_error(exc: BaseException) -> ErrorInfo | None:
    """The backend error an exception carries (``KafkaException`` keeps its ``KafkaError`` in ``args[0]``)."""
    if isinstance(exc, BackendError):
        return ErrorInfo.of(exc)
    if isinstance(exc, PscError):
        return None  # PSC's own errors (bad input, closed client) carry a KafkaError but are no backend's
    if isinstance(exc, BufferError):  # confluent-kafka's produce() signals a full local queue this way
        return ErrorInfo(_QUEUE_FULL_CODE, "_QUEUE_FULL", str(exc), retriable=True, native=exc)
    args = exc.args
    if args and callable(getattr(args[0], "code", None)) and callable(getattr(args[0], "name", None)):
        return ErrorInfo.of(args[0])
    return None


# --- Catalogue -------------------------------------------------------------------------------------


class CatalogueError(ConfigError):
    """The remediation catalogue is invalid; every problem is listed, each naming its entry index."""


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    code: int | None
    name: str
    pattern: re.Pattern[str] | None
    applies_to: frozenset[str]
    remedy: Remedy


class Catalogue:
    """Ordered entries; for one code, entries with a message pattern are tried before those without."""

    def __init__(self, entries: Sequence[CatalogueEntry]) -> None:
        self.entries = tuple(entries)
        self._by_code: dict[int | str, list[CatalogueEntry]] = {}
        for entry in sorted(self.entries, key=lambda e: e.pattern is None):  # stable: file order kept
            self._by_code.setdefault(entry.name, []).append(entry)
            if entry.code is not None:
                self._by_code.setdefault(entry.code, []).append(entry)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Self:
        """Load and validate a catalogue file; by default the one shipped with PSC."""
        if path is None:
            text = resources.files("psc").joinpath("remediation_catalogue.json").read_text("utf-8")
        else:
            text = Path(path).read_text("utf-8")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CatalogueError(f"remediation catalogue {path or 'built-in'} is not JSON: {exc}") from exc
        entries = data.get("entries") if isinstance(data, dict) else data
        return cls.from_entries(entries)

    @classmethod
    def from_entries(cls, raw: Any) -> Self:
        if not isinstance(raw, list):
            raise CatalogueError("remediation catalogue must hold a list of entries")
        problems: list[str] = []
        entries = [entry for i, item in enumerate(raw) if (entry := _parse_entry(i, item, problems))]
        if problems:
            raise CatalogueError(problems)
        return cls(entries)

    def lookup(self, error: Any, client_type: str) -> Remedy:
        """The remedy for an error (``KafkaError``-like or :class:`ErrorInfo`) raised by ``client_type``."""
        info = ErrorInfo.of(error)
        remedy = self._match(info, client_type)
        if info.fatal and (remedy is None or remedy.action not in (Action.RESET, Action.THROW)):
            # Retrying on a client that hit a fatal error is pointless: use the catalogue's _FATAL remedy.
            remedy = self._match(ErrorInfo(None, _FATAL_NAME, info.message), client_type) or remedy
        if remedy is not None:
            return remedy
        if info.retriable:
            return Remedy(Action.RETRY, reason="not in the catalogue; the backend marks it retriable")
        return Remedy(Action.THROW, reason="not in the catalogue")

    def _match(self, info: ErrorInfo, client_type: str) -> Remedy | None:
        candidates = self._by_code.get(info.code) if info.code is not None else None
        for entry in candidates or self._by_code.get(info.name) or ():
            if client_type not in entry.applies_to:
                continue
            if entry.pattern is None or entry.pattern.search(info.message):
                return entry.remedy
        return None


_ENTRY_FIELDS = frozenset({"code", "message_pattern", "action", "on_exhausted", "applies_to", "exception", "reason"})


def _parse_entry(index: int, item: Any, problems: list[str]) -> CatalogueEntry | None:
    start = len(problems)

    def bad(message: str) -> None:
        problems.append(f"entry {index}: {message}")

    if not isinstance(item, dict):
        bad(f"expected an object, got {type(item).__name__}")
        return None
    unknown = set(item) - {
        "code",
        "message_pattern",
        "action",
        "on_exhausted",
        "applies_to",
        "exception",
        "reason",
    }
    if unknown:
        bad(f"unknown field(s) {', '.join(sorted(unknown))}")
    code, name = _parse_code(item.get("code"), bad)
    action = _parse_action(item.get("action"), "action", bad)
    on_exhausted = _parse_action(item.get("on_exhausted", "THROW"), "on_exhausted", bad)
    pattern = _parse_pattern(item.get("message_pattern"), bad)
    applies_to = _parse_applies_to(item.get("applies_to", sorted(CLIENT_TYPES)), bad)
    exception = _parse_exception(item.get("exception"), bad)
    if len(problems) > start or action is None or on_exhausted is None:
        return None
    remedy = Remedy(action, on_exhausted, str(item.get("reason", "")), exception)
    return CatalogueEntry(code, name, pattern, applies_to, remedy)


def _parse_code(raw: Any, bad: Callable[[str], None]) -> tuple[int | None, str]:
    """Numeric code and name; names are checked against confluent-kafka's ``KafkaError`` constants."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw, str(KafkaError(raw).name())
    if not isinstance(raw, str) or not raw:
        bad(f"code must be an error name or a number, got {raw!r}")
        return None, ""
    code = getattr(KafkaError, raw, None)
    if not isinstance(code, int):
        bad(f"unknown error code name {raw!r} (not a confluent_kafka.KafkaError constant)")
        return None, raw
    return code, raw


def _parse_action(raw: Any, key: str, bad: Callable[[str], None]) -> Action | None:
    try:
        return Action(raw)
    except ValueError:
        bad(f"{key} {raw!r} is not one of {', '.join(a.value for a in Action)}")
        return None


def _parse_pattern(raw: Any, bad: Callable[[str], None]) -> re.Pattern[str] | None:
    if raw is None:
        return None
    try:
        return re.compile(raw)
    except (re.error, TypeError) as exc:
        bad(f"message_pattern {raw!r} is not a valid regular expression: {exc}")
        return None


def _parse_applies_to(raw: Any, bad: Callable[[str], None]) -> frozenset[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(t, str) for t in raw):
        bad(f"applies_to must be a non-empty list of client types, got {raw!r}")
        return frozenset()
    unknown = set(raw) - CLIENT_TYPES
    if unknown:
        bad(f"applies_to has unknown client type(s) {sorted(unknown)}; expected {sorted(CLIENT_TYPES)}")
    return frozenset(raw)


def _parse_exception(raw: Any, bad: Callable[[str], None]) -> str | None:
    if raw is None:
        return None
    found = getattr(psc_errors, str(raw), None)
    if not (isinstance(found, type) and issubclass(found, BackendError | TransactionError)):
        bad(f"exception {raw!r} is not a BackendError or TransactionError class of psc.errors")
    return str(raw)


# --- Backoff ---------------------------------------------------------------------------------------


class Backoff:
    """Bounded exponential backoff with full jitter: attempt n waits uniform(0, min(max, initial * m**n))."""

    def __init__(
        self,
        initial_s: float = 0.1,
        max_s: float = 10.0,
        multiplier: float = 2.0,
        jitter: bool = True,
        random: Callable[[], float] = _random.random,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if initial_s < 0 or max_s < initial_s or multiplier < 1:
            raise ValueError(f"invalid backoff initial={initial_s} max={max_s} multiplier={multiplier}")
        self.initial_s = initial_s
        self.max_s = max_s
        self.multiplier = multiplier
        self.jitter = jitter
        self._random = random
        self.sleep = sleep

    def cap(self, attempt: int) -> float:
        """The upper bound of the wait before retry ``attempt`` (0-based)."""
        try:
            return min(self.max_s, self.initial_s * self.multiplier**attempt)
        except OverflowError:  # float power overflows long before any sane retry count; the cap applies
            return self.max_s

    def delay(self, attempt: int) -> float:
        cap = self.cap(attempt)
        return self._random() * cap if self.jitter else cap

    def delays(self, count: int) -> Iterator[float]:
        return (self.delay(attempt) for attempt in range(count))


# --- Remediator ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _RunState:
    """Budget of one :meth:`Remediator.run` call."""

    reset: Callable[[], None]
    topic: str
    retries: int = 0
    resets: int = 0


@dataclass(frozen=True, slots=True)
class _Failure:
    info: ErrorInfo
    remedy: Remedy
    exc: Exception


_default_catalogue: Catalogue | None = None


def default_catalogue() -> Catalogue:
    """The built-in catalogue, loaded once."""
    global _default_catalogue
    if _default_catalogue is None:
        _default_catalogue = Catalogue.load()
    return _default_catalogue


class Remediator:
    """Runs client operations, remediating backend errors per the catalogue.

    One reset at most per :meth:`run` call: an error that survives a fresh client is not a stale-client
    problem, so it ends in the remedy's ``on_exhausted`` action rather than a reset loop.
    """

    def __init__(
        self,
        catalogue: Catalogue | None = None,
        enabled: bool = True,
        retry_count: int = 5,
        backoff: Backoff | None = None,
        metrics: ClientMetrics | None = None,
        client_type: str = "producer",
        topic_label: str = "",
    ) -> None:
        if client_type not in CLIENT_TYPES:
            raise ValueError(f"unknown client type {client_type!r}; expected one of {sorted(CLIENT_TYPES)}")
        self.catalogue = catalogue if catalogue is not None else default_catalogue()
        self.enabled = enabled
        self.retry_count = retry_count
        self.backoff = backoff if backoff is not None else Backoff()
        self.metrics = metrics if metrics is not None else client_metrics()
        self.client_type = client_type
        self.topic_label = topic_label
        # A broker outage fails every queued record alike: one line per kind and interval, with a count.
        self._repeats = LogThrottle(_log)

    def flush_log(self) -> None:
        """Log the repeats still held back; the client calls this as it closes."""
        self._repeats.flush()

    def remedy_for(self, error: Any, topic_uri: str | None = None) -> Remedy:
        """Decide (and count) the remedy for an error delivered to a callback rather than raised."""
        info = ErrorInfo.of(error)
        remedy = self._remedy(info)
        self._record(info, remedy.action, topic_uri or self.topic_label, attempt=0)
        return remedy

    def to_psc_error(self, error: Any, remedy: Remedy | None = None) -> PscError:
        """The typed PSC exception for an error: the catalogue's exception class, else ``BackendError``."""
        info = ErrorInfo.of(error)
        name = remedy.exception_name if remedy is not None else None
        return _typed_error(info, name, self.client_type)

    def run(self, operation: Callable[[], T], reset: Callable[[], None], topic_uri: str | None = None) -> T | None:
        """Run ``operation``, applying the catalogue's remedy whenever it raises a backend error.

        Returns ``None`` when the remedy is NONE (the error is swallowed).
        """
        state = _RunState(reset, topic_uri or self.topic_label)
        while True:
            try:
                return operation()
            except Exception as exc:
                info = backend_error(exc)
                if info is None:
                    raise
                if not self._remediate(_Failure(info, self._remedy(info), exc), state):
                    return None

    def _remedy(self, info: ErrorInfo) -> Remedy:
        if not self.enabled:
            return Remedy(Action.THROW, reason="auto remediation is disabled")
        return self.catalogue.lookup(info, self.client_type)

    def _remediate(self, failure: _Failure, state: _RunState) -> bool:
        """Apply the remedy; True to run the operation again, False to swallow. Raises to throw."""
        self.metrics.error(state.topic, failure.info.name)
        action = self._step(failure.remedy.action, state)
        if action is None:  # budget spent
            action = failure.remedy.on_exhausted
            if not (action is Action.NONE or (action is Action.RESET and state.resets == 0)):
                self._record(failure.info, Action.THROW, state.topic, state.retries)
                raise _exhausted_error(failure, state.retries) from failure.exc
        return self._perform(action, failure, state)

    def _step(self, action: Action, state: _RunState) -> Action | None:
        """The concrete action for this attempt, or ``None`` when the budget does not allow it."""
        can_retry = state.retries < self.retry_count
        if action is Action.RETRY:
            return Action.RETRY if can_retry else None
        if action is Action.RESET:
            return Action.RESET if state.resets == 0 else None
        if action is Action.RETRY_THEN_RESET:
            if can_retry:
                return Action.RETRY
            return Action.RESET if state.resets == 0 else None
        return action

    def _perform(self, action: Action, failure: _Failure, state: _RunState) -> bool:
        self._record(failure.info, action, state.topic, state.retries + 1)
        if action is Action.NONE:
            return False
        if action is Action.THROW:
            raise _typed_error(failure.info, failure.remedy.exception_name, self.client_type) from failure.exc
        if action is Action.RETRY:
            delay = self.backoff.delay(state.retries)
            state.retries += 1
            self.metrics.retry(state.topic)
            self.backoff.sleep(delay)
            return True
        state.resets += 1
        state.retries = 0  # a fresh client gets a fresh retry budget
        self.metrics.reset(state.topic)
        state.reset()
        return True

    def _record(self, info: ErrorInfo, action: Action, topic: str, attempt: int) -> None:
        self.metrics.remediation_action(action.value, info.name, self.client_type)
        # Swallowed errors (end of partition) are routine; everything else deserves attention.
        self._repeats.log(
            "debug" if action is Action.NONE else "warning",
            (info.name, action, topic),
            "remediating backend error",
            code=info.name,
            numeric_code=info.code,
            action=action.value,
            attempt=attempt,
            client_type=self.client_type,
            topic_uri=topic,
            error=info.message,
        )


def _exhausted_error(failure: _Failure, attempts: int) -> RemediationExhaustedError:
    info, remedy = failure.info, failure.remedy
    return RemediationExhaustedError(
        f"{info.name} ({info.message}) persisted after {attempts} retries: {remedy.reason}",
        attempts=attempts,
        action=remedy.action.value,
        code=info.code,
        name=info.name,
        retriable=info.retriable,
        fatal=info.fatal,
        native=info.native,
    )


def _typed_error(info: ErrorInfo, exception_name: str | None, client_type: str) -> PscError:
    cls = getattr(psc_errors, exception_name, BackendError) if exception_name else BackendError
    message = f"{info.name}: {info.message}" if info.message else info.name
    common: dict[str, Any] = {
        "code": info.code,
        "name": info.name,
        "retriable": info.retriable,
        "fatal": info.fatal,
        "native": info.native,
        "client_type": client_type,
    }
    if issubclass(cls, TransactionError):
        return cls(message, txn_requires_abort=info.txn_requires_abort, **common)
    error: PscError = cls(message, **common)
    return error


# --- Proactive certificate reset -------------------------------------------------------------------


def certificate_not_after(cert_path: str | Path) -> datetime | None:
    """``notAfter`` (UTC) of the first certificate in a PEM file; ``None`` if unreadable or absent."""
    from cryptography import x509

    try:
        data = Path(cert_path).read_bytes()
        certificates = x509.load_pem_x509_certificates(data)
    except (OSError, ValueError):
        return None
    return certificates[0].not_valid_after_utc if certificates else None


class ProactiveResetSchedule:
    """Says when a ``secure:`` client should reset to pick up a rotated certificate before expiry.

    After :meth:`mark_reset` the file is re-read on every check; the schedule is due again only once the
    file holds a certificate with a new ``notAfter``, so an unrotated file does not cause a reset loop.
    """

    def __init__(self, cert_path: str | Path, reset_before_s: float) -> None:
        self.cert_path = Path(cert_path)
        self.reset_before = timedelta(seconds=reset_before_s)
        self._not_after: datetime | None = None
        self._reset_for: datetime | None = None

    @property
    def not_after(self) -> datetime | None:
        return self._not_after

    def due(self, now: datetime | None = None) -> bool:
        if self._not_after is None or self._reset_for is not None:
            self._refresh()
        if self._not_after is None or self._not_after == self._reset_for:
            return False
        return (now or datetime.now(UTC)) >= self._not_after - self.reset_before

    def mark_reset(self) -> None:
        """Record that the client was reset for the current certificate."""
        self._reset_for = self._not_after

    def _refresh(self) -> None:
        fresh = certificate_not_after(self.cert_path)
        if fresh is None:
            return
        self._not_after = fresh
        if fresh != self._reset_for:
            self._reset_for = None


__all__ = [
    "Action",
    "Backoff",
    "Catalogue",
    "CatalogueEntry",
    "CatalogueError",
    "ErrorInfo",
    "ProactiveResetSchedule",
    "Remediator",
    "Remedy",
    "backend_error",
    "certificate_not_after",
    "default_catalogue",
    "is_fatal",
]
