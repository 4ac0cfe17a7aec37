"""A broker's configuration file (TOML), parsed once into typed settings with errors that name the key."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pacer._errors import InvalidArgument

_KINDS: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "str | None": (str,)}


@dataclass(frozen=True)
class BrokerConfig:
    """Settings of one dequeue broker.

    ``storage``: one ``mysql://`` URL per shard, shard 0 first (or one ``sqlite:///`` URL for a single broker).
    ``control_topic``: a PSC topic URI; its partition count must equal ``control_partitions``: queue
    partition ``p`` of queue ``q`` belongs to control partition ``(crc32(q) + p) % control_partitions``.
    ``advertised_url``: how clients and other brokers reach this one (default ``http://host:port``).
    ``rebalance_timeout_ms``: how long a rebalance waits for a member that stopped answering mid-way (a paused
    broker) before going on without it; the membership thread polls every half second, far below it.
    """

    storage: list[str]
    control_topic: str
    control_partitions: int
    host: str = "127.0.0.1"
    port: int = 0
    advertised_url: str | None = None
    group_id: str = "pacer-brokers"
    admin_token: str | None = None
    buffer_capacity: int = 1000
    low_watermark: int = 250
    refill_interval_s: float = 1.0
    expire_interval_s: float = 1.0
    gc_interval_s: float = 60.0
    session_timeout_ms: int = 10000
    rebalance_timeout_ms: int = 20000
    psc: dict[str, str] = field(default_factory=dict)
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if isinstance(self.storage, str):
            object.__setattr__(self, "storage", [self.storage])
        if not self.storage or not all(isinstance(url, str) for url in self.storage):
            raise InvalidArgument("config key 'storage' must be a URL or a list of shard URLs")
        if not isinstance(self.control_partitions, int) or self.control_partitions < 1:
            raise InvalidArgument("config key 'control_partitions' must be an integer >= 1")
        if not 0 <= self.port <= 65535:
            raise InvalidArgument("config key 'port' must be in 0..65535")
        if not 1 <= self.buffer_capacity <= 100_000 or not 0 <= self.low_watermark < self.buffer_capacity:
            raise InvalidArgument("config keys: need 1 <= buffer_capacity <= 100000 and 0 <= low_watermark < it")

    @classmethod
    def load(cls, path: str | Path) -> BrokerConfig:
        try:
            raw = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InvalidArgument(f"broker config {path}: {exc}") from exc
        return cls.from_mapping(raw, str(path))

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], source: str = "config") -> BrokerConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise InvalidArgument(f"{source}: unknown keys {unknown}; known keys are {sorted(known)}")
        for name, value in raw.items():
            kinds = _KINDS.get(str(known[name].type))
            if kinds is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
                raise InvalidArgument(f"{source}: key {name!r} must be {known[name].type}, got {value!r:.60}")
        try:
            return cls(**raw)
        except TypeError as exc:
            raise InvalidArgument(f"{source}: {exc}") from exc
