"""PSC: the unified PubSub client.

One producer/consumer API over several backends (Kafka through confluent-kafka; MemQ through its own
package), addressed by resource-name URIs such as
``plaintext:/rn:kafka:prod:aws_us-west-1::cluster01:topic01``, with service discovery, platform-managed
configuration, config logging and automatic remediation of known client errors.
"""

from psc._asyncio import AsyncConsumer, AsyncProducer
from psc._config import PscConfig
from psc._consumer import Consumer
from psc._deserializing_consumer import DeserializingConsumer
from psc._discovery import ServiceEndpoint, discover
from psc._message import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    Message,
    MessageId,
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
    "AdminClient",
    "AsyncConsumer",
    "AsyncProducer",
    "BackendError",
    "ClientClosedError",
    "ClusterMetadata",
    "ConfigError",
    "Consumer",
    "ConsumerError",
    "DeserializingConsumer",
    "DiscoveryError",
    "InvalidUriError",
    "Message",
    "MessageId",
    "PartitionMetadata",
    "Producer",
    "ProducerError",
    "PscConfig",
    "PscError",
    "RemediationExhaustedError",
    "SerializationError",
    "SerializingProducer",
    "ServiceEndpoint",
    "TopicMetadata",
    "TopicUri",
    "TopicUriPartition",
    "TransactionError",
    "UnknownBackendError",
    "configure_logging",
    "discover",
    "parse_topic_uri",
    "register_backend",
]
