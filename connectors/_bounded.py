"""Client calls with a deadline they cannot overrun.

librdkafka's transactional calls can block far past the timeout they are given when the broker restarts
under them (``send_offsets_to_transaction`` waiting for a group coordinator that is gone). Such a call
runs in a daemon thread; if it has not returned by the deadline the caller gets ``ClientStuckError`` and
must abandon the client: the thread keeps it until the call returns, and the job recreates it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from connectors.errors import ConnectorError

T = TypeVar("T")


class ClientStuckError(ConnectorError):
    """A client call did not return by its deadline; the client must not be used again."""


def bounded(deadline_s: float, what: str, call: Callable[[], T]) -> T:
    """``call()``, or ``ClientStuckError`` once ``deadline_s`` passed without it returning."""
    outcome: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name=f"bounded {what}", daemon=True).start()
    if not done.wait(deadline_s):
        raise ClientStuckError(f"{what} did not return within {deadline_s:g}s")
    if failure:
        raise failure[0]
    return outcome[0]
