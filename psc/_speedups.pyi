from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from psc._message import Source
from psc.backends.base import NativeRecord

_M = TypeVar("_M", bound=MessageBase)

class RouteBase:
    produce: Any
    topic: Any
    count: int
    sample_at: int
    plain: bool

class FastProduce:
    def __init__(
        self,
        routes: Mapping[str, RouteBase],
        slow: Callable[..., None],
        on_error: Callable[[Any, Any, Any, BaseException], None],
    ) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> None: ...

class MessageBase:
    @property
    def _native(self) -> NativeRecord: ...
    @property
    def _source(self) -> Source: ...
    def __init__(self, native: NativeRecord, source: Source) -> None: ...

def wrap_batch(cls: type[_M], source: Any, batch: list[Any]) -> list[_M] | None: ...
