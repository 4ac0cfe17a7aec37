"""Connectors: Flink-like checkpointed sources and sinks for Kafka and PSC.

Checkpointed sources, exactly-once transactional sinks, and checkpoints that survive a move from the
Kafka connector to the PSC connector.
"""
