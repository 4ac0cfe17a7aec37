"""PSC configuration: namespaced keys, platform defaults, and their mapping to native librdkafka keys.

Input is a flat mapping such as ``{"psc.project": "ads", "psc.producer.batch.duration.ms": "20"}``.
``psc.*`` keys are generic, ``psc.producer.*`` and ``psc.consumer.*`` belong to one client type. Every key
PSC knows is declared once in :data:`CONFIG_KEYS`; code, validation and ``docs/psc-config.md`` all read
that table, so they cannot drift. Under a client namespace, a key PSC does not know is passed through to
librdkafka with the prefix stripped, provided librdkafka has such a property. An empty value means "use
the backend default". Every problem is collected and reported at once in one :class:`ConfigError`.

``python -m psc._config --markdown`` prints the key reference.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, TypeAdapter, ValidationError

from psc._uri import TopicUri
from psc.common.log import get_logger
from psc.common.settings import ToolkitSettings, describe_validation_error
from psc.errors import ConfigError, InvalidUriError

_log = get_logger("psc.config")

__all__ = [
    "CONFIG_KEYS",
    "REDACTED",
    "ClientType",
    "ConfigKey",
    "PscConfig",
    "check_connect",
    "is_secret_key",
    "render_markdown",
]

ClientType = Literal["producer", "consumer", "admin"]
Scope = Literal["generic", "producer", "consumer", "admin"]
ValueType = type[str] | type[int] | type[bool] | type[float]

REDACTED = "[redacted]"
CLIENT_TYPES: tuple[ClientType, ...] = ("producer", "consumer", "admin")


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """One documented PSC key: its type, platform default and the native librdkafka key it sets.

    ``default=None`` means PSC sets nothing and the backend default applies. ``attr`` names the
    :class:`PscConfig` attribute that carries the value for keys PSC itself acts on.
    """

    name: str
    type: ValueType
    default: object
    native: str | None
    doc: str
    client_type: Scope
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    secret: bool = False
    attr: str = ""
    check: Callable[[Any], str | None] | None = None
    default_text: str = ""  # for docs, when the default is not a literal value

    @property
    def type_text(self) -> str:
        """How the expected type reads in errors and docs: ``int >= 0``, ``one of a, b``."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        text = {str: "string", int: "int", bool: "bool (true/false)", float: "float"}[self.type]
        if self.minimum is not None and self.maximum is not None:
            return f"{text} in [{_num(self.minimum)}, {_num(self.maximum)}]"
        if self.minimum is not None:
            return f"{text} >= {_num(self.minimum)}"
        return text


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_CONNECT_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})")
_SERDE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(:[A-Za-z_][A-Za-z0-9_]*)?")


def check_connect(text: str) -> str | None:
    """Why ``text`` is not a ``host:port[,host:port...]`` bootstrap list, or None when it is."""
    hosts = [part.strip() for part in text.split(",")]
    for host in hosts:
        match = _CONNECT_RE.fullmatch(host)
        if match is None or not 0 < int(match.group(2)) < 65536:
            return f"{host!r} is not host:port (expected host:port[,host:port...])"
    return None


def _check_topic_uri(value: str) -> str | None:
    try:
        TopicUri.parse(value)
    except InvalidUriError as exc:
        return exc.reason
    return None


def _check_serde(value: str) -> str | None:
    if _SERDE_RE.fullmatch(value):
        return None
    return "expected a serde name (bytes, string, json, avro) or a dotted import path"


def _serde_keys(client: ClientType, role: str) -> list[ConfigKey]:
    return [
        ConfigKey(
            f"psc.{client}.{part}.{role}",
            str,
            "bytes",
            None,
            f"{part.capitalize()} serde: bytes, string, json, avro, or an import path "
            "(`pkg.module.Class` or `pkg.module:factory`). PSC-side.",
            client,
            attr=f"{part}_serde",
            check=_check_serde,
        )
        for part in ("key", "value")
    ]


