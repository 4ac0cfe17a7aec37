"""``AdminClient``: confluent-kafka's admin API over topic URIs, with one native admin client per cluster.

Requests are split by the cluster each topic URI names; every part goes to that cluster's native client
with native topic names, and the futures returned map back to exactly the keys the caller passed, with
topic URIs wherever a result names a topic. Calls that name no topic (consumer groups, the cluster, a
broker by id) go to ``psc.admin.cluster.uri``. Every URI is checked before anything is sent, so a bad one
raises at once and no part of the call has run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import confluent_kafka as ck
from confluent_kafka import admin as ck_admin

from psc._callbacks import merge_config, split_callbacks
from psc._config import PscConfig
from psc._message import TopicUriPartition
from psc._uri import TopicUri
from psc.admin._futures import chain, gather
from psc.backends import Cluster, resolve_cluster
from psc.backends.kafka import native_config, with_logger
from psc.errors import ConfigError, InvalidUriError

__all__ = ["AdminClient"]

T = TypeVar("T")
_TOPIC_LIKE = (ck_admin.ResourceType.TOPIC,)
_BROKER_LIKE = (ck_admin.ResourceType.BROKER,)
_CONTROLLER_LOOKUP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class _Native:
    """One cluster and the native admin client that talks to it."""

    cluster: Cluster
    admin: ck_admin.AdminClient

    def topic_uri(self, topic: str) -> str:
        return self.cluster.topic_uri(topic)


class AdminClient:
    """``confluent_kafka.admin.AdminClient`` addressed by topic and cluster URIs.

    ``conf`` holds PSC keys: ``psc.project``, ``psc.admin.*`` (librdkafka admin properties with the prefix,
    confluent-kafka's callbacks such as ``psc.admin.error_cb``, and ``psc.admin.cluster.uri``: the cluster
    of calls that name no topic). Brokers come from discovery.
    """

    def __init__(self, conf: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        settings, callbacks = split_callbacks(merge_config(conf, kwargs), "admin")
        # An admin client has nothing to remediate: every callback goes to librdkafka as it is.
        self._callbacks = {**callbacks.native, **({"error_cb": callbacks.error_cb} if callbacks.error_cb else {})}
        self._config = PscConfig.from_mapping(settings, client_type="admin")
        uri = self._config.admin_cluster_uri
        self._default = TopicUri.parse(uri).cluster_uri if uri else None
        self._natives: dict[str, _Native] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    # --- topics and partitions ------------------------------------------------------------------------

    def create_topics(self, new_topics: list[ck_admin.NewTopic], **kwargs: Any) -> dict[str, Future[Any]]:
        """Create topics; futures keyed by the topic URI of each ``NewTopic``, resolving to None."""
        parts = self._split(new_topics, lambda t: self._topic(t.topic))
        futures: dict[str, Future[Any]] = {}
        for native, items in parts:
            requests = [_native_new_topic(t, name) for t, name in items]
            answered = native.admin.create_topics(requests, **kwargs)
            futures.update({t.topic: chain(answered[name]) for t, name in items})
        return futures

    def delete_topics(self, topics: list[str], **kwargs: Any) -> dict[str, Future[Any]]:
        """Delete topics; futures keyed by topic URI, resolving to None."""
        parts = self._split(topics, self._topic)
        futures: dict[str, Future[Any]] = {}
        for native, items in parts:
            answered = native.admin.delete_topics([name for _, name in items], **kwargs)
            futures.update({uri: chain(answered[name]) for uri, name in items})
        return futures

    def create_partitions(self, new_partitions: list[ck_admin.NewPartitions], **kwargs: Any) -> dict[str, Future[Any]]:
        """Grow topics to ``new_total_count`` partitions; futures keyed by topic URI, resolving to None."""
        parts = self._split(new_partitions, lambda p: self._topic(p.topic))
        futures: dict[str, Future[Any]] = {}
        for native, items in parts:
            requests = [
                ck_admin.NewPartitions(name, p.new_total_count, replica_assignment=p.replica_assignment)
                if p.replica_assignment
                else ck_admin.NewPartitions(name, p.new_total_count)
                for p, name in items
            ]
            answered = native.admin.create_partitions(requests, **kwargs)
            futures.update({p.topic: chain(answered[name]) for p, name in items})
        return futures

    def describe_topics(self, topics: ck.TopicCollection, **kwargs: Any) -> dict[str, Future[Any]]:
        """Describe topics; futures keyed by topic URI, resolving to ``TopicDescription`` named by URI."""
        if not isinstance(topics, ck.TopicCollection):
            raise TypeError("Expected input to be instance of TopicCollection")
        parts = self._split(topics.topic_names, self._topic)
        futures: dict[str, Future[Any]] = {}
        for native, items in parts:
            answered = native.admin.describe_topics(ck.TopicCollection([name for _, name in items]), **kwargs)
            futures.update({uri: chain(answered[name], _renamed(uri)) for uri, name in items})
        return futures

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ck_admin.ClusterMetadata:
        """Cluster metadata of the cluster of ``topic`` (else ``psc.admin.cluster.uri``), topics keyed by URI."""
        if topic is None:
            native = self._default_native("list_topics")
            metadata = native.admin.list_topics(timeout=timeout)
        else:
            native, name = self._topic(topic)
            metadata = native.admin.list_topics(name, timeout=timeout)
        return _uri_metadata(metadata, native)

    def cluster_id(self, timeout: float = -1) -> str:
        return self._default_native("cluster_id").admin.cluster_id(timeout=timeout)

    def list_groups(self, group: str | None = None, timeout: float = -1) -> list[ck_admin.GroupMetadata]:
        return self._default_native("list_groups").admin.list_groups(group, timeout=timeout)

    def describe_cluster(self, **kwargs: Any) -> Future[Any]:
        """Describe the ``psc.admin.cluster.uri`` cluster: a future of ``DescribeClusterResult``."""
        return self._default_native("describe_cluster").admin.describe_cluster(**kwargs)

    def list_offsets(self, topic_partition_offsets: dict[Any, Any], **kwargs: Any) -> dict[Any, Future[Any]]:
        """Offsets per ``OffsetSpec``; futures keyed by the caller's ``TopicPartition`` (with a topic URI)."""
        if not isinstance(topic_partition_offsets, dict):
            raise TypeError("topic_partition_offsets must be a dict")
        parts = self._split(list(topic_partition_offsets), self._partition)
        futures: dict[Any, Future[Any]] = {}
        for native, items in parts:
            request = {tp: topic_partition_offsets[given] for given, tp in items}
            answered = _by_partition(native.admin.list_offsets(request, **kwargs))
            futures.update({given: chain(answered[(tp.topic, tp.partition)]) for given, tp in items})
        return futures

    def delete_records(self, topic_partition_offsets: list[Any], **kwargs: Any) -> dict[Any, Future[Any]]:
        """Delete records before each offset; futures keyed by the caller's ``TopicPartition``."""
        if not isinstance(topic_partition_offsets, list):
            raise TypeError("topic_partition_offsets must be a list")
        parts = self._split(topic_partition_offsets, self._partition)
        futures: dict[Any, Future[Any]] = {}
        for native, items in parts:
            answered = _by_partition(native.admin.delete_records([tp for _, tp in items], **kwargs))
            futures.update({given: chain(answered[(tp.topic, tp.partition)]) for given, tp in items})
        return futures

    def elect_leaders(self, election_type: Any, partitions: list[Any] | None = None, **kwargs: Any) -> Future[Any]:
        """Leader election; a future of ``{TopicPartition (topic URI): KafkaException | None}``."""
        if partitions is None:
            native = self._default_native("elect_leaders without partitions")
            return chain(native.admin.elect_leaders(election_type, None, **kwargs), _uri_keys(native))
        answers = [
            chain(native.admin.elect_leaders(election_type, [tp for _, tp in items], **kwargs), _uri_keys(native))
            for native, items in self._split(partitions, self._partition)
        ]
        return gather(answers, _merged_dicts)

    # --- configs --------------------------------------------------------------------------------------

    def describe_configs(
        self, resources: list[ck_admin.ConfigResource], **kwargs: Any
    ) -> dict[ck_admin.ConfigResource, Future[Any]]:
        """Configs of topics (by URI), brokers and groups; futures keyed by the caller's ``ConfigResource``."""
        return self._configs("describe_configs", resources, kwargs)

    def alter_configs(
        self, resources: list[ck_admin.ConfigResource], **kwargs: Any
    ) -> dict[ck_admin.ConfigResource, Future[Any]]:
        """Replace whole configs (deprecated by confluent-kafka in favour of ``incremental_alter_configs``)."""
        return self._configs("alter_configs", resources, kwargs)

    def incremental_alter_configs(
        self, resources: list[ck_admin.ConfigResource], **kwargs: Any
    ) -> dict[ck_admin.ConfigResource, Future[Any]]:
        """Set, delete, append or subtract single config values; futures keyed by ``ConfigResource``."""
        return self._configs("incremental_alter_configs", resources, kwargs)

    def _configs(
        self, method: str, resources: list[ck_admin.ConfigResource], kwargs: dict[str, Any]
    ) -> dict[ck_admin.ConfigResource, Future[Any]]:
        for resource in resources:
            if not isinstance(resource, ck_admin.ConfigResource):
                raise ValueError(f"Expected list of {ck_admin.ConfigResource!r}")
        parts = self._split(resources, self._config_resource)
        futures: dict[ck_admin.ConfigResource, Future[Any]] = {}
        for native, items in parts:
            answered = getattr(native.admin, method)([native_resource for _, native_resource in items], **kwargs)
            futures.update({given: chain(answered[native_resource]) for given, native_resource in items})
        return futures

    # --- consumer groups ------------------------------------------------------------------------------

    def list_consumer_groups(self, **kwargs: Any) -> Future[Any]:
        """Groups of the ``psc.admin.cluster.uri`` cluster: a future of ``ListConsumerGroupsResult``."""
        return self._default_native("list_consumer_groups").admin.list_consumer_groups(**kwargs)

    def describe_consumer_groups(self, group_ids: list[str], **kwargs: Any) -> dict[str, Future[Any]]:
        """Describe groups; futures keyed by group id, member assignments named by topic URI."""
        native = self._default_native("describe_consumer_groups")
        answered = native.admin.describe_consumer_groups(group_ids, **kwargs)
        return {group: chain(future, _uri_group(native)) for group, future in answered.items()}

    def delete_consumer_groups(self, group_ids: list[str], **kwargs: Any) -> dict[str, Future[Any]]:
        native = self._default_native("delete_consumer_groups")
        return native.admin.delete_consumer_groups(group_ids, **kwargs)

    def list_consumer_group_offsets(
        self, list_consumer_group_offsets_request: list[ck.ConsumerGroupTopicPartitions], **kwargs: Any
    ) -> dict[str, Future[Any]]:
        """Committed offsets of groups; futures keyed by group id, partitions named by topic URI.

        A request without partitions asks the ``psc.admin.cluster.uri`` cluster for all of them.
        """
        return self._group_offsets("list_consumer_group_offsets", list_consumer_group_offsets_request, kwargs)

    def alter_consumer_group_offsets(
        self, alter_consumer_group_offsets_request: list[ck.ConsumerGroupTopicPartitions], **kwargs: Any
    ) -> dict[str, Future[Any]]:
        """Set committed offsets of groups; futures keyed by group id, partitions named by topic URI."""
        return self._group_offsets("alter_consumer_group_offsets", alter_consumer_group_offsets_request, kwargs)

    def _group_offsets(
        self, method: str, requests: list[ck.ConsumerGroupTopicPartitions], kwargs: dict[str, Any]
    ) -> dict[str, Future[Any]]:
        if not isinstance(requests, list):
            raise TypeError("request must be a list")
        plans = [(request, self._group_parts(method, request)) for request in requests]
        futures: dict[str, Future[Any]] = {}
        for request, parts in plans:
            answers = []
            for native, partitions in parts:
                native_request = ck.ConsumerGroupTopicPartitions(request.group_id, partitions)
                answered = getattr(native.admin, method)([native_request], **kwargs)
                answers.append(chain(answered[request.group_id], _uri_group_offsets(native)))
            futures[request.group_id] = gather(answers, _merged_group_offsets)
        return futures

    def _group_parts(
        self, method: str, request: ck.ConsumerGroupTopicPartitions
    ) -> list[tuple[_Native, list[ck.TopicPartition] | None]]:
        if not isinstance(request, ck.ConsumerGroupTopicPartitions):
            raise TypeError("Expected list of ConsumerGroupTopicPartitions")
        if not request.topic_partitions:
            return [(self._default_native(f"{method} without partitions"), None)]
        parts = self._split(request.topic_partitions, self._partition)
        return [(native, [tp for _, tp in items]) for native, items in parts]

    # --- ACLs and credentials -------------------------------------------------------------------------

    def create_acls(self, acls: list[ck_admin.AclBinding], **kwargs: Any) -> dict[Any, Future[Any]]:
        """Create ACL bindings; a topic binding names its topic by URI. Futures keyed by the caller's binding."""
        parts = self._split(acls, self._acl)
        futures: dict[Any, Future[Any]] = {}
        for native, items in parts:
            answered = native.admin.create_acls([binding for _, binding in items], **kwargs)
            futures.update({given: chain(answered[binding]) for given, binding in items})
        return futures

    def describe_acls(self, acl_binding_filter: ck_admin.AclBindingFilter, **kwargs: Any) -> Future[Any]:
        """ACL bindings matching the filter: a future of a list of ``AclBinding``, topics named by URI."""
        native, native_filter = self._acl(acl_binding_filter)
        return chain(native.admin.describe_acls(native_filter, **kwargs), _uri_acls(native))

    def delete_acls(
        self, acl_binding_filters: list[ck_admin.AclBindingFilter], **kwargs: Any
    ) -> dict[Any, Future[Any]]:
        """Delete ACL bindings by filter; futures keyed by the caller's filter, of the deleted bindings."""
        parts = self._split(acl_binding_filters, self._acl)
        futures: dict[Any, Future[Any]] = {}
        for native, items in parts:
            answered = native.admin.delete_acls([native_filter for _, native_filter in items], **kwargs)
            futures.update({given: chain(answered[found], _uri_acls(native)) for given, found in items})
        return futures

    def describe_user_scram_credentials(self, users: list[str] | None = None, **kwargs: Any) -> Any:
        native = self._default_native("describe_user_scram_credentials")
        return native.admin.describe_user_scram_credentials(users, **kwargs)

    def alter_user_scram_credentials(self, alterations: list[Any], **kwargs: Any) -> dict[str, Future[Any]]:
        native = self._default_native("alter_user_scram_credentials")
        return native.admin.alter_user_scram_credentials(alterations, **kwargs)

    def set_sasl_credentials(self, username: str, password: str) -> None:
        """Set SASL credentials on the ``psc.admin.cluster.uri`` cluster's client."""
        self._default_native("set_sasl_credentials").admin.set_sasl_credentials(username, password)

    def poll(self, timeout: float = -1) -> int:
        """Serve callbacks (``error_cb``, ``stats_cb``, ...) of every cluster's client; the first waits."""
        with self._lock:
            natives = list(self._natives.values())
        served = 0
        for index, native in enumerate(natives):
            served += native.admin.poll(timeout if index == 0 else 0)
        return served

    # --- routing --------------------------------------------------------------------------------------

    def _native(self, uri: TopicUri) -> _Native:
        key = uri.cluster_prefix
        found = self._natives.get(key)
        if found is not None:
            return found
        cluster = resolve_cluster(uri.cluster_uri, self._config)
        if cluster.backend.name != "kafka":
            raise InvalidUriError(str(uri), f"the admin client serves Kafka clusters; {uri.service!r} has no admin API")
        with self._lock:
            found = self._natives.get(key)
            if found is None:
                native_settings = with_logger(
                    {**native_config(cluster.endpoint, self._config.native), **self._callbacks},
                    cluster.cluster_uri,
                    "admin",
                )
                found = self._natives[key] = _Native(cluster, ck_admin.AdminClient(native_settings))
        return found

    def _default_native(self, what: str) -> _Native:
        if self._default is None:
            raise ConfigError(
                f"{what} names no topic, so it needs a cluster: set psc.admin.cluster.uri to the cluster URI "
                "(what bootstrap.servers was)"
            )
        return self._native(self._default)

    def _topic(self, text: str) -> tuple[_Native, str]:
        uri = TopicUri.parse(text)
        if uri.is_cluster:
            raise InvalidUriError(str(text), "names a cluster, not a topic (the last segment is empty)")
        native = self._native(uri)
        native.cluster.backend.validate(uri)  # the backend's topic rules (length, reserved names), before sending
        return native, native.cluster.topic_name(uri)

    def _partition(self, given: Any) -> tuple[_Native, ck.TopicPartition]:
        topic = getattr(given, "topic", None) or getattr(given, "topic_uri", None)
        if topic is None:
            raise TypeError(f"expected a TopicPartition with a topic URI, got {given!r}")
        native, name = self._topic(topic)
        return native, ck.TopicPartition(name, given.partition, given.offset)

    def _config_resource(self, given: ck_admin.ConfigResource) -> tuple[_Native, ck_admin.ConfigResource]:
        if given.restype in _TOPIC_LIKE:
            native, name = self._topic(given.name)
        elif given.restype in _BROKER_LIKE:
            native, name = self._broker(given.name)
        else:
            native, name = self._default_native(f"a {given.restype.name} ConfigResource"), given.name
        resource = ck_admin.ConfigResource(
            given.restype,
            name,
            set_config=given.set_config_dict or None,
            incremental_configs=given.incremental_configs or None,
        )
        return native, resource

    def _broker(self, name: str) -> tuple[_Native, str]:
        """A broker: ``<cluster URI><broker id>``, a cluster URI (its controller), or a bare id on the default."""
        if name.isdigit():
            return self._default_native(f"broker {name}"), name
        uri = TopicUri.parse(name)
        native = self._native(uri)
        if uri.is_cluster:
            described = native.admin.describe_cluster(request_timeout=_CONTROLLER_LOOKUP_TIMEOUT_S)
            return native, str(described.result().controller.id)
        if not uri.topic.isdigit():
            raise InvalidUriError(name, f"a broker is a cluster URI ending in its broker id, not {uri.topic!r}")
        return native, uri.topic

    def _acl(self, given: Any) -> tuple[_Native, Any]:
        if given.restype not in _TOPIC_LIKE or given.name is None:
            return self._default_native(f"an ACL on {given.restype.name}"), given
        native, name = self._topic(given.name)
        return native, _acl_named(given, name)

    def _split(
        self, items: Iterable[T], locate: Callable[[T], tuple[_Native, Any]]
    ) -> list[tuple[_Native, list[tuple[T, Any]]]]:
        """Items grouped by cluster with their native form; every item is located before any is sent."""
        groups: dict[str, tuple[_Native, list[tuple[T, Any]]]] = {}
        for item in items:
            native, translated = locate(item)
            groups.setdefault(native.cluster.cluster_uri, (native, []))[1].append((item, translated))
        return list(groups.values())


