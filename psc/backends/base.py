"""The backend abstraction: what a PubSub system must offer for PSC's producer and consumer to drive it.

A :class:`Backend` turns a discovered endpoint and native settings into one :class:`BackendProducer` or
:class:`BackendConsumer` per cluster. Backends speak in native topic names; the PSC clients translate topic
URIs at the edge with :meth:`Backend.topic_name` and :meth:`Backend.topic_uri`.

Records and errors cross this boundary in confluent-kafka's shapes (:class:`NativeRecord`,
:class:`NativeError`) so the Kafka backend adds no per-message conversion; other backends adapt to them.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from psc._discovery import ServiceEndpoint
    from psc._uri import TopicUri

Headers = list[tuple[str, bytes | None]]


class FailureReports(functools.partial):  # type: ignore[type-arg]
    """A producer's default ``on_delivery`` that only acts on failures (it ignores ``err is None``).

    Given one, a backend may leave successful deliveries of records without a callback of their own
    unreported; failed ones must still reach it, from ``poll``, ``flush`` or ``close``. Anywhere else it is an
    ordinary callable (``FailureReports(report)(err, msg)`` calls ``report(err, msg)``).
    """


class NativeError(Protocol):
    """A backend error as confluent-kafka's ``KafkaError`` presents it."""

    def code(self) -> int: ...
    def name(self) -> str: ...
    def str(self) -> str: ...
    def retriable(self) -> bool: ...
    def fatal(self) -> bool: ...


class NativeRecord(Protocol):
    """A produced or consumed record as confluent-kafka's ``Message`` presents it."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Headers | None: ...
    def error(self) -> NativeError | None: ...


class BackendPartition(NamedTuple):
    """A partition of a native topic with an offset (or a special offset), as the backend sees it."""

    topic: str
    partition: int
    offset: int = -1001
    error: NativeError | None = None
    metadata: str | None = None
    leader_epoch: int | None = None


DeliveryReport = Callable[[Any, Any], None]  # (NativeError | None, NativeRecord)
PartitionsCallback = Callable[[list[BackendPartition]], None]


@dataclass(frozen=True, slots=True)
class PartitionMetadata:
    """One partition of :class:`TopicMetadata`, as confluent-kafka's ``PartitionMetadata``."""

    id: int
    leader: int
    replicas: tuple[int, ...]
    isrs: tuple[int, ...]
    error: NativeError | None = None


@dataclass(frozen=True, slots=True)
class TopicMetadata:
    """One topic of :class:`ClusterMetadata`, as confluent-kafka's ``TopicMetadata``; ``topic`` is the URI."""

    topic: str
    partitions: dict[int, PartitionMetadata]
    error: NativeError | None = None

    @property
    def topic_uri(self) -> str:
        return self.topic


@dataclass(frozen=True, slots=True)
class BrokerMetadata:
    """One broker of :class:`ClusterMetadata`, as confluent-kafka's ``BrokerMetadata``."""

    id: int
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ClusterMetadata:
    """What ``list_topics`` returns: the cluster's brokers and topics, topics keyed by topic URI.

    The fields are confluent-kafka's ``ClusterMetadata``'s, plus ``cluster_uri``.
    """

    cluster_uri: str
    cluster_id: str | None
    controller_id: int
    brokers: dict[int, BrokerMetadata]
    topics: dict[str, TopicMetadata] = field(default_factory=dict)
    orig_broker_id: int = -1
    orig_broker_name: str | None = None


