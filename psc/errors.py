"""The PSC exception hierarchy.

Everything PSC raises derives from :class:`PscError`, so applications can catch the whole client at once,
or one failure precisely. :class:`PscError` is also a confluent-kafka ``KafkaException`` whose ``args[0]``
is a ``KafkaError`` (``code()``, ``name()``, ``str()``, ``fatal()``, ``retriable()``,
``txn_requires_abort()``), so error handling written for confluent-kafka works unchanged. Errors that come
from a backend keep the native error object in ``native`` so nothing the backend said is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from confluent_kafka import KafkaError, KafkaException

from psc.common.errors import ToolkitError

URI_SHAPE = "<protocol>:/rn:<service>:<environment>:<cloud>_<region>:<classifier>:<cluster>:<topic>"


class PscError(ToolkitError, KafkaException):
    """Root of every error raised by PSC: a ``KafkaException`` carrying a ``KafkaError`` in ``args[0]``.

    ``str()`` is PSC's message; ``args[0]`` answers as confluent-kafka's error object does. Errors PSC finds
    itself carry the librdkafka code closest in meaning (``_INVALID_ARG`` for bad input, ...).
    """

    kafka_code: ClassVar[int] = KafkaError._FAIL

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.args = (self._kafka_error(),)

    def _kafka_error(self) -> KafkaError:
        return KafkaError(self.kafka_code, self.message)


class InvalidUriError(PscError, ValueError):
    """A topic URI or resource name could not be parsed or is not valid for its backend."""

    kafka_code = KafkaError._INVALID_ARG

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"invalid topic URI {uri!r}: {reason}; expected {URI_SHAPE}", uri=uri, reason=reason)
        self.uri = uri
        self.reason = reason


class ConfigError(PscError, ValueError):
    """PSC configuration is invalid; ``problems`` lists every problem found, not just the first."""

    kafka_code = KafkaError._INVALID_ARG

    def __init__(self, problems: Sequence[str] | str) -> None:
        found = [problems] if isinstance(problems, str) else list(problems)
        lines = "\n  - ".join(found)
        super().__init__(f"invalid PSC configuration ({len(found)} problem(s)):\n  - {lines}", problems=found)
        self.problems = found


class DiscoveryError(PscError):
    """A topic URI could not be turned into connection settings."""

    kafka_code = KafkaError._RESOLVE

    def __init__(self, message: str, *, uri: str = "", providers: Sequence[str] = ()) -> None:
        super().__init__(message, uri=uri, providers=list(providers))
        self.uri = uri
        self.providers = list(providers)


class UnknownBackendError(PscError):
    """No backend is registered for a URI's service (``kafka``, ``memq``, ...)."""

    kafka_code = KafkaError._NOT_IMPLEMENTED

    def __init__(self, service: str, known: Sequence[str] = ()) -> None:
        names = ", ".join(sorted(known)) or "none"
        super().__init__(f"no PSC backend for service {service!r}; registered: {names}", service=service)
        self.service = service
        self.known = list(known)


class ClientClosedError(PscError, RuntimeError):
    """An operation was attempted on a producer or consumer that has been closed (confluent: RuntimeError)."""

    kafka_code = KafkaError._STATE


class SerializationError(PscError):
    """A key or value could not be serialized or deserialized."""

    kafka_code = KafkaError._VALUE_SERIALIZATION


class ProducerError(PscError):
    """A producer operation failed."""


class ConsumerError(PscError):
    """A consumer operation failed."""


class BackendError(PscError):
    """A native backend error, typed: ``code``/``name`` identify it, ``native`` is the original object."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        name: str = "",
        retriable: bool = False,
        fatal: bool = False,
        native: object = None,
        **context: Any,
    ) -> None:
        self.code = code
        self.name = name
        self.retriable = retriable
        self.fatal = fatal
        self.native = native
        super().__init__(message, code=code, name=name, retriable=retriable, fatal=fatal, **context)

    def _kafka_error(self) -> KafkaError:
        native = _unwrap_native(self.native)
        if isinstance(native, KafkaError):
            return native  # the backend's own error object, exactly as confluent-kafka would deliver it
        code = self.code
        if code is None:  # named only: librdkafka's code of that name
            named = getattr(KafkaError, self.name, None) if self.name.isidentifier() else None
            code = named if isinstance(named, int) else KafkaError._FAIL
        return KafkaError(code, self.message, fatal=self.fatal, retriable=self.retriable)

    @classmethod
    def from_native(cls, native: object, message: str | None = None, **context: Any) -> BackendError:
        """Wrap a native error; understands confluent-kafka's ``KafkaError`` and ``KafkaException``.

        Duck-typed, so PSC needs no backend import here: a ``KafkaException`` carries its
        ``KafkaError`` as ``args[0]``, which answers ``code()``, ``name()``, ``str()``, ``retriable()``
        and ``fatal()``.
        """
        error = _unwrap_native(native)
        code = _call(error, "code")
        text = message or str(_call(error, "str") or native)
        return cls(
            text,
            code=code if isinstance(code, int) else None,
            name=str(_call(error, "name") or type(native).__name__),
            retriable=bool(_call(error, "retriable")),
            fatal=bool(_call(error, "fatal")),
            native=native,
            **context,
        )


class RemediationExhaustedError(BackendError):
    """Automatic remediation gave up on a backend error after its bounded attempts."""

    def __init__(self, message: str, *, attempts: int = 0, action: str = "", **kwargs: Any) -> None:
        super().__init__(message, attempts=attempts, action=action, **kwargs)
        self.attempts = attempts
        self.action = action


class TransactionError(ProducerError):
    """A transactional producer operation failed.

    ``retriable``: the same call may be retried. ``txn_requires_abort``: the transaction must be aborted
    before a new one begins. ``fatal``: the producer is unusable and must be closed.
    """

    def __init__(
        self,
        message: str,
        *,
        retriable: bool = False,
        txn_requires_abort: bool = False,
        fatal: bool = False,
        native: object = None,
        **context: Any,
    ) -> None:
        self.retriable = retriable
        self.txn_requires_abort = txn_requires_abort
        self.fatal = fatal
        self.native = native
        super().__init__(message, retriable=retriable, txn_requires_abort=txn_requires_abort, fatal=fatal, **context)

    def _kafka_error(self) -> KafkaError:
        native = _unwrap_native(self.native)
        if isinstance(native, KafkaError):
            return native
        return KafkaError(
            self.kafka_code,
            self.message,
            fatal=self.fatal,
            retriable=self.retriable,
            txn_requires_abort=self.txn_requires_abort,
        )


def _unwrap_native(native: object) -> object:
    args = getattr(native, "args", None)
    if isinstance(native, BaseException) and args and hasattr(args[0], "code"):
        return args[0]
    return native


def _call(target: object, method: str) -> object:
    func = getattr(target, method, None)
    if not callable(func):
        return None
    try:
        return func()
    except Exception:  # a native accessor failing must not hide the original error
        return None


__all__ = [
    "URI_SHAPE",
    "BackendError",
    "ClientClosedError",
    "ConfigError",
    "ConsumerError",
    "DiscoveryError",
    "InvalidUriError",
    "ProducerError",
    "PscError",
    "RemediationExhaustedError",
    "SerializationError",
    "TransactionError",
    "UnknownBackendError",
]
