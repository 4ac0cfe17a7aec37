"""Broker and producer settings, parsed once at the edge (a TOML or JSON file, or keyword arguments).

The defaults fit together: a producer's request timeout (30 s) exceeds the broker's worst acknowledgement
time, batch time + every upload attempt with its backoff + the notification (2 + 15.6 + 5 = 22.6 s);
:meth:`BrokerConfig.worst_ack_seconds` computes it and :class:`BrokerConfig` refuses settings that exceed
``producer_request_timeout_s``. What each batching default costs:

- ``batch_max_bytes`` 16 MiB: a busy topic writes one object per 16 MiB, 64 PUTs per GiB (the floor).
- ``batch_max_ms`` 2000: a quiet topic writes at least one object every 2 s it receives anything, so a
  topic at R MiB/s costs max(64, 512 / R) PUTs per GiB; records wait up to 2 s before their upload starts.
- ``batch_max_messages`` 256: at the producer's default 1 MiB requests a batch seals on size first;
  many small requests seal it early (e.g. 256 x 16 KiB = 4 MiB objects, 256 PUTs per GiB).
- ``max_inflight_bytes`` 256 MiB bounds the memory of open and uploading batches; above it the broker
  stops reading sockets, so producers slow down instead of failing.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from memq._errors import MemqError
from memq._wire import MAX_FRAME_BYTES

__all__ = ["BrokerConfig", "ConfigError", "ProducerConfig", "TlsConfig", "TopicConfig", "load_broker_config"]

MIB = 1024 * 1024


class ConfigError(MemqError):
    """A configuration that cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _address(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port")
    return value


class TlsConfig(_Strict):
    """TLS for the broker's listener (``cert_file``/``key_file``) or a client's connections (``ca_file``)."""

    cert_file: str | None = None
    key_file: str | None = None
    ca_file: str | None = None
    verify: bool = True


class TopicConfig(_Strict):
    name: str = Field(min_length=1, max_length=249)
    notification_topic: str = Field(min_length=1)
    batch_max_bytes: int = Field(default=16 * MIB, gt=0)
    batch_max_messages: int = Field(default=256, gt=0)
    batch_max_ms: int = Field(default=2000, gt=0)
    storage: str | None = None  # this topic's own storage URL; default: the broker's


class BrokerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9192, ge=0, lt=65536)
    advertised_host: str | None = None  # the address TOPIC_METADATA gives producers; default: host
    cluster_brokers: list[str] = Field(default_factory=list)  # other brokers serving the same topics
    locality: str = "n/a"
    # file:///dir (the embedded default: ./memq-data) or s3://bucket/prefix; options in the query string
    storage: str = Field(default_factory=lambda: Path("memq-data").resolve().as_uri())
    s3_endpoint_url: str | None = None  # for s3:// storage, e.g. a MinIO or moto endpoint
    # Notifications go through psc.Producer to topic URIs under this cluster prefix.
    notification_cluster: str = "plaintext:/rn:kafka:local:local_dev::memq:"
    notification_bootstrap: str | None = "127.0.0.1:9092"  # psc.discovery.connect; None: PSC discovery
    notification_config: dict[str, str] = Field(default_factory=dict)  # extra PSC / librdkafka settings
    topics: list[TopicConfig] = Field(default_factory=list)
    max_frame_bytes: int = Field(default=MAX_FRAME_BYTES, gt=64)
    max_inflight_bytes: int = Field(default=256 * MIB, gt=0)
    upload_parallelism: int = Field(default=4, gt=0)
    upload_attempts: int = Field(default=3, gt=0)
    upload_attempt_timeout_s: float = Field(default=5.0, gt=0)
    upload_backoff_s: float = Field(default=0.2, ge=0)
    notify_timeout_s: float = Field(default=5.0, gt=0)
    producer_request_timeout_s: float = Field(default=30.0, gt=0)  # producers' request timeout: acks must come sooner
    tls: TlsConfig | None = None
    metrics_port: int | None = Field(default=None, ge=0, lt=65536)
    shutdown_timeout_s: float = Field(default=30.0, gt=0)
    idle_timeout_s: float = Field(default=900.0, gt=0)  # a connection that sends nothing for this long is closed
    log_level: str = "INFO"

    @field_validator("cluster_brokers", "notification_bootstrap")
    @classmethod
    def _addresses(cls, value: Any) -> Any:
        for item in [value] if isinstance(value, str) else value or ():
            for part in item.split(","):
                _address(part.strip())
        return value

    @field_validator("notification_cluster")
    @classmethod
    def _cluster_prefix(cls, value: str) -> str:
        from psc import parse_topic_uri

        parse_topic_uri(value + "topic")  # raises InvalidUriError (a ValueError) naming what is wrong
        return value

    @model_validator(mode="after")
    def _fits_together(self) -> BrokerConfig:
        names = [t.name for t in self.topics]
        if len(names) != len(set(names)):
            raise ValueError(f"topics are listed twice: {sorted({n for n in names if names.count(n) > 1})}")
        if self.tls is not None and not (self.tls.cert_file and self.tls.key_file):
            raise ValueError("tls needs cert_file and key_file on a broker")
        worst = self.worst_ack_seconds()
        if worst >= self.producer_request_timeout_s:
            raise ValueError(
                f"a batch can take {worst:.1f} s to be acknowledged (batch time + upload attempts + notification),"
                f" not less than producer_request_timeout_s={self.producer_request_timeout_s}"
            )
        return self

    def worst_ack_seconds(self) -> float:
        """The longest a request can wait for its answer: batch time, every upload attempt, backoffs, notify."""
        batch_s = max((t.batch_max_ms for t in self.topics), default=0) / 1000
        backoffs = sum(min(self.upload_backoff_s * 2**i, 2.0) for i in range(self.upload_attempts - 1))
        return float(batch_s + self.upload_attempts * self.upload_attempt_timeout_s + backoffs + self.notify_timeout_s)

    def topic(self, name: str) -> TopicConfig | None:
        return next((t for t in self.topics if t.name == name), None)