_GENERIC: list[ConfigKey] = [
    ConfigKey(
        "psc.project",
        str,
        None,
        None,
        "Names the application in logs, metrics and config records.",
        "generic",
        default_text="the program's name",
        attr="project",
    ),
    ConfigKey(
        "psc.client.id",
        str,
        None,
        "client.id",
        "Client id sent to brokers; defaults to `psc.project` so broker-side quotas and logs name the application.",
        "generic",
        attr="client_id",
        default_text="`psc.project`",
    ),
    ConfigKey(
        "psc.auto.resolution.enabled",
        bool,
        True,
        None,
        "Automatically remediate known backend errors (retry, reset, throw as typed errors).",
        "generic",
        attr="auto_resolution_enabled",
    ),
    ConfigKey(
        "psc.auto.resolution.retry.count",
        int,
        5,
        None,
        "Attempts before a remediation gives up.",
        "generic",
        minimum=0,
        attr="auto_resolution_retry_count",
    ),
    ConfigKey(
        "psc.auto.resolution.backoff.initial.ms",
        int,
        100,
        None,
        "First retry backoff; doubles per attempt, with jitter.",
        "generic",
        minimum=0,
        attr="auto_resolution_backoff_initial_ms",
    ),
    ConfigKey(
        "psc.auto.resolution.backoff.max.ms",
        int,
        10000,
        None,
        "Upper bound of the retry backoff.",
        "generic",
        minimum=0,
        attr="auto_resolution_backoff_max_ms",
    ),
    ConfigKey(
        "psc.config.logging.enabled",
        bool,
        False,
        None,
        "Report the effective configuration (secrets redacted) once at client start.",
        "generic",
        attr="config_logging_enabled",
    ),
    ConfigKey(
        "psc.config.logging.topic.uri",
        str,
        None,
        None,
        "Topic URI that receives config records; without it only the log line is written.",
        "generic",
        attr="config_logging_topic_uri",
        check=_check_topic_uri,
    ),
    ConfigKey(
        "psc.discovery.connect",
        str,
        None,
        None,
        "Explicit `host:port[,host:port]` bootstrap list; overrides every other discovery provider.",
        "generic",
        attr="discovery_connect",
        check=check_connect,
    ),
    ConfigKey(
        "psc.discovery.file",
        str,
        None,
        None,
        "Discovery file (JSON keyed by cluster prefix); falls back to the `PSC_DISCOVERY_FILE` environment variable.",
        "generic",
        attr="discovery_file",
    ),
    ConfigKey(
        "psc.ssl.ca.location",
        str,
        None,
        None,
        "CA bundle for `secure:` URIs (sets `ssl.ca.location`); the system store when unset.",
        "generic",
        attr="ssl_ca_location",
    ),
    ConfigKey(
        "psc.ssl.certificate.location",
        str,
        None,
        None,
        "Client certificate for `secure:` URIs (sets `ssl.certificate.location`); needs the key too.",
        "generic",
        attr="ssl_certificate_location",
    ),
    ConfigKey(
        "psc.ssl.key.location",
        str,
        None,
        None,
        "Client private key for `secure:` URIs (sets `ssl.key.location`); needs the certificate too.",
        "generic",
        attr="ssl_key_location",
    ),
    ConfigKey(
        "psc.ssl.key.password",
        str,
        None,
        None,
        "Password of the private key (sets `ssl.key.password`). Secret: redacted in config logs.",
        "generic",
        secret=True,
        attr="ssl_key_password",
    ),
    ConfigKey(
        "psc.ssl.reset.before.expiry.seconds",
        int,
        300,
        None,
        "Reset a `secure:` client this long before its certificate expires, to load the renewed one.",
        "generic",
        minimum=0,
        attr="ssl_reset_before_expiry_seconds",
    ),
    ConfigKey(
        "psc.metrics.enabled",
        bool,
        True,
        None,
        "Collect per-topic-URI client metrics.",
        "generic",
        attr="metrics_enabled",
    ),
    ConfigKey(
        "psc.metrics.latency.sample.rate",
        float,
        0.01,
        None,
        "Fraction of messages timed for the produce and end-to-end latency histograms; sampling keeps the hot "
        "path cheap. A producer samples at most about 100 records a second per topic URI.",
        "generic",
        minimum=0.0,
        maximum=1.0,
        attr="latency_sample_rate",
    ),
]

