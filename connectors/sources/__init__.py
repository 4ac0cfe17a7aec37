"""Sources: Kafka (topic names) and PSC (topic URIs), one split per partition."""

from connectors.sources.base import Source, SourceReader
from connectors.sources.kafka import KafkaSource
from connectors.sources.psc import PscSource

__all__ = ["KafkaSource", "PscSource", "Source", "SourceReader"]
