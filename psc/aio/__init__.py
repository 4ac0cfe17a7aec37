"""asyncio clients with confluent-kafka's ``confluent_kafka.aio`` API, over topic URIs.

``AIOProducer``: ``await produce(...)`` returns the future of the record's delivery; records are sent in
batches from worker threads. ``AIOConsumer``: every consumer method as a coroutine; its callbacks,
coroutine functions or plain ones, run on the event loop and are awaited before the consumer goes on.
"""

from psc.aio._consumer import AIOConsumer
from psc.aio._producer import AIOProducer

__all__ = ["AIOConsumer", "AIOProducer"]
