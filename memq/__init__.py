"""MemQ: brokers that batch producer requests into large S3 objects and announce them on Kafka.

A cost-efficient pub/sub for high-volume, latency-tolerant ingestion, byte-compatible with the reference
MemQ. The package provides the broker, a producer and a consumer, and registers a PSC backend.
"""

from memq._consumer import Consumer, ConsumerRecord
from memq._errors import CorruptObjectError, FormatError, MemqError, ObjectNotFoundError, StorageError
from memq._format import Compression, Notification, Record

__all__ = [
    "Compression",
    "Consumer",
    "ConsumerRecord",
    "CorruptObjectError",
    "FormatError",
    "MemqError",
    "Notification",
    "ObjectNotFoundError",
    "Record",
    "StorageError",
]
