"""What both asyncio clients share: the client's worker thread and callbacks that run on the event loop.

librdkafka calls back (rebalance, commit, error, statistics, logging) from inside a blocking call such as
``poll``, on the thread making it. Callbacks here run on the event loop instead, so they may be coroutine
functions and may await the client; the blocking call waits for them, so what a callback does (a commit in
``on_revoke``) takes effect before librdkafka goes on. While it waits, the client's thread runs the calls
that callback makes, so a re-entrant call runs where the sync client would run it, and cannot deadlock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import queue
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")

# Config keys whose values confluent-kafka calls back, by their last dotted part (``psc.consumer.on_commit``).
CALLBACK_KEYS = frozenset({"error_cb", "throttle_cb", "stats_cb", "on_commit"})
_LOOP_CHECK_S = 1.0
_detached: set[asyncio.Future[Any]] = set()  # callbacks started without waiting (called from the loop itself)


@dataclass
class _Job:
    func: Callable[[], Any]
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            self.future.set_result(self.func())
        except BaseException as exc:
            self.future.set_exception(exc)


class _Scope:
    """The calls made by one running callback: served by the thread the callback interrupted."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._open = True

    def put(self, job: _Job) -> bool:
        with self._lock:
            if self._open:
                self.jobs.put(job)
            return self._open

    def close(self) -> None:
        with self._lock:
            self._open = False
        self.jobs.put(None)


_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("psc_aio_callback_scope", default=None)


class Worker:
    """Runs a client's blocking calls one at a time, in order, on one thread, never on the event loop.

    The thread is the worker's own, or one borrowed from ``executor`` for the client's lifetime.
    """

    def __init__(self, name: str, executor: concurrent.futures.Executor | None = None) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        if executor is None:
            threading.Thread(target=self._serve, name=name, daemon=True).start()
        else:
            executor.submit(self._serve)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            job.run()

    def submit(self, func: Callable[[], T]) -> concurrent.futures.Future[T]:
        job = _Job(func)
        scope = _scope.get()
        if scope is None or scope.worker is not self or not scope.put(job):
            self._jobs.put(job)
        return job.future

    async def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.wrap_future(self.submit(partial(func, *args, **kwargs)))

    def stop(self) -> None:
        """Let the thread end once the calls already submitted are done."""
        self._jobs.put(None)

    def run_callback(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], Awaitable[T]]) -> T:
        """Run ``callback()`` on ``loop`` from this worker's thread; serve the calls it makes until it is done."""
        scope = _Scope(self)

        async def scoped() -> T:
            _scope.set(scope)
            return await callback()

        done = asyncio.run_coroutine_threadsafe(scoped(), loop)
        done.add_done_callback(lambda _: scope.close())
        while True:
            try:
                job = scope.jobs.get(timeout=_LOOP_CHECK_S)
            except queue.Empty:
                if loop.is_closed():  # nothing will ever run the callback now
                    done.cancel()
                    break
                continue
            if job is None:
                break
            job.run()
        return done.result()


async def _maybe_await(func: Callable[..., Any], *args: Any) -> Any:
    result = func(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def on_loop(
    loop: asyncio.AbstractEventLoop, func: Callable[..., Any], worker: Worker | None = None
) -> Callable[..., Any]:
    """``func`` (a plain or coroutine function) as a callback that runs on ``loop`` and is waited for.

    With ``worker``, calls from the callback to the client are served while waiting (see :class:`Worker`).
    """

    def callback(*args: Any) -> Any:
        if _on_loop_thread(loop):  # called from the loop itself: it cannot wait for itself
            result = func(*args)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                _detached.add(task)
                task.add_done_callback(_detached.discard)
            return result
        run = partial(_maybe_await, func, *args)
        if worker is not None:
            return worker.run_callback(loop, run)
        return asyncio.run_coroutine_threadsafe(run(), loop).result()

    return callback


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class LoopLogger:
    """An application's ``logger`` called on the event loop, without making librdkafka wait for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, logger: Any) -> None:
        self._loop = loop
        self._logger = logger

    def log(self, *args: Any, **kwargs: Any) -> None:
        self._loop.call_soon_threadsafe(partial(self._logger.log, *args, **kwargs))


def loop_config(
    loop: asyncio.AbstractEventLoop, config: Mapping[str, Any], worker: Worker | None = None
) -> dict[str, Any]:
    """``config`` with its callbacks and application logger moved onto the event loop."""
    out = dict(config)
    for key, value in config.items():
        name = key.rsplit(".", 1)[-1]
        if name in CALLBACK_KEYS and callable(value):
            out[key] = on_loop(loop, value, worker)
        elif name == "logger" and value is not None:
            out[key] = LoopLogger(loop, value)
    return out
