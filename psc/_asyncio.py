"""The earlier names of the asyncio clients, kept for existing code: use :mod:`psc.aio`."""

from __future__ import annotations

import warnings
from typing import Any

from psc.aio import AIOConsumer, AIOProducer


class AsyncProducer(AIOProducer):
    """Deprecated: :class:`psc.aio.AIOProducer`, whose ``await produce()`` returns a delivery future."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warnings.warn("psc.AsyncProducer is deprecated; use psc.aio.AIOProducer", DeprecationWarning, stacklevel=2)
        super().__init__(*args, **kwargs)


class AsyncConsumer(AIOConsumer):
    """Deprecated: :class:`psc.aio.AIOConsumer`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        warnings.warn("psc.AsyncConsumer is deprecated; use psc.aio.AIOConsumer", DeprecationWarning, stacklevel=2)
        super().__init__(*args, **kwargs)