_PRODUCER: list[ConfigKey] = [
    ConfigKey(
        "psc.producer.batch.duration.ms",
        int,
        5,
        "linger.ms",
        "How long to wait to fill a batch (librdkafka alias of `queue.buffering.max.ms`).",
        "producer",
        minimum=0,
    ),
    ConfigKey(
        "psc.producer.batch.size.bytes",
        int,
        None,
        "batch.size",
        "Maximum batch size in bytes.",
        "producer",
        minimum=1,
    ),
    ConfigKey(
        "psc.producer.idempotence.enabled",
        bool,
        True,
        "enable.idempotence",
        "Idempotent producer: no duplicates or reordering on retry. Platform default on.",
        "producer",
    ),
    ConfigKey(
        "psc.producer.acks",
        str,
        "all",
        "acks",
        "Acknowledgements required; `all` (= `-1`) is needed for idempotence and durability.",
        "producer",
        choices=("all", "-1", "0", "1"),
    ),
    ConfigKey(
        "psc.producer.compression.type",
        str,
        "lz4",
        "compression.type",
        "Batch compression; lz4 costs the least producer CPU for a good ratio (zstd compresses more, slower).",
        "producer",
        choices=("none", "gzip", "snappy", "lz4", "zstd"),
    ),
    ConfigKey(
        "psc.producer.retries",
        int,
        None,
        "retries",
        "Send retries (librdkafka alias of `message.send.max.retries`); bounded by the delivery timeout.",
        "producer",
        minimum=0,
    ),
    ConfigKey(
        "psc.producer.request.timeout.ms",
        int,
        None,
        "request.timeout.ms",
        "Broker acknowledgement timeout per produce request.",
        "producer",
        minimum=1,
    ),
    ConfigKey(
        "psc.producer.delivery.timeout.ms",
        int,
        120000,
        "delivery.timeout.ms",
        "Time limit for a message to be delivered (librdkafka alias of `message.timeout.ms`); 2 min, as Java clients.",
        "producer",
        minimum=0,
    ),
    ConfigKey(
        "psc.producer.transactional.id",
        str,
        None,
        "transactional.id",
        "Enables transactions; unique per producer instance.",
        "producer",
    ),
    ConfigKey(
        "psc.producer.transaction.timeout.ms",
        int,
        None,
        "transaction.timeout.ms",
        "Broker-side transaction timeout.",
        "producer",
        minimum=1,
    ),
    ConfigKey(
        "psc.producer.buffer.max.messages",
        int,
        None,
        "queue.buffering.max.messages",
        "Bound of the local send queue, in messages.",
        "producer",
        minimum=1,
    ),
    ConfigKey(
        "psc.producer.buffer.max.kbytes",
        int,
        None,
        "queue.buffering.max.kbytes",
        "Bound of the local send queue, in KiB.",
        "producer",
        minimum=1,
    ),
    ConfigKey(
        "psc.producer.delivery.report.only.error",
        bool,
        None,
        "delivery.report.only.error",
        "Report only failed deliveries: a success costs no Python call, even for a record with its own "
        "callback (records without one cost none by default). Failed records are still remediated, but "
        "delivery callbacks and interceptor acknowledgements run only for failures, `send()` (and so "
        "`psc.aio.AIOProducer`) is refused, its future needing the success report, and produce latency is "
        "not sampled.",
        "producer",
        attr="delivery_report_only_error",
    ),
    *_serde_keys("producer", "serializer"),
]

_CONSUMER: list[ConfigKey] = [
    ConfigKey("psc.consumer.group.id", str, None, "group.id", "Consumer group; required to subscribe.", "consumer"),
    ConfigKey(
        "psc.consumer.offset.auto.reset",
        str,
        "latest",
        "auto.offset.reset",
        "Where to start without a committed offset; `latest` as Kafka clients.",
        "consumer",
        choices=("earliest", "latest", "error"),
    ),
    ConfigKey(
        "psc.consumer.commit.auto.enabled",
        bool,
        None,
        "enable.auto.commit",
        "Periodic automatic commits of the stored offsets (librdkafka's default: on). Set false to commit by hand "
        "after processing, so nothing is skipped on a crash.",
        "consumer",
    ),
    ConfigKey(
        "psc.consumer.commit.auto.interval.ms",
        int,
        None,
        "auto.commit.interval.ms",
        "Automatic commit period.",
        "consumer",
        minimum=0,
    ),
    ConfigKey(
        "psc.consumer.poll.messages.max",
        int,
        500,
        None,
        "Most messages one consume batch returns. PSC-side.",
        "consumer",
        minimum=1,
        attr="poll_messages_max",
    ),
    ConfigKey(
        "psc.consumer.poll.interval.max.ms",
        int,
        None,
        "max.poll.interval.ms",
        "Longest gap between polls before the consumer leaves the group.",
        "consumer",
        minimum=1,
    ),
    ConfigKey(
        "psc.consumer.session.timeout.ms",
        int,
        None,
        "session.timeout.ms",
        "Group session timeout.",
        "consumer",
        minimum=1,
    ),
    ConfigKey(
        "psc.consumer.isolation.level",
        str,
        None,
        "isolation.level",
        "Whether to read messages of open or aborted transactions (librdkafka: `read_committed`).",
        "consumer",
        choices=("read_committed", "read_uncommitted"),
    ),
    ConfigKey(
        "psc.consumer.partition.assignment.strategy",
        str,
        None,
        "partition.assignment.strategy",
        "Assignors, e.g. `range,roundrobin` or `cooperative-sticky`.",
        "consumer",
    ),
    ConfigKey(
        "psc.consumer.fetch.max.bytes",
        int,
        None,
        "fetch.max.bytes",
        "Most bytes one fetch returns.",
        "consumer",
        minimum=1,
    ),
    ConfigKey(
        "psc.consumer.fetch.queue.backoff.ms",
        int,
        50,
        "fetch.queue.backoff.ms",
        "Wait before fetching again once the prefetch queue is full. Platform default 50 ms (librdkafka: 1000): "
        "a consumer that drains its queue in under a second would otherwise idle for the rest of it.",
        "consumer",
        minimum=0,
    ),
    *_serde_keys("consumer", "deserializer"),
]

