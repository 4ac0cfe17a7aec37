"""PSC: the unified PubSub client.

One producer/consumer API over several backends (Kafka through confluent-kafka; MemQ through its own
package), addressed by resource-name URIs such as
``plaintext:/rn:kafka:prod:aws_us-west-1::cluster01:topic01``, with service discovery, platform-managed
configuration, config logging and automatic remediation of known client errors.
"""

from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    ConsumerGroupType,
    ElectionType,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Node,
    ThrottleEvent,
    TopicCollection,
    TopicPartitionInfo,
    Uuid,
    libversion,
)

from psc._accel import DeliveryTally
from psc._batch_producer import BatchProducer, FailedRecord
from psc._config import PscConfig
from psc._consumer import Consumer
from psc._deserializing_consumer import DeserializingConsumer
from psc._discovery import ServiceEndpoint, discover
from psc._message import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE,
    Message,
    MessageId,
    TopicPartition,
    TopicUriPartition,
)
from psc._producer import Producer
from psc._serializing_producer import SerializingProducer
from psc._uri import TopicUri, parse_topic_uri
from psc.admin import AdminClient
from psc.backends import register_backend
from psc.backends.base import ClusterMetadata, PartitionMetadata, TopicMetadata
from psc.common.log import configure_logging
from psc.errors import (
    BackendError,
    ClientClosedError,
    ConfigError,
    ConsumerError,
    DiscoveryError,
    InvalidUriError,
    ProducerError,
    PscError,
    RemediationExhaustedError,
    SerializationError,
    TransactionError,
    UnknownBackendError,
)

__all__ = [
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_INVALID",
    "OFFSET_STORED",
    "TIMESTAMP_CREATE_TIME",
    "TIMESTAMP_LOG_APPEND_TIME",
    "TIMESTAMP_NOT_AVAILABLE",
    "AdminClient",
    "BackendError",
    "BatchProducer",
    "ClientClosedError",
    "ClusterMetadata",
    "ConfigError",
    "Consumer",
    "ConsumerError",
    "ConsumerGroupState",
    "ConsumerGroupTopicPartitions",
    "ConsumerGroupType",
    "DeliveryTally",
    "DeserializingConsumer",
    "DiscoveryError",
    "ElectionType",
    "FailedRecord",
    "InvalidUriError",
    "IsolationLevel",
    "KafkaError",
    "KafkaException",
    "Message",
    "MessageId",
    "Node",
    "PartitionMetadata",
    "Producer",
    "ProducerError",
    "PscConfig",
    "PscError",
    "RemediationExhaustedError",
    "SerializationError",
    "SerializingProducer",
    "ServiceEndpoint",
    "ThrottleEvent",
    "TopicCollection",
    "TopicMetadata",
    "TopicPartition",
    "TopicPartitionInfo",
    "TopicUri",
    "TopicUriPartition",
    "TransactionError",
    "UnknownBackendError",
    "Uuid",
    "configure_logging",
    "discover",
    "libversion",
    "parse_topic_uri",
    "register_backend",
]
