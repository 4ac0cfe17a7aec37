"""Singer: a host log-shipping daemon.

Tails log files and publishes them through PSC with pluggable partitioners (round-robin, single
partition, fixed-N, key hash), at-least-once delivery and durable per-stream watermarks. Run it with
``singer run --config DIR``; see ``docs/singer.md``.

The public API is what plugins and tools need: the partitioner base class (register a subclass under the
``singer.partitioners`` entry-point group) and the framed thrift ``LogMessage`` codec.
"""

from singer._partitioners import Partitioner, Partitions
from singer._thrift import LogMessage, ThriftDecodeError, decode, encode, frame

__all__ = ["LogMessage", "Partitioner", "Partitions", "ThriftDecodeError", "decode", "encode", "frame"]
