"""Backend registry: PSC finds backends by the URI's service name.

Backends are installed through the ``psc.backends`` entry-point group (``kafka`` ships with PSC; other
packages, such as MemQ, register their own) or programmatically with :func:`register_backend`. Entry points
are loaded on first use, so importing PSC never imports a backend package.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from psc._uri import TopicUri
from psc.backends.base import (
    Backend,
    BackendConsumer,
    BackendPartition,
    BackendProducer,
    ClusterMetadata,
    NativeError,
    NativeRecord,
    PartitionMetadata,
    TopicMetadata,
)
from psc.errors import UnknownBackendError

if TYPE_CHECKING:
    from psc._config import PscConfig
    from psc._discovery import ServiceEndpoint

ENTRY_POINT_GROUP = "psc.backends"

_lock = threading.Lock()
_registered: dict[str, Backend] = {}


def register_backend(name: str, backend: Backend) -> None:
    """Make ``backend`` serve URIs whose service is ``name``, replacing any backend of that name."""
    with _lock:
        _registered[name] = backend


def unregister_backend(name: str) -> None:
    with _lock:
        _registered.pop(name, None)


def known_backends() -> list[str]:
    """Names of every registered or installed backend."""
    names = set(_registered)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def get_backend(service: str) -> Backend:
    """The backend for ``service`` (the URI's service field); loads its entry point on first use."""
    backend = _registered.get(service)
    if backend is not None:
        return backend
    with _lock:
        backend = _registered.get(service)
        if backend is None:
            backend = _registered[service] = _load(service)
    return backend


def _load(service: str) -> Backend:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == service]
    if not found:
        raise UnknownBackendError(service, known_backends())
    factory = found[0].load()
    backend = factory() if isinstance(factory, type) else factory
    if not isinstance(backend, Backend):
        raise TypeError(f"entry point {found[0].value!r} for PSC backend {service!r} is not a Backend")
    return backend


@dataclass(frozen=True, slots=True)
class Cluster:
    """A cluster a client talks to: its cluster URI, the backend serving it and where it is."""

    cluster_uri: str
    protocol: str
    backend: Backend
    endpoint: ServiceEndpoint

    def topic_name(self, topic_uri: str | TopicUri) -> str:
        """The native topic name of a topic URI on this cluster."""
        return self.backend.topic_name(TopicUri.parse(topic_uri))

    def topic_uri(self, topic: str) -> str:
        return self.backend.topic_uri(self.cluster_uri, topic)


def resolve_cluster(topic_uri: str | TopicUri, config: PscConfig) -> Cluster:
    """Parse and validate a topic URI for its backend, then discover its cluster's endpoint.

    Everything that can be wrong with the input (URI shape, unknown service, backend rules, discovery)
    fails here, before any client connects.
    """
    from psc._discovery import discover

    uri = TopicUri.parse(topic_uri)
    backend = get_backend(uri.service)
    backend.validate(uri)
    cluster = uri.cluster_uri
    return Cluster(cluster.cluster_prefix, uri.protocol, backend, discover(cluster, config))


__all__ = [
    "ENTRY_POINT_GROUP",
    "Backend",
    "BackendConsumer",
    "BackendPartition",
    "BackendProducer",
    "Cluster",
    "ClusterMetadata",
    "NativeError",
    "NativeRecord",
    "PartitionMetadata",
    "TopicMetadata",
    "get_backend",
    "known_backends",
    "register_backend",
    "resolve_cluster",
    "unregister_backend",
]
