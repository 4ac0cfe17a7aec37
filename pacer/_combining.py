"""Concurrent calls combined into one batch: one statement per partition per turn instead of one per call."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Call(Generic[Item, Result]):
    __slots__ = ("done", "error", "items", "results")

    def __init__(self, items: Sequence[Item]) -> None:
        self.items = items
        self.results: list[Result] = []
        self.error: BaseException | None = None
        self.done = False


class Combiner(Generic[Item, Result]):
    """Runs ``batch`` over the items of every call waiting, one batch at a time.

    A caller queues its items, then waits for its turn; whoever gets the turn runs every call queued so
    far as one batch (its own included, unless an earlier batch took it). ``batch`` returns one result per
    item, in order; if it raises, every call of that batch gets the error.
    """

    def __init__(self, batch: Callable[[list[Item]], list[Result]]) -> None:
        self._batch = batch
        self._queued: list[_Call[Item, Result]] = []
        self._queue_lock = threading.Lock()
        self._turn = threading.Lock()

    def __call__(self, items: Sequence[Item]) -> list[Result]:
        call: _Call[Item, Result] = _Call(items)
        with self._queue_lock:
            self._queued.append(call)
        with self._turn:
            if not call.done:
                with self._queue_lock:
                    calls, self._queued = self._queued, []
                self._run(calls)
        if call.error is not None:
            raise call.error
        return call.results

    def _run(self, calls: list[_Call[Item, Result]]) -> None:
        try:
            results = self._batch([item for call in calls for item in call.items])
        except BaseException as exc:
            for call in calls:
                call.error, call.done = exc, True
            return
        start = 0
        for call in calls:
            call.results, call.done = results[start : start + len(call.items)], True
            start += len(call.items)
