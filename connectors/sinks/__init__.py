"""Sinks: Kafka (topic names) and PSC (topic URIs), exactly-once or at-least-once."""

from connectors.sinks.base import Sink, SinkWriter
from connectors.sinks.kafka import KafkaSink
from connectors.sinks.psc import PscSink

__all__ = ["KafkaSink", "PscSink", "Sink", "SinkWriter"]