class ProducerConfig(_Strict):
    brokers: list[str] = Field(min_length=1)  # bootstrap brokers; the rest come from TOPIC_METADATA
    linger_ms: int = Field(default=10, ge=0)
    max_request_bytes: int = Field(default=1 * MIB, ge=1024, le=MAX_FRAME_BYTES - 1024)
    compression: Literal["none", "gzip", "zstd"] = "zstd"
    # An acknowledgement waits for the broker's batch, its PUT and its notification, so a producer keeps
    # rate x that latency in flight: 128 MiB of records (about four 16 MiB batches at 2:1 compression, one per
    # upload slot of a default broker). The reference's 30 requests / 32 MiB held one batch at a time.
    max_inflight_requests: int = Field(default=128, gt=0)
    max_inflight_bytes: int = Field(default=128 * MIB, gt=0)
    max_block_ms: int = Field(default=10_000, ge=0)  # how long produce() waits for room before raising BufferError
    request_timeout_ms: int = Field(default=30_000, gt=0)  # from sealing a request to its acknowledgement
    retry_backoff_ms: int = Field(default=200, ge=0)
    connect_timeout_ms: int = Field(default=2000, gt=0)
    delivery_report_only_error: bool = False  # delivery callbacks run for failed records only (futures: always)
    # Threads that encode and compress sealed requests (zstd and CRC32 release the GIL); requests still go to
    # the brokers in the order they were sealed.
    encoder_threads: int = Field(default=2, ge=1, le=64)
    tls: TlsConfig | None = None

    @field_validator("brokers")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return [_address(v.strip()) for v in value]


def load_broker_config(path: str | Path) -> BrokerConfig:
    """A broker config from a TOML (or, with a ``.json`` suffix, JSON) file; errors name the file and the field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read broker config {path}: {exc.strerror}") from None
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except ValueError as exc:  # both JSONDecodeError and TOMLDecodeError
        raise ConfigError(f"broker config {path} is not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"broker config {path} must be a mapping of settings")
    try:
        return BrokerConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"broker config {path}: {problems}") from None
