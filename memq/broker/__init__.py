"""The MemQ broker: batches producer requests per topic into objects and announces them on Kafka."""

from memq.broker._server import Broker, run_broker

__all__ = ["Broker", "run_broker"]
