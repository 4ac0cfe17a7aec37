"""Service discovery: a topic URI's cluster prefix becomes bootstrap servers and security settings.

Providers are tried in priority order and the first that knows the cluster wins:

1. explicit configuration, ``psc.discovery.connect`` (one bootstrap list for every cluster);
2. the ``PSC_DISCOVERY`` environment variable, JSON in the discovery-file format;
3. the discovery file named by ``psc.discovery.file`` or the ``PSC_DISCOVERY_FILE`` environment variable;
4. plugins: providers registered with :func:`register_discovery_provider`, then entry points of the
   ``psc.discovery`` group.

The discovery format is a JSON object keyed by cluster prefix (``secure:/rn:kafka:prod:aws_us-west-1::c1:``)
or by a protocol-less RN prefix (``rn:kafka:prod:aws_us-west-1::c1:``, matching both protocols); each
entry holds ``connect`` (``host:port[,host:port...]``) and optional ``security.protocol``, ``ssl.*`` and
``sasl.*`` settings. ``secure:`` URIs always get TLS; certificates come from ``psc.ssl.*`` configuration
or the entry, never from code.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

from psc._config import REDACTED, PscConfig, check_connect, is_secret_key
from psc._uri import TopicUri
from psc.errors import DiscoveryError, InvalidUriError

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_DISCOVERY",
    "ENV_DISCOVERY_FILE",
    "DiscoveryProvider",
    "ServiceEndpoint",
    "discover",
    "register_discovery_provider",
]

ENV_DISCOVERY = "PSC_DISCOVERY"
ENV_DISCOVERY_FILE = "PSC_DISCOVERY_FILE"
ENTRY_POINT_GROUP = "psc.discovery"

_SECURE_PROTOCOLS = {"SSL", "SASL_SSL"}
_PLAIN_PROTOCOLS = {"PLAINTEXT", "SASL_PLAINTEXT"}
_TLS_SETTINGS = (
    ("ssl_ca_location", "ssl.ca.location"),
    ("ssl_certificate_location", "ssl.certificate.location"),
    ("ssl_key_location", "ssl.key.location"),
)


@dataclass(frozen=True, slots=True)
class ServiceEndpoint:
    """Where a cluster is and how to talk to it: bootstrap servers and native security settings."""

    bootstrap: str
    security: dict[str, str] = field(default_factory=dict, hash=False)
    provider: str = field(default="", compare=False)  # which provider found it, for logs and errors

    def native(self) -> dict[str, str]:
        """The librdkafka settings: ``bootstrap.servers`` plus the security settings."""
        return {"bootstrap.servers": self.bootstrap, **self.security}

    def __repr__(self) -> str:
        shown = {k: REDACTED if is_secret_key(k) else v for k, v in self.security.items()}
        return f"ServiceEndpoint(bootstrap={self.bootstrap!r}, security={shown!r}, provider={self.provider!r})"


@runtime_checkable
class DiscoveryProvider(Protocol):
    """Turns a topic URI into a :class:`ServiceEndpoint`, or None when it does not know the cluster."""

    @property
    def name(self) -> str:
        """How errors and logs name this provider."""
        ...

    def resolve(self, uri: TopicUri, config: PscConfig) -> ServiceEndpoint | None: ...


ResolveFunction = Callable[[TopicUri, PscConfig], "ServiceEndpoint | None"]


@dataclass(frozen=True, slots=True)
class _FunctionProvider:
    name: str
    function: ResolveFunction

    def resolve(self, uri: TopicUri, config: PscConfig) -> ServiceEndpoint | None:
        return self.function(uri, config)


def discover(uri: TopicUri | str, config: PscConfig) -> ServiceEndpoint:
    """Connection settings for the cluster of ``uri``; :class:`DiscoveryError` when no provider knows it."""
    parsed = TopicUri.parse(uri)
    tried: list[str] = []
    for provider in _providers(config):
        tried.append(provider.name)
        endpoint = _ask(provider, parsed, config)
        if endpoint is not None:
            return _with_security(parsed, config, replace(endpoint, provider=provider.name))
    mismatch = _protocol_mismatch(parsed, config)
    if mismatch is not None:
        raise DiscoveryError(mismatch, uri=str(parsed), providers=tried)
    raise DiscoveryError(
        f"no discovery provider knows cluster {parsed.cluster_prefix!r} (topic URI {str(parsed)!r}); "
        f"tried: {'; '.join(tried)}",
        uri=str(parsed),
        providers=tried,
    )


def _protocol_mismatch(uri: TopicUri, config: PscConfig) -> str | None:
    """Why a cluster known under another protocol (``plaintext:`` vs ``secure:``) was not found, if so."""
    sources: list[tuple[str, Mapping[str, ServiceEndpoint]]] = []
    text = os.environ.get(ENV_DISCOVERY)
    if text:
        sources.append((f"environment {ENV_DISCOVERY}", _parse_environment(text)))
    path = config.discovery_file or os.environ.get(ENV_DISCOVERY_FILE)
    if path:
        sources.append((f"file {path}", _load_file(path)))
    rn = uri.cluster_uri.rn
    for origin, entries in sources:
        known = [key for key in entries if ":/" in key and key.split(":/", 1)[1] == rn]
        if known:
            return (
                f"protocol mismatch for {str(uri)!r}: {origin} knows cluster {rn!r} only as "
                f"{' and '.join(repr(k) for k in known)}, not with protocol {uri.protocol!r}; "
                f"use that protocol in the URI or add a {uri.protocol!r} entry for the cluster"
            )
    return None


def _ask(provider: DiscoveryProvider, uri: TopicUri, config: PscConfig) -> ServiceEndpoint | None:
    try:
        endpoint = provider.resolve(uri, config)
    except DiscoveryError:
        raise
    except Exception as exc:
        raise DiscoveryError(
            f"discovery provider {provider.name} failed for {str(uri)!r}: {exc}", uri=str(uri)
        ) from exc
    if endpoint is not None and not isinstance(endpoint, ServiceEndpoint):
        raise DiscoveryError(
            f"discovery provider {provider.name} returned {type(endpoint).__name__}, not a ServiceEndpoint",
            uri=str(uri),
        )
    return endpoint


def _providers(config: PscConfig) -> list[DiscoveryProvider]:
    file_path = config.discovery_file or os.environ.get(ENV_DISCOVERY_FILE) or None
    return [
        _ExplicitProvider(config.discovery_connect),
        _EnvironmentProvider(os.environ.get(ENV_DISCOVERY) or None),
        _FileProvider(file_path),
        *_REGISTERED,
        *_entry_point_providers(),
    ]


@dataclass(frozen=True, slots=True)
class _ExplicitProvider:
    connect: str | None

    @property
    def name(self) -> str:
        return "config psc.discovery.connect" + ("" if self.connect else " (not set)")

    def resolve(self, uri: TopicUri, config: PscConfig) -> ServiceEndpoint | None:
        return ServiceEndpoint(_normalize_connect(self.connect)) if self.connect else None


@dataclass(frozen=True, slots=True)
class _EnvironmentProvider:
    text: str | None

    @property
    def name(self) -> str:
        return f"environment {ENV_DISCOVERY}" + ("" if self.text else " (not set)")

    def resolve(self, uri: TopicUri, config: PscConfig) -> ServiceEndpoint | None:
        return _lookup(_parse_environment(self.text), uri) if self.text else None


@dataclass(frozen=True, slots=True)
class _FileProvider:
    path: str | None

    @property
    def name(self) -> str:
        if self.path:
            return f"file {self.path}"
        return f"file (neither psc.discovery.file nor {ENV_DISCOVERY_FILE} set)"

    def resolve(self, uri: TopicUri, config: PscConfig) -> ServiceEndpoint | None:
        return _lookup(_load_file(self.path), uri) if self.path else None


def _lookup(entries: Mapping[str, ServiceEndpoint], uri: TopicUri) -> ServiceEndpoint | None:
    """An entry for the exact cluster prefix wins over one for the protocol-less RN prefix."""
    return entries.get(uri.cluster_prefix) or entries.get(uri.cluster_uri.rn)


@cache
def _parse_environment(text: str) -> dict[str, ServiceEndpoint]:
    return _parse_entries(_decode(text, f"environment variable {ENV_DISCOVERY}"), f"{ENV_DISCOVERY}")


_FILE_CACHE: dict[str, tuple[int, int, dict[str, ServiceEndpoint]]] = {}
_FILE_LOCK = threading.Lock()


def _load_file(path: str) -> dict[str, ServiceEndpoint]:
    """The parsed discovery file, read again only when its mtime or size changes."""
    try:
        stat = Path(path).stat()
    except OSError as exc:
        raise DiscoveryError(f"discovery file {path} cannot be read: {exc.strerror or exc}") from exc
    with _FILE_LOCK:
        cached = _FILE_CACHE.get(path)
        if cached and cached[:2] == (stat.st_mtime_ns, stat.st_size):
            return cached[2]
    origin = f"discovery file {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DiscoveryError(f"{origin} cannot be read: {exc}") from exc
    entries = _parse_entries(_decode(text, origin), origin)
    with _FILE_LOCK:
        _FILE_CACHE[path] = (stat.st_mtime_ns, stat.st_size, entries)
    return entries


def _decode(text: str, origin: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DiscoveryError(f"{origin} is not valid JSON: {exc}") from exc


def _parse_entries(data: object, origin: str) -> dict[str, ServiceEndpoint]:
    if not isinstance(data, dict):
        raise DiscoveryError(f"{origin} must be a JSON object keyed by cluster prefix")
    return {_entry_key(key, origin): _parse_entry(key, value, origin) for key, value in data.items()}


def _entry_key(key: str, origin: str) -> str:
    """Canonical lookup key: a cluster prefix, or the RN prefix when the key has no protocol."""
    try:
        uri = TopicUri.parse(key)
    except InvalidUriError as exc:
        raise DiscoveryError(f"{origin}: entry {key!r} is not a cluster prefix: {exc.reason}") from exc
    if not uri.is_cluster:
        raise DiscoveryError(f"{origin}: entry {key!r} names a topic; keys are cluster prefixes ending in ':'")
    return uri.rn if key.startswith("rn:") else uri.cluster_prefix


def _parse_entry(key: str, value: object, origin: str) -> ServiceEndpoint:
    where = f"{origin}: entry {key!r}"
    if not isinstance(value, dict):
        raise DiscoveryError(f"{where} must be a JSON object with 'connect'")
    connect = value.get("connect")
    if not isinstance(connect, str) or not connect.strip():
        raise DiscoveryError(f"{where} has no 'connect' (host:port[,host:port...])")
    problem = check_connect(connect)
    if problem:
        raise DiscoveryError(f"{where}: connect {problem}")
    security: dict[str, str] = {}
    for name, setting in value.items():
        if name == "connect":
            continue
        if not name.startswith(("ssl.", "sasl.")) and name != "security.protocol":
            raise DiscoveryError(f"{where}: unsupported setting {name!r} (connect, security.protocol, ssl.*, sasl.*)")
        if not isinstance(setting, str):
            raise DiscoveryError(f"{where}: {name} must be a string, got {setting!r}")
        security[name] = setting
    return ServiceEndpoint(_normalize_connect(connect), security)


def _normalize_connect(connect: str) -> str:
    return ",".join(part.strip() for part in connect.split(","))


def _with_security(uri: TopicUri, config: PscConfig, endpoint: ServiceEndpoint) -> ServiceEndpoint:
    """Make the endpoint's security agree with the URI: TLS exactly for ``secure:``."""
    security = dict(endpoint.security)
    protocol = security.get("security.protocol", "").upper()
    where = f"{endpoint.provider} for {str(uri)!r}"
    if uri.protocol == "secure":
        if protocol and protocol not in _SECURE_PROTOCOLS:
            raise DiscoveryError(f"{where}: a secure: URI needs TLS, got security.protocol={protocol}", uri=str(uri))
        security["security.protocol"] = protocol or "SSL"
        security.update(_tls_from_config(config))
        _check_key_pair(security, where, str(uri))
    elif uri.protocol == "plaintext":
        if protocol and protocol not in _PLAIN_PROTOCOLS:
            raise DiscoveryError(f"{where}: a plaintext: URI cannot use security.protocol={protocol}", uri=str(uri))
        security["security.protocol"] = protocol or "PLAINTEXT"
    return replace(endpoint, security=security)