_ADMIN: list[ConfigKey] = [
    ConfigKey(
        "psc.admin.cluster.uri",
        str,
        None,
        None,
        "Cluster URI for admin calls that name no topic (consumer groups, cluster, broker ids): what "
        "`bootstrap.servers` was. Calls that name topic URIs go to their clusters.",
        "admin",
        attr="admin_cluster_uri",
        check=_check_topic_uri,
    ),
]

CONFIG_KEYS: tuple[ConfigKey, ...] = (*_GENERIC, *_PRODUCER, *_CONSUMER, *_ADMIN)
_BY_NAME: dict[str, ConfigKey] = {key.name: key for key in CONFIG_KEYS}


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# librdkafka 2.x properties (from its CONFIGURATION.md) that may be passed through; callbacks and
# object-valued properties are left out, PSC owns those.
_LIBRDKAFKA_COMMON = _names(
    """
    allow.auto.create.topics api.version.fallback.ms api.version.request api.version.request.timeout.ms
    bootstrap.servers broker.address.family broker.address.ttl broker.version.fallback builtin.features
    client.dns.lookup client.id client.rack connections.max.idle.ms debug enable.metrics.push
    enable.random.seed enable.sasl.oauthbearer.unsecure.jwt enable.ssl.certificate.verification
    https.ca.location https.ca.pem log.connection.close log.queue log.thread.name log_level max.in.flight
    max.in.flight.requests.per.connection message.copy.max.bytes message.max.bytes metadata.broker.list
    metadata.max.age.ms metadata.recovery.rebootstrap.trigger.ms metadata.recovery.strategy
    plugin.library.paths receive.message.max.bytes reconnect.backoff.jitter.ms reconnect.backoff.max.ms
    reconnect.backoff.ms retry.backoff.max.ms retry.backoff.ms sasl.kerberos.keytab
    sasl.kerberos.kinit.cmd sasl.kerberos.min.time.before.relogin sasl.kerberos.principal
    sasl.kerberos.service.name sasl.mechanism sasl.mechanisms sasl.oauthbearer.assertion.algorithm
    sasl.oauthbearer.assertion.claim.aud sasl.oauthbearer.assertion.claim.exp.seconds
    sasl.oauthbearer.assertion.claim.iss sasl.oauthbearer.assertion.claim.jti.include
    sasl.oauthbearer.assertion.claim.nbf.seconds sasl.oauthbearer.assertion.claim.sub
    sasl.oauthbearer.assertion.file sasl.oauthbearer.assertion.jwt.template.file
    sasl.oauthbearer.assertion.private.key.file sasl.oauthbearer.assertion.private.key.passphrase
    sasl.oauthbearer.assertion.private.key.pem sasl.oauthbearer.client.credentials.client.id
    sasl.oauthbearer.client.credentials.client.secret sasl.oauthbearer.client.id
    sasl.oauthbearer.client.secret sasl.oauthbearer.config sasl.oauthbearer.extensions
    sasl.oauthbearer.grant.type sasl.oauthbearer.metadata.authentication.type sasl.oauthbearer.method
    sasl.oauthbearer.scope sasl.oauthbearer.sub.claim.name sasl.oauthbearer.token.endpoint.url
    sasl.password sasl.username security.protocol socket.blocking.max.ms
    socket.connection.setup.timeout.ms socket.keepalive.enable socket.max.fails socket.nagle.disable
    socket.receive.buffer.bytes socket.send.buffer.bytes socket.timeout.ms ssl.ca.certificate.stores
    ssl.ca.location ssl.ca.pem ssl.certificate.location ssl.certificate.pem ssl.cipher.suites
    ssl.crl.location ssl.curves.list ssl.endpoint.identification.algorithm ssl.engine.id
    ssl.engine.location ssl.key.location ssl.key.password ssl.key.pem ssl.keystore.location
    ssl.keystore.password ssl.providers ssl.sigalgs.list statistics.interval.ms topic.blacklist
    topic.metadata.propagation.max.ms topic.metadata.refresh.fast.cnt
    topic.metadata.refresh.fast.interval.ms topic.metadata.refresh.interval.ms
    topic.metadata.refresh.sparse
    """
)
_LIBRDKAFKA: dict[ClientType, frozenset[str]] = {
    "producer": _LIBRDKAFKA_COMMON
    | _names(
        """
        acks batch.num.messages batch.size compression.codec compression.level compression.type
        delivery.report.only.error delivery.timeout.ms enable.gapless.guarantee enable.idempotence
        linger.ms message.send.max.retries message.timeout.ms partitioner produce.offset.report
        queue.buffering.backpressure.threshold queue.buffering.max.kbytes queue.buffering.max.messages
        queue.buffering.max.ms queuing.strategy request.required.acks request.timeout.ms retries
        sticky.partitioning.linger.ms transaction.timeout.ms transactional.id
        """
    ),
    "consumer": _LIBRDKAFKA_COMMON
    | _names(
        """
        auto.commit.enable auto.commit.interval.ms auto.offset.reset check.crcs
        consume.callback.max.messages coordinator.query.interval.ms enable.auto.commit
        enable.auto.offset.store enable.partition.eof fetch.error.backoff.ms fetch.max.bytes
        fetch.message.max.bytes fetch.min.bytes fetch.queue.backoff.ms fetch.wait.max.ms group.id
        group.instance.id group.protocol group.protocol.type group.remote.assignor heartbeat.interval.ms
        isolation.level max.partition.fetch.bytes max.poll.interval.ms max.poll.records
        offset.store.method offset.store.path offset.store.sync.interval.ms partition.assignment.strategy
        queued.max.messages.kbytes queued.min.messages session.timeout.ms share.acknowledgement.mode
        """
    ),
    "admin": _LIBRDKAFKA_COMMON,
}