# --- requests and results between native names and topic URIs --------------------------------------------


def _native_new_topic(given: ck_admin.NewTopic, name: str) -> ck_admin.NewTopic:
    extra: dict[str, Any] = {}
    if given.replica_assignment:
        extra["replica_assignment"] = given.replica_assignment
    if given.config:
        extra["config"] = given.config
    return ck_admin.NewTopic(name, given.num_partitions, given.replication_factor, **extra)


def _uri_partition(native: _Native, tp: ck.TopicPartition) -> TopicUriPartition:
    """PSC's ``TopicPartition`` of a native one: the topic URI in place of the topic, the error kept."""
    error: Any = tp.error
    return TopicUriPartition(native.topic_uri(tp.topic), tp.partition, tp.offset, tp.metadata, tp.leader_epoch, error)


def _by_partition(futures: Mapping[Any, Future[Any]]) -> dict[tuple[str, int], Future[Any]]:
    return {(tp.topic, tp.partition): future for tp, future in futures.items()}


def _renamed(uri: str) -> Callable[[Any], Any]:
    def rename(description: Any) -> Any:
        description.name = uri
        return description

    return rename


def _uri_keys(native: _Native) -> Callable[[dict[Any, Any]], dict[Any, Any]]:
    return lambda results: {_uri_partition(native, tp): value for tp, value in results.items()}


