import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

class OpenBase:
    values: list[bytes]
    keys: list[bytes | None]
    stamps: list[int]
    headers: list[Any] | None
    reports: list[Any] | None
    size: int
    capacity: int
    sealed: bool

class ProducerBase:
    _open: dict[str, Any]
    _lock: threading.Lock
    _buffered: int
    _unanswered: int
    _max_buffered: int
    def produce(
        self,
        topic: str,
        value: bytes | bytearray | memoryview,
        key: bytes | bytearray | memoryview | None = None,
        headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None = None,
        timestamp: int = 0,
        on_delivery: Callable[[Any, Any], None] | None = None,
    ) -> None: ...
    def psc_produce(
        self,
        topic: str,
        value: bytes | bytearray | memoryview | None = None,
        key: bytes | bytearray | memoryview | None = None,
        partition: int = -1,
        on_delivery: Callable[[Any, Any], None] | None = None,
        timestamp: int = 0,
        headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None = None,
    ) -> None: ...

def encode_plain(values: Sequence[bytes], keys: Sequence[bytes | None], timestamps: Sequence[int]) -> bytes | None: ...