def _tls_from_config(config: PscConfig) -> dict[str, str]:
    """``psc.ssl.*`` settings; explicit configuration overrides what discovery found."""
    tls = {native: value for attr, native in _TLS_SETTINGS if (value := getattr(config, attr))}
    if config.ssl_key_password is not None:
        tls["ssl.key.password"] = config.ssl_key_password.get_secret_value()
    return tls


def _check_key_pair(security: Mapping[str, str], where: str, uri: str) -> None:
    has_cert = "ssl.certificate.location" in security
    has_key = "ssl.key.location" in security
    if has_cert != has_key:
        missing = "ssl.key.location" if has_cert else "ssl.certificate.location"
        raise DiscoveryError(
            f"{where}: the client certificate and key come in pairs; {missing} is missing "
            f"(set psc.{missing} or add it to the discovery entry)",
            uri=uri,
        )


_REGISTERED: list[DiscoveryProvider] = []


def register_discovery_provider(
    provider: DiscoveryProvider | ResolveFunction, *, name: str | None = None
) -> Callable[[], None]:
    """Add a provider tried after the built-in ones; returns a function that removes it again."""
    wrapped = _as_provider(provider, name)
    _REGISTERED.append(wrapped)

    def unregister() -> None:
        if wrapped in _REGISTERED:
            _REGISTERED.remove(wrapped)

    return unregister


def _as_provider(provider: object, name: str | None) -> DiscoveryProvider:
    label = name or getattr(provider, "name", None) or getattr(provider, "__qualname__", None) or repr(provider)
    resolve = getattr(provider, "resolve", None)
    if callable(resolve):
        return _FunctionProvider(f"plugin {label}", resolve)
    if callable(provider):
        return _FunctionProvider(f"plugin {label}", provider)
    raise TypeError(f"a discovery provider needs resolve(uri, config), got {provider!r}")


@cache
def _entry_point_providers() -> tuple[DiscoveryProvider, ...]:
    """Providers from the ``psc.discovery`` entry points; a class is instantiated without arguments."""
    providers: list[DiscoveryProvider] = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = point.load()
            providers.append(_as_provider(loaded() if isinstance(loaded, type) else loaded, point.name))
        except Exception as exc:  # a broken plugin must not hide the providers that work
            providers.append(_FunctionProvider(f"plugin {point.name} (failed to load: {exc})", _nothing))
    return tuple(providers)


def _nothing(uri: TopicUri, config: PscConfig) -> ServiceEndpoint | None:
    return None