# librdkafka alias -> canonical property, so a pass-through alias cannot fight a PSC-mapped key.
_NATIVE_ALIASES = {
    "linger.ms": "queue.buffering.max.ms",
    "acks": "request.required.acks",
    "retries": "message.send.max.retries",
    "compression.type": "compression.codec",
    "delivery.timeout.ms": "message.timeout.ms",
    "enable.auto.commit": "auto.commit.enable",
    "max.partition.fetch.bytes": "fetch.message.max.bytes",
    "max.in.flight": "max.in.flight.requests.per.connection",
    "sasl.mechanism": "sasl.mechanisms",
    "bootstrap.servers": "metadata.broker.list",
}

# Connection settings come from the topic URI through discovery, never from pass-through.
_DISCOVERY_OWNED = {
    "metadata.broker.list": "the topic URI (discovery; psc.discovery.connect to override)",
    "security.protocol": "the topic URI protocol (secure:/ for TLS)",
    "ssl.ca.location": "psc.ssl.ca.location",
    "ssl.certificate.location": "psc.ssl.certificate.location",
    "ssl.key.location": "psc.ssl.key.location",
    "ssl.key.password": "psc.ssl.key.password",
}

_SECRET_RE = re.compile(r"password|passphrase|secret|token|credential|jaas|\.pem$|private\.key")


def is_secret_key(name: str) -> bool:
    """Whether a (PSC or native) key holds a secret that must never be logged."""
    key = _BY_NAME.get(name)
    return (key is not None and key.secret) or bool(_SECRET_RE.search(name))


def _canonical(native: str) -> str:
    return _NATIVE_ALIASES.get(native, native)


_OWNED_NATIVE: dict[str, str] = {_canonical(k.native): k.name for k in CONFIG_KEYS if k.native}


def _is_owned(native: str) -> bool:
    return _canonical(native) in _OWNED_NATIVE or _canonical(native) in _DISCOVERY_OWNED


