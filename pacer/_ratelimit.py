"""A token bucket that charges jobs handed out, not jobs asked for (PinLater charged the request's limit)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` jobs per second with a burst of one second's worth; ``None`` unlimited, ``0`` paused."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._rate = rate
        self._tokens = self._burst()
        self._at = clock()

    def _burst(self) -> float:
        return 0.0 if not self._rate else max(1.0, self._rate)

    @property
    def rate(self) -> float | None:
        return self._rate

    def set_rate(self, rate: float | None) -> None:
        with self._lock:
            if rate != self._rate:
                self._rate = rate
                self._tokens = self._burst()  # a new rate starts with its burst, e.g. when unpaused
                self._at = self._clock()

    def take(self, wanted: int) -> int:
        """How many of ``wanted`` jobs may go out now."""
        with self._lock:
            if self._rate is None:
                return wanted
            now = self._clock()
            self._tokens = min(self._burst(), self._tokens + (now - self._at) * self._rate)
            self._at = now
            granted = min(wanted, int(self._tokens))
            self._tokens -= granted
            return granted

    def give_back(self, count: int) -> None:
        with self._lock:
            if self._rate is not None:
                self._tokens = min(self._burst(), self._tokens + count)