def _merged_dicts(results: list[dict[Any, Any]]) -> dict[Any, Any]:
    merged: dict[Any, Any] = {}
    for result in results:
        merged.update(result)
    return merged


def _uri_metadata(metadata: ck_admin.ClusterMetadata, native: _Native) -> ck_admin.ClusterMetadata:
    topics = {}
    for name, topic in metadata.topics.items():
        topic.topic = native.topic_uri(name)
        topics[topic.topic] = topic
    metadata.topics = topics
    return metadata


def _uri_group(native: _Native) -> Callable[[Any], Any]:
    def convert(description: Any) -> Any:
        for member in description.members:
            for assignment in (member.assignment, getattr(member, "target_assignment", None)):
                if assignment is not None:
                    assignment.topic_partitions = [_uri_partition(native, tp) for tp in assignment.topic_partitions]
        return description

    return convert


def _uri_group_offsets(native: _Native) -> Callable[[Any], Any]:
    def convert(result: ck.ConsumerGroupTopicPartitions) -> ck.ConsumerGroupTopicPartitions:
        partitions: list[Any] = [_uri_partition(native, tp) for tp in result.topic_partitions or []]
        return ck.ConsumerGroupTopicPartitions(result.group_id, partitions)

    return convert


def _merged_group_offsets(results: Sequence[ck.ConsumerGroupTopicPartitions]) -> ck.ConsumerGroupTopicPartitions:
    partitions = [tp for result in results for tp in result.topic_partitions or []]
    return ck.ConsumerGroupTopicPartitions(results[0].group_id, partitions)


def _uri_acls(native: _Native) -> Callable[[list[Any]], list[Any]]:
    def convert(bindings: list[Any]) -> list[Any]:
        return [_acl_named(b, native.topic_uri(b.name)) if b.restype in _TOPIC_LIKE and b.name else b for b in bindings]

    return convert


def _acl_named(binding: Any, name: str) -> Any:
    """A copy of an ``AclBinding`` or ``AclBindingFilter`` naming another resource."""
    return type(binding)(
        binding.restype,
        name,
        binding.resource_pattern_type,
        binding.principal,
        binding.host,
        binding.operation,
        binding.permission_type,
    )