class PscConfig(ToolkitSettings):
    """Validated PSC configuration of one client; build it with :meth:`from_mapping`.

    ``native`` holds the librdkafka settings for the client type without bootstrap or security, which
    discovery adds per cluster. ``settings`` holds every PSC key in scope with its effective value
    (None: the backend default applies); ``passthrough`` the native keys passed through unchanged.
    """

    project: str = Field(min_length=1)
    client_type: ClientType
    client_id: str | None = None
    auto_resolution_enabled: bool = True
    auto_resolution_retry_count: int = Field(default=5, ge=0)
    auto_resolution_backoff_initial_ms: int = Field(default=100, ge=0)
    auto_resolution_backoff_max_ms: int = Field(default=10000, ge=0)
    config_logging_enabled: bool = False
    config_logging_topic_uri: str | None = None
    discovery_connect: str | None = None
    discovery_file: str | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    ssl_reset_before_expiry_seconds: int = Field(default=300, ge=0)
    metrics_enabled: bool = True
    latency_sample_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    key_serde: str = "bytes"
    value_serde: str = "bytes"
    poll_messages_max: int = Field(default=500, ge=1)
    delivery_report_only_error: bool | None = None
    admin_cluster_uri: str | None = None
    native: dict[str, str] = Field(default_factory=dict, repr=False)
    settings: dict[str, Any] = Field(default_factory=dict, repr=False)
    passthrough: dict[str, str] = Field(default_factory=dict, repr=False)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object], client_type: ClientType = "producer") -> Self:
        """Validate ``mapping`` for one client type; :class:`ConfigError` lists every problem."""
        if client_type not in CLIENT_TYPES:
            raise ConfigError(f"client_type must be one of {', '.join(CLIENT_TYPES)}, got {client_type!r}")
        reader = _Reader(client_type)
        for key, value in mapping.items():
            reader.read(key, value)
        settings = reader.resolve()
        if reader.problems:
            raise ConfigError(reader.problems)
        if reader.ignored:
            _log.warning(
                "config keys of another client type are ignored",
                client_type=client_type,
                keys=sorted(set(reader.ignored)),
            )
        fields = {k.attr: settings[k.name] for k in reader.in_scope() if k.attr}
        try:
            return cls.model_validate(
                {
                    **fields,
                    "client_type": client_type,
                    "native": reader.native(settings),
                    "settings": settings,
                    "passthrough": dict(reader.passthrough[client_type]),
                }
            )
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc)) from None

    def effective(self) -> dict[str, Any]:
        """Every PSC key in force with its value (None: backend default), pass-through keys included."""
        values = {name: _plain(value) for name, value in self.settings.items()}
        prefix = f"psc.{self.client_type}."
        values.update({prefix + name: value for name, value in self.passthrough.items()})
        return dict(sorted(values.items()))

    def redacted(self) -> dict[str, Any]:
        """:meth:`effective` with every secret value replaced by ``"[redacted]"``."""
        return {
            name: REDACTED if value is not None and is_secret_key(name) else value
            for name, value in self.effective().items()
        }


