from array import array
from collections.abc import Callable, Sequence
from typing import Any

from psc._speedups import DeliveryTally

def load(path: str) -> str: ...

class Producer:
    def __init__(
        self,
        config: dict[str, str],
        on_failure: Callable[[DeliveryTally, int, str, str, int, bytes | None, bytes | None, list[Any]], Any],
        on_error: Callable[[int, str, bool], Any],
        on_log: Callable[[int, str, str], Any],
    ) -> None: ...
    def produce_batch(
        self,
        topic: str,
        values: Sequence[bytes],
        partitions: Sequence[int] | None,
        keys: Sequence[bytes | None] | None,
        headers: Sequence[tuple[str, bytes]],
        int_headers: Sequence[tuple[str, bytes, Sequence[int]]],
        tally: DeliveryTally,
        /,
    ) -> tuple[int, int, str | None]: ...
    def produce_slices(
        self,
        topic: str,
        buffer: bytes | bytearray | memoryview | array[int],
        first: int,
        ends: bytes | bytearray | memoryview | array[int],
        sizes: bytes | bytearray | memoryview | array[int],
        sizes_before: int,
        partitions: Sequence[int] | None,
        headers: Sequence[tuple[str, bytes]],
        end_header: tuple[str, bytes, int] | None,
        tally: DeliveryTally,
        copy: bool,
        /,
    ) -> tuple[int, int, str | None]: ...
    def poll(self, timeout: float, /) -> int: ...
    def flush(self, timeout: float, /) -> int: ...
    def purge(self, in_queue: bool, in_flight: bool, blocking: bool, /) -> None: ...
    def close(self) -> None: ...
    def __len__(self) -> int: ...
