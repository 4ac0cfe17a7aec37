"""Pacer: an asynchronous job platform.

Jobs live in MySQL, queues are split into partitions, and each partition is owned by exactly one dequeue
broker that serves jobs from an in-memory buffer; brokers are assigned and woken through Kafka.
``Pacer.open("sqlite:///jobs.db")`` runs the same API embedded, in one process, without Kafka.
"""

from pacer._errors import (
    Fenced,
    InvalidArgument,
    InvalidDescriptor,
    NotOwner,
    PacerError,
    PriorityNotSupported,
    QueueExists,
    QueueNameInvalid,
    QueueNotFound,
    Unauthorized,
)
from pacer._models import (
    Ack,
    AckResult,
    Checkpoint,
    Descriptor,
    Job,
    JobInfo,
    JobState,
    Lease,
    PartitionInfo,
    QueueConfig,
    ScanPage,
)
from pacer._service import MaintenanceReport, Pacer
from pacer.client import Client
from pacer.worker import Retry, Worker, exponential

__all__ = [
    "Ack",
    "AckResult",
    "Checkpoint",
    "Client",
    "Descriptor",
    "Fenced",
    "InvalidArgument",
    "InvalidDescriptor",
    "Job",
    "JobInfo",
    "JobState",
    "Lease",
    "MaintenanceReport",
    "NotOwner",
    "Pacer",
    "PacerError",
    "PartitionInfo",
    "PriorityNotSupported",
    "QueueConfig",
    "QueueExists",
    "QueueNameInvalid",
    "QueueNotFound",
    "Retry",
    "ScanPage",
    "Unauthorized",
    "Worker",
    "exponential",
]