def _plain(value: object) -> object:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class _Reader:
    """Collects typed values, pass-through keys and problems from one raw mapping."""

    def __init__(self, client_type: ClientType) -> None:
        self.client_type = client_type
        self.problems: list[str] = []
        self.given: dict[str, object] = {}
        self.sources: dict[str, str] = {}  # PSC key -> the key it was written as, to catch duplicates
        self.passthrough: dict[ClientType, dict[str, str]] = {"producer": {}, "consumer": {}, "admin": {}}
        # Another client type's keys, checked but not applied: one dict may configure several clients,
        # as with librdkafka, which ignores a consumer property given to a producer with a warning.
        self.ignored: list[str] = []

    def in_scope(self) -> list[ConfigKey]:
        return [k for k in CONFIG_KEYS if k.client_type in ("generic", self.client_type)]

    def read(self, key: object, value: object) -> None:
        if not isinstance(key, str):
            self.problems.append(f"config keys must be strings, got {key!r}")
        elif key in _BY_NAME:
            self._read_known(_BY_NAME[key], value, key)
        elif key.startswith(("psc.producer.", "psc.consumer.", "psc.admin.")):
            client: ClientType = next(c for c in CLIENT_TYPES if key.startswith(f"psc.{c}."))
            if client != self.client_type:
                self.ignored.append(key)
            native = key[len(f"psc.{client}.") :]
            owner = _OWNED_NATIVE.get(_canonical(native))
            if owner:
                self._read_alias(client, key, _BY_NAME[owner], value)
            else:
                self._read_passthrough(client, key, native, value)
        elif key.startswith("psc.") and key[4:] in _LIBRDKAFKA_COMMON and not _OWNED_NATIVE.get(_canonical(key[4:])):
            # A librdkafka property every client has (debug, statistics.interval.ms, socket.*): one key
            # serves a dict shared by a producer and a consumer, as the bare property does in librdkafka.
            self._read_passthrough(self.client_type, key, key[4:], value)
        else:
            self.problems.append(_unknown_key(key, self.client_type))

    def _read_known(self, key: ConfigKey, value: object, written: str) -> None:
        if key.client_type not in ("generic", self.client_type):
            self.ignored.append(written)
        if key.name in self.sources:
            first = self.sources[key.name]
            self.problems.append(f"{written}: sets the same property as {first}; set it once")
            return
        self.sources[key.name] = written
        if _is_empty(value):
            self.given[key.name] = None
            return
        typed, problem = _coerce(key, value)
        if problem:
            self.problems.append(f"{written}={value!r}: {problem}")
        else:
            self.given[key.name] = typed

    def _read_alias(self, client: ClientType, key: str, owner: ConfigKey, value: object) -> None:
        """A native key PSC maps, written under a client namespace: it sets the owning PSC key."""
        if owner.client_type not in ("generic", client):
            self.problems.append(f"{key}: not a librdkafka {client} property")
        elif owner.client_type == "generic" and client != self.client_type:
            # Another client type's setting: check it, but it must not change this client's value.
            problem = None if _is_empty(value) else _coerce(owner, value)[1]
            if problem:
                self.problems.append(f"{key}={value!r}: {problem}")
        else:
            self._read_known(owner, value, key)

    def _read_passthrough(self, client: ClientType, key: str, native: str, value: object) -> None:
        problem = _passthrough_problem(client, native)
        if problem:
            self.problems.append(f"{key}: {problem}")
        elif not _is_empty(value):
            text = _native_text(value)
            if text is None:
                self.problems.append(f"{key}={value!r}: expected a string, number or bool")
            else:
                self.passthrough[client][native] = text

    def resolve(self) -> dict[str, Any]:
        """Effective value of every key in scope: given, else platform default; None = backend default."""
        settings: dict[str, Any] = {k.name: self.given.get(k.name, k.default) for k in self.in_scope()}
        for key in self.in_scope():
            if settings[key.name] is None and key.native is None and key.default is not None:
                settings[key.name] = key.default  # PSC-side keys have no backend default to fall back on
        if not settings["psc.project"]:
            settings["psc.project"] = default_project()
        settings["psc.client.id"] = settings["psc.client.id"] or settings["psc.project"]
        initial = settings["psc.auto.resolution.backoff.initial.ms"]
        ceiling = settings["psc.auto.resolution.backoff.max.ms"]
        if initial is not None and ceiling is not None and ceiling < initial:
            self.problems.append(
                f"psc.auto.resolution.backoff.max.ms={ceiling} is below "
                f"psc.auto.resolution.backoff.initial.ms={initial}"
            )
        return settings

    def native(self, settings: Mapping[str, Any]) -> dict[str, str]:
        native: dict[str, str] = {}
        for key in self.in_scope():
            value = settings[key.name]
            if key.native and value is not None:
                native[key.native] = _native_text(value) or ""
        native.update(self.passthrough[self.client_type])
        return native


def default_project() -> str:
    """The running program's name (``orders`` for ``python orders.py``), as the project when none is set."""
    name = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else ""
    if name in ("", "-c", "-m", "__main__") or not _PROJECT_NAME.fullmatch(name):
        return "psc-application"
    return name


_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@cache
def _adapter(key: ConfigKey) -> TypeAdapter[Any]:
    if key.type in (int, float):
        bounded: Any = Annotated[key.type, Field(ge=key.minimum, le=key.maximum)]
        return TypeAdapter(bounded)
    return TypeAdapter(key.type)


def _coerce(key: ConfigKey, value: object) -> tuple[object, str | None]:
    """The typed value of ``value`` for ``key``, or the reason it does not fit."""
    expected = f"expected {key.type_text}"
    if key.type is str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return None, expected
        value = str(value).strip()
    elif key.type is not bool and isinstance(value, bool):
        return None, expected
    elif isinstance(value, str):
        value = value.strip()
    try:
        typed = _adapter(key).validate_python(value)
    except ValidationError:
        return None, expected
    if key.choices:
        typed = str(typed).lower()
        if typed not in key.choices:
            return None, expected
    problem = key.check(typed) if key.check else None
    if problem:
        return None, problem
    return (SecretStr(typed) if key.secret else typed), None


def _native_text(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, str | int | float):
        return str(value).strip()
    return None


