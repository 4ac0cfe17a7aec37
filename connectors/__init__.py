"""Connectors: Flink-like checkpointed sources and sinks for Kafka and PSC.

Checkpointed sources, exactly-once transactional sinks, and checkpoints that survive a move from the
Kafka connector to the PSC connector.
"""

from connectors.checkpointing import CheckpointStore, LocalDirectoryStore, S3Store, Split
from connectors.errors import (
    CheckpointCorruptError,
    ConnectorError,
    FencedError,
    JobConfigError,
    NoValidCheckpointError,
    StateMigrationError,
    UserFunctionError,
)
from connectors.runtime import Job, State, Stream
from connectors.sinks import KafkaSink, PscSink, Sink
from connectors.sources import KafkaSource, PscSource, Source

__all__ = [
    "CheckpointCorruptError",
    "CheckpointStore",
    "ConnectorError",
    "FencedError",
    "Job",
    "JobConfigError",
    "KafkaSink",
    "KafkaSource",
    "LocalDirectoryStore",
    "NoValidCheckpointError",
    "PscSink",
    "PscSource",
    "S3Store",
    "Sink",
    "Source",
    "Split",
    "State",
    "StateMigrationError",
    "Stream",
    "UserFunctionError",
]
