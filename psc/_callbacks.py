"""confluent-kafka's call shapes: a config given as a dict, as keyword arguments or both, with callbacks in it.

confluent-kafka accepts ``Producer(conf)``, ``Producer(**conf)`` and ``Producer(conf, logger=..., **more)``,
keyword arguments overriding the dict. Callbacks travel in the same config: ``error_cb``, ``stats_cb``,
``throttle_cb``, ``oauth_cb``, ``logger``, and ``on_delivery`` (producer) or ``on_commit`` (consumer). PSC
takes them under its key form (``psc.producer.error_cb``) or under their plain names, and keeps them apart
from the validated settings: they are objects, not values librdkafka parses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from psc._config import ClientType
from psc.errors import ConfigError

# Callbacks librdkafka calls directly: PSC has nothing to remediate in them, so they reach it unchanged.
NATIVE_CALLBACKS = ("stats_cb", "throttle_cb", "oauth_cb", "logger")
_OWN = {"producer": "on_delivery", "consumer": "on_commit"}
_NAMES = {
    "producer": ("error_cb", *NATIVE_CALLBACKS, "on_delivery"),
    "consumer": ("error_cb", *NATIVE_CALLBACKS, "on_commit"),
    "admin": ("error_cb", *NATIVE_CALLBACKS),
}


@dataclass(frozen=True, slots=True)
class ConfigCallbacks:
    """The application's callbacks from a client's config; ``native`` go to librdkafka as they are."""

    error_cb: Callable[..., Any] | None = None
    own: Callable[..., Any] | None = None  # on_delivery of a producer, on_commit of a consumer
    native: dict[str, Any] = field(default_factory=dict)


def merge_config(config: Mapping[str, Any] | None, more: Mapping[str, Any]) -> dict[str, Any]:
    """The config of ``Client(config, **more)``: keyword arguments override the dict, as in confluent-kafka."""
    if config is not None and not isinstance(config, Mapping):
        raise TypeError(f"expected a config dict, got {type(config).__name__}")
    merged = dict(config or {})
    merged.update(more)
    return merged


def split_callbacks(config: Mapping[str, Any], client_type: ClientType) -> tuple[dict[str, Any], ConfigCallbacks]:
    """``config`` without its callbacks, and the callbacks; a non-callable callback is a ConfigError."""
    names = _NAMES[client_type]
    prefix = f"psc.{client_type}."
    rest: dict[str, Any] = {}
    found: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in config.items():
        if _another_clients_callback(key, client_type):
            continue  # a dict shared by several clients: the other client's callback is not ours
        name = key[len(prefix) :] if isinstance(key, str) and key.startswith(prefix) else key
        if name not in names:
            rest[key] = value
        elif name in found:
            problems.append(f"{key}: the {name} callback is given twice; give it once")
        elif value is not None and not callable(value) and not (name == "logger" and hasattr(value, "log")):
            problems.append(f"{key}={value!r}: expected a callable")
        elif value is not None:
            found[name] = value
    if problems:
        raise ConfigError(problems)
    native = {name: found[name] for name in NATIVE_CALLBACKS if name in found}
    own = found.get(_OWN[client_type]) if client_type in _OWN else None
    return rest, ConfigCallbacks(found.get("error_cb"), own, native)


def _another_clients_callback(key: object, client_type: ClientType) -> bool:
    if not isinstance(key, str):
        return False
    return any(
        key.startswith(f"psc.{other}.") and key[len(other) + 5 :] in names
        for other, names in _NAMES.items()
        if other != client_type
    )


__all__ = ["NATIVE_CALLBACKS", "ConfigCallbacks", "merge_config", "split_callbacks"]