def _passthrough_problem(client: ClientType, native: str) -> str | None:
    canonical = _canonical(native)
    if canonical in _DISCOVERY_OWNED:
        return f"{native} is set by PSC; use {_DISCOVERY_OWNED[canonical]}"
    if native in _LIBRDKAFKA[client]:
        return None
    prefix = f"psc.{client}."
    # Compared without the shared prefix, which would make every key look alike; a native key PSC maps is
    # accepted under its own name too (psc.producer.linger.ms), so it is a fine suggestion.
    candidates = [k.name[len(prefix) :] for k in CONFIG_KEYS if k.client_type == client]
    candidates += sorted(_LIBRDKAFKA[client] - _DISCOVERY_OWNED.keys())
    close = difflib.get_close_matches(native, list(dict.fromkeys(candidates)), n=3, cutoff=0.75)
    hint = "; did you mean " + " or ".join(repr(prefix + c) for c in close) + "?" if close else ""
    return f"unknown key: neither a PSC key nor a librdkafka {client} property{hint}"


def _unknown_key(key: str, client_type: ClientType) -> str:
    canonical = _canonical(key)
    if canonical in _OWNED_NATIVE:
        return f"unknown key {key!r}; did you mean {_OWNED_NATIVE[canonical]!r}?"
    if canonical in _DISCOVERY_OWNED:
        return f"unknown key {key!r}: set by PSC; use {_DISCOVERY_OWNED[canonical]}"
    if key in _LIBRDKAFKA_COMMON:
        return f"unknown key {key!r}; did you mean 'psc.{key}'?"
    for client in (client_type, *CLIENT_TYPES):
        if key in _LIBRDKAFKA[client]:
            return f"unknown key {key!r}; did you mean 'psc.{client}.{key}'?"
    return f"unknown key {key!r}{_suggest(key, list(_BY_NAME))}"


def _suggest(key: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(candidates), n=3, cutoff=0.75)
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?" if close else ""


def render_markdown() -> str:
    """The key reference, ``docs/psc-config.md``, generated from :data:`CONFIG_KEYS`."""
    lines = [
        "# PSC configuration keys",
        "",
        "Generated by `python -m psc._config --markdown` from `psc/_config.py`; do not edit by hand.",
        "",
        "- Generic keys start with `psc.`, client keys with `psc.producer.`, `psc.consumer.` or `psc.admin.`.",
        "- Any other key under a client namespace is passed to librdkafka with the prefix stripped, if",
        "  librdkafka has that property: `psc.producer.queue.buffering.max.messages` sets",
        "  `queue.buffering.max.messages`. A native key that PSC maps (or a librdkafka alias of it) sets",
        "  the PSC key: `psc.producer.linger.ms` is `psc.producer.batch.duration.ms`; setting both is an",
        "  error. Bootstrap servers and TLS settings come from the topic URI, not from configuration.",
        "- A librdkafka property every client has (`debug`, `statistics.interval.ms`, `socket.*`...) may also be",
        "  given as `psc.<property>`, for all clients at once: `psc.debug` sets `debug`.",
        "- A client takes `psc.*` keys and its own namespace's. Keys of another client type (`psc.consumer.*`",
        "  given to a producer) are checked, then ignored with a warning, so one dict can configure several",
        "  clients, as with librdkafka.",
        "- The callbacks confluent-kafka takes in its configuration (`error_cb`, `stats_cb`, `throttle_cb`,",
        "  `oauth_cb`, `logger`, and `on_delivery` for a producer or `on_commit` for a consumer) are taken under",
        "  their plain names or as `psc.producer.<name>`/`psc.consumer.<name>`; see `docs/psc-api.md`.",
        "- An empty value means the backend (librdkafka) default; *backend* in the Default column too.",
        "- Every problem is reported at once; secrets are redacted in config logs.",
        "",
    ]
    titles = {"generic": "Generic", "producer": "Producer", "consumer": "Consumer", "admin": "Admin"}
    for scope, title in titles.items():
        lines += [
            f"## {title}",
            "",
            "| Key | Type | Default | Native key | Description |",
            "|---|---|---|---|---|",
        ]
        lines += [_markdown_row(k) for k in CONFIG_KEYS if k.client_type == scope]
        lines.append("")
    return "\n".join(lines)


def _markdown_row(key: ConfigKey) -> str:
    if key.default_text:
        default = key.default_text
    elif key.default is None:
        default = "*backend*" if key.native else "unset"
    else:
        default = f"`{str(key.default).lower() if isinstance(key.default, bool) else key.default}`"
    native = f"`{key.native}`" if key.native else "PSC-side"
    return f"| `{key.name}` | {key.type_text} | {default} | {native} | {key.doc} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m psc._config", description="PSC configuration keys.")
    parser.add_argument("--markdown", action="store_true", help="print the key reference as Markdown")
    args = parser.parse_args(argv)
    if args.markdown:
        print(render_markdown(), end="")
    else:
        parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