class BackendProducer(ABC):
    """A native producer bound to one cluster.

    ``produce`` is an attribute, not a method, so the Kafka backend can expose confluent-kafka's bound
    ``Producer.produce`` itself: the hot path then pays for no wrapper frame. Its signature is confluent's:
    ``produce(topic, value, key=None, partition=-1, on_delivery=None, timestamp=0, headers=None)``; it raises
    ``BufferError`` when the local queue is full.
    """

    produce: Callable[..., None]
    #: The failure reports of records sent without a callback carry the records' headers, so a re-produce
    #: needs nothing kept beside them.
    reports_headers: bool = False

    def __init__(self, cluster_uri: str) -> None:
        self.cluster_uri = cluster_uri

    @abstractmethod
    def poll(self, timeout: float) -> int: ...

    @abstractmethod
    def flush(self, timeout: float) -> int: ...

    @abstractmethod
    def purge(self, in_queue: bool, in_flight: bool, blocking: bool) -> None: ...

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def list_topics(self, topic: str | None, timeout: float) -> ClusterMetadata: ...

    def cluster_id(self, timeout: float) -> str | None:
        """The cluster's id as the backend reports it (None if unknown)."""
        raise NotImplementedError(f"{type(self).__name__} does not report a cluster id")

    def init_transactions(self, timeout: float) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not support transactions")

    def begin_transaction(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not support transactions")

    def commit_transaction(self, timeout: float) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not support transactions")

    def abort_transaction(self, timeout: float) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not support transactions")

    def send_offsets_to_transaction(
        self, offsets: Sequence[BackendPartition], group_metadata: Any, timeout: float
    ) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not support transactions")

    @abstractmethod
    def close(self, timeout: float = 0.0) -> None:
        """Release the native client after up to ``timeout`` s of flushing; the rest is dropped."""


class BackendConsumer(ABC):
    """A native consumer bound to one cluster; ``poll``/``consume`` return native records (or None)."""

    # Typed loosely: each backend returns its own record type shaped like NativeRecord.
    poll: Callable[[float], Any]
    consume: Callable[[int, float], list[Any]]

    def __init__(self, cluster_uri: str) -> None:
        self.cluster_uri = cluster_uri

    @abstractmethod
    def subscribe(
        self,
        topics: Sequence[str],
        on_assign: PartitionsCallback | None,
        on_revoke: PartitionsCallback | None,
        on_lost: PartitionsCallback | None,
    ) -> None: ...

    @abstractmethod
    def unsubscribe(self) -> None: ...

    @abstractmethod
    def assign(self, partitions: Sequence[BackendPartition]) -> None: ...

    @abstractmethod
    def unassign(self) -> None: ...

    @abstractmethod
    def incremental_assign(self, partitions: Sequence[BackendPartition]) -> None: ...

    @abstractmethod
    def incremental_unassign(self, partitions: Sequence[BackendPartition]) -> None: ...

    @abstractmethod
    def assignment(self) -> list[BackendPartition]: ...

    @abstractmethod
    def commit(self, offsets: Sequence[BackendPartition] | None, asynchronous: bool) -> list[BackendPartition]:
        """Commit ``offsets`` (None: the current positions); returns what was committed when synchronous."""

    def store_offsets(self, offsets: Sequence[BackendPartition]) -> None:
        """Store offsets for the next (auto) commit."""
        raise NotImplementedError(f"{type(self).__name__} does not support storing offsets")

    @abstractmethod
    def committed(self, partitions: Sequence[BackendPartition], timeout: float) -> list[BackendPartition]: ...

    @abstractmethod
    def position(self, partitions: Sequence[BackendPartition]) -> list[BackendPartition]: ...

    @abstractmethod
    def seek(self, partition: BackendPartition) -> None: ...

    @abstractmethod
    def pause(self, partitions: Sequence[BackendPartition]) -> None: ...

    @abstractmethod
    def resume(self, partitions: Sequence[BackendPartition]) -> None: ...

    @abstractmethod
    def get_watermark_offsets(
        self, partition: BackendPartition, timeout: float, cached: bool
    ) -> tuple[int, int] | None: ...

    @abstractmethod
    def offsets_for_times(self, partitions: Sequence[BackendPartition], timeout: float) -> list[BackendPartition]: ...

    @abstractmethod
    def list_topics(self, topic: str | None, timeout: float) -> ClusterMetadata: ...

    @abstractmethod
    def consumer_group_metadata(self) -> Any: ...

    def cluster_id(self, timeout: float) -> str | None:
        """The cluster's id as the backend reports it (None if unknown)."""
        raise NotImplementedError(f"{type(self).__name__} does not report a cluster id")

    def memberid(self) -> str | None:
        """This consumer's member id in its group (None before it joined)."""
        raise NotImplementedError(f"{type(self).__name__} does not report a member id")

    @abstractmethod
    def close(self) -> None: ...


class Backend(ABC):
    """A PubSub system PSC can drive: a factory of per-cluster producers and consumers."""

    name: str = ""

    @abstractmethod
    def create_producer(
        self, endpoint: ServiceEndpoint, config: Mapping[str, Any], cluster_uri: str
    ) -> BackendProducer:
        """A producer for the cluster at ``endpoint`` with native ``config`` (bootstrap/security excluded).

        ``config`` may carry ``on_delivery``: the delivery report for records produced without their own.
        """

    @abstractmethod
    def create_consumer(
        self, endpoint: ServiceEndpoint, config: Mapping[str, Any], cluster_uri: str
    ) -> BackendConsumer:
        """A consumer for the cluster at ``endpoint`` with native ``config`` (bootstrap/security excluded)."""

    def validate(self, uri: TopicUri) -> None:
        """Reject a URI this backend cannot address, before anything reaches a broker."""
        from psc._uri import validate_for_backend

        validate_for_backend(uri)

    def topic_name(self, uri: TopicUri) -> str:
        """The native topic name a topic URI addresses."""
        return uri.topic

    def topic_uri(self, cluster_uri: str, topic: str) -> str:
        """The topic URI of native topic ``topic`` on the cluster named by ``cluster_uri``."""
        return cluster_uri + topic
