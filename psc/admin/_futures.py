"""Futures handed to the application: each resolves from the native futures of one or more clusters."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any


def new_future() -> Future[Any]:
    """A running future, as confluent-kafka creates them: ``cancel()`` on it returns False."""
    future: Future[Any] = Future()
    future.set_running_or_notify_cancel()
    return future


def _same(value: Any) -> Any:
    return value


def chain(source: Future[Any], convert: Callable[[Any], Any] = _same) -> Future[Any]:
    """A future of ``convert(source.result())``; an exception of ``source`` passes through unchanged."""
    return gather([source], lambda results: convert(results[0]))


def gather(parts: Sequence[Future[Any]], combine: Callable[[list[Any]], Any]) -> Future[Any]:
    """A future of ``combine`` over every part's result, or of the first part's exception (in part order)."""
    target = new_future()
    remaining = [len(parts)]
    lock = threading.Lock()

    def done(_: Future[Any]) -> None:
        with lock:
            remaining[0] -= 1
            if remaining[0]:
                return
        failed = [error for error in (part.exception() for part in parts) if error is not None]
        if failed:
            target.set_exception(failed[0])
            return
        try:
            target.set_result(combine([part.result() for part in parts]))
        except Exception as exc:  # a conversion bug must reach the caller, not die in a native thread
            target.set_exception(exc)

    if not parts:
        target.set_result(combine([]))
    for part in parts:
        part.add_done_callback(done)
    return target
