"""Checkpoints: the file format, the stores, and the operator state inside them."""

from connectors.checkpointing.format import Checkpoint, decode, encode
from connectors.checkpointing.manager import CheckpointManager
from connectors.checkpointing.state import PSC_VERSION, PendingTransaction, SinkState, Split
from connectors.checkpointing.stores import CheckpointStore, LocalDirectoryStore, S3Store, open_store

__all__ = [
    "PSC_VERSION",
    "Checkpoint",
    "CheckpointManager",
    "CheckpointStore",
    "LocalDirectoryStore",
    "PendingTransaction",
    "S3Store",
    "SinkState",
    "Split",
    "decode",
    "encode",
    "open_store",
]
