"""Configuration: ``singer.toml`` for the agent and one ``conf.d/<stream>.toml`` per stream.

Each file is validated on its own and every problem in it is reported at once, naming the file and key. A
broken stream file does not stop the others: it is reported, and the stream keeps its last good settings
(or does not start, if it never had any).
"""

from __future__ import annotations

import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from psc import parse_topic_uri
from psc.common.settings import SettingsError, ToolkitSettings
from singer import _partitioners

AGENT_FILE = "singer.toml"
STREAMS_DIR = "conf.d"


class HeartbeatSettings(ToolkitSettings):
    topic_uri: str
    interval_s: float = Field(60.0, gt=0)

    @field_validator("topic_uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        return _check_uri(value)


class AgentSettings(ToolkitSettings):
    state_dir: Path | None = None  # default: <config dir>/state
    host: str = Field(default_factory=socket.gethostname)
    metrics_port: int | None = Field(None, ge=0, le=65535)
    metrics_addr: str = "127.0.0.1"
    poll_interval_s: float = Field(1.0, gt=0)  # directory rescans without inotify
    reload_interval_s: float = Field(2.0, gt=0)
    # What librdkafka holds for records in flight stays in the process's heap: this bounds peak memory.
    max_inflight_bytes: int = Field(8 << 20, ge=1 << 10)
    drain_timeout_s: float = Field(10.0, ge=0)
    stuck_after_s: float = Field(600.0, gt=0)
    use_inotify: bool = True
    producer: dict[str, str] = Field(default_factory=dict)  # PSC keys for every stream's producer
    heartbeat: HeartbeatSettings | None = None


class PartitionerSettings(ToolkitSettings):
    model_config = ToolkitSettings.model_config | {"extra": "allow"}
    type: str = "round_robin"

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class StreamSettings(ToolkitSettings):
    dir: str  # a directory or a glob of directories; each match is a stream of its own
    pattern: str  # a regex the whole file name must match
    topic_uri: str
    format: Literal["text", "thrift"] = "text"
    keep_newline: bool = True
    start_regex: str | None = None
    max_message_bytes: int = Field(1_000_000, ge=16)
    batch_bytes: int = Field(8 << 20, ge=1)
    batch_records: int = Field(65_536, ge=1)
    batch_timeout_s: float = Field(30.0, gt=0)
    retry_backoff_s: float = Field(0.5, gt=0)
    retry_backoff_max_s: float = Field(30.0, gt=0)
    rotation_grace_s: float = Field(2.0, ge=0)
    # 0: the watermark is written (fsynced) as soon as its batch is acknowledged. More: at most one write per
    # interval, fewer fsyncs; acknowledged batches hold their place in the send window until written.
    watermark_interval_s: float = Field(0.0, ge=0)
    # Batches sent and not yet covered by a written watermark: a crash resends at most this many. 1 sends the
    # next batch only once the previous one's watermark is on disk; more pipeline, and resend more.
    max_inflight_batches: int = Field(1, ge=1)
    compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    acks: Literal["all", "-1", "0", "1"] = "all"
    idempotence: bool = True
    dead_letter_topic_uri: str | None = None
    reference_watermark: Path | None = None  # the reference agent's watermark file, read once to migrate
    partitioner: PartitionerSettings = Field(default_factory=PartitionerSettings)
    producer: dict[str, str] = Field(default_factory=dict)

    @field_validator("pattern", "start_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regex: {exc}") from None
        return value

    @field_validator("topic_uri", "dead_letter_topic_uri")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        return None if value is None else _check_uri(value)

    @model_validator(mode="after")
    def _partitioner_builds(self) -> StreamSettings:
        _partitioners.create(self.partitioner.type, self.partitioner.params())
        return self

    def producer_config(self, agent: AgentSettings) -> dict[str, str]:
        """PSC producer keys: the agent's, then the stream's settings, then its explicit overrides.

        Singer retries a failed batch itself, by rewinding to the watermark, so the producer must not keep
        copies of its records: PSC's remediation does not re-produce them, and librdkafka gives a record up
        (and reports it failed) when its batch times out, not minutes later."""
        return {
            "psc.project": "singer",
            "psc.auto.resolution.enabled": "false",
            **agent.producer,
            "psc.producer.delivery.timeout.ms": str(max(int(self.batch_timeout_s * 1000), 1)),
            "psc.producer.compression.type": self.compression,
            "psc.producer.acks": self.acks,
            "psc.producer.idempotence.enabled": "true" if self.idempotence else "false",
            **self.producer,
        }


def _check_uri(value: str) -> str:
    uri = parse_topic_uri(value)  # raises InvalidUriError naming the problem
    if uri.is_cluster:
        raise ValueError(f"{value!r} names a cluster; a topic URI is needed")
    return value


@dataclass
class ConfigSnapshot:
    agent: AgentSettings
    streams: dict[str, StreamSettings]
    errors: dict[str, list[str]] = field(default_factory=dict)  # file name -> every problem found in it
    mtimes: dict[str, int] = field(default_factory=dict)


def _load_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


def load_agent(config_dir: Path) -> AgentSettings:
    """The agent settings; raises :class:`SettingsError` listing every problem in ``singer.toml``."""
    if not config_dir.is_dir():
        raise SettingsError(str(config_dir), ["not a directory (expected singer.toml and conf.d/*.toml in it)"])
    path = config_dir / AGENT_FILE
    try:
        values = _load_toml(path) if path.exists() else {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(str(path), [str(exc)]) from None
    try:
        agent = AgentSettings.load(values)
    except SettingsError as exc:
        raise SettingsError(str(path), exc.problems) from None
    if agent.state_dir is None:
        agent = agent.model_copy(update={"state_dir": config_dir / "state"})
    return agent


def load_stream(path: Path) -> StreamSettings:
    try:
        values = _load_toml(path)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(str(path), [str(exc)]) from None
    try:
        return StreamSettings.load(values)
    except SettingsError as exc:
        raise SettingsError(str(path), exc.problems) from None
    except ValueError as exc:  # a partitioner or URI that pydantic did not wrap
        raise SettingsError(str(path), [str(exc)]) from None


def stream_files(config_dir: Path) -> dict[str, Path]:
    """Stream name (file stem) -> file, for every ``conf.d/*.toml``."""
    directory = config_dir / STREAMS_DIR
    if not directory.is_dir():
        return {}
    return {p.stem: p for p in sorted(directory.glob("*.toml")) if not p.name.startswith(".")}


def load_streams(config_dir: Path, previous: ConfigSnapshot | None = None) -> ConfigSnapshot:
    """Every stream file, re-reading only the changed ones; a broken file keeps its stream's last good settings."""
    agent = previous.agent if previous is not None else load_agent(config_dir)
    snapshot = ConfigSnapshot(agent, {})
    for name, path in stream_files(config_dir).items():
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            continue
        snapshot.mtimes[name] = mtime
        if previous is not None and previous.mtimes.get(name) == mtime:
            if name in previous.streams:
                snapshot.streams[name] = previous.streams[name]
            if name in previous.errors:
                snapshot.errors[name] = previous.errors[name]
            continue
        try:
            snapshot.streams[name] = load_stream(path)
        except SettingsError as exc:
            snapshot.errors[name] = [f"{path}: {p}" for p in exc.problems]
            if previous is not None and name in previous.streams:
                snapshot.streams[name] = previous.streams[name]
    return snapshot
