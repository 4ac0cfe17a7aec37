"""``BatchProducer``: a Kafka producer that queues a whole batch of records in one call, in C.

``Producer.produce`` costs a Python call per record, and confluent-kafka's header conversion on top: more
than librdkafka spends on the record. ``produce_batch`` hands librdkafka every record of a batch from C
(``psc/_rdkafka.c``), with headers shared by the batch and headers built per record from an integer, and
reports every record to one :class:`DeliveryTally`: successes are counted in C, a failure calls the tally's
``failed(err, record)`` with a :class:`FailedRecord`.

It owns its own librdkafka client, configured as a :class:`Producer` of the same configuration would
configure its Kafka backend for the cluster (discovery, security, PSC keys); librdkafka is the copy
confluent-kafka ships, or the system's. Where the C module, the library or a Kafka cluster is missing, or
``PSC_NO_SPEEDUPS`` is set, :func:`BatchProducer.available` is False and the constructor raises
:class:`ProducerError`: callers keep the per-record ``Producer``. PSC's remediation does not run here: a
failed record is reported, and a fatal client error raises from ``poll``/``flush`` (start a new producer).
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from confluent_kafka import KafkaError

from psc._accel import DeliveryTally
from psc._callbacks import split_callbacks
from psc._config import PscConfig
from psc._librdkafka import load_module
from psc._metrics import client_metrics
from psc._producer import _Settings
from psc._uri import TopicUri
from psc.backends import get_backend, resolve_cluster
from psc.backends.kafka import KafkaBackend, NativeLogger, native_config
from psc.common import get_logger
from psc.errors import ProducerError

if TYPE_CHECKING:
    from array import array

_log = get_logger("psc.batch_producer")

# librdkafka logs with syslog levels; the logging module's, as confluent-kafka maps them.
_LOG_LEVELS = {0: 50, 1: 50, 2: 50, 3: 40, 4: 30, 5: 20, 6: 20, 7: 10}

IntHeader = tuple[str, bytes, Sequence[int]]
if TYPE_CHECKING:  # array is subscriptable at run time from Python 3.12 only
    Buffer = bytes | bytearray | memoryview | array[int]


class FailedRecord:
    """A record whose delivery failed, as ``DeliveryTally.failed(err, record)`` receives it: the accessors of
    a confluent-kafka ``Message``."""

    __slots__ = ("_error", "_headers", "_key", "_partition", "_topic", "_value")

    def __init__(
        self,
        error: KafkaError,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
    ) -> None:
        self._error = error
        self._topic = topic
        self._partition = partition
        self._key = key
        self._value = value
        self._headers = headers

    def error(self) -> KafkaError:
        return self._error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes | None]]:
        return self._headers


_NATIVE, _UNAVAILABLE = load_module("psc._rdkafka")


def _setting(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class BatchProducer:
    """A Kafka producer for one cluster (named by any of its topic or cluster URIs) that queues batches."""

    @staticmethod
    def available() -> bool:
        """Whether batches can be queued in C here (the extension is built and librdkafka loads)."""
        return _NATIVE is not None

    def __init__(self, config: Mapping[str, Any] | None, uri: str) -> None:
        if _NATIVE is None:
            raise ProducerError(f"batch producing is unavailable: {_UNAVAILABLE}")
        raw, callbacks = split_callbacks(dict(config or {}), "producer")
        if callbacks.own is not None or callbacks.native or callbacks.error_cb is not None:
            raise ProducerError("a BatchProducer takes no callbacks: failures go to each batch's tally")
        psc_config = PscConfig.from_mapping(raw, client_type="producer")
        settings = _Settings(psc_config, None, None, (), client_metrics())
        if settings.transactional:
            raise ProducerError("a BatchProducer is not transactional")
        parsed = TopicUri.parse(uri)
        if not isinstance(get_backend(parsed.service), KafkaBackend):
            raise ProducerError(f"batch producing needs a Kafka cluster: {uri!r}", topic_uri=uri)
        cluster = resolve_cluster(parsed, psc_config)
        self.cluster_uri = cluster.cluster_uri
        self._cluster = cluster
        self._topics: dict[str, str] = {}  # topic URI -> Kafka topic name
        self._logger = NativeLogger(cluster.cluster_uri, "producer")
        self._fatal: str | None = None
        self._closed = False
        native = {k: _setting(v) for k, v in native_config(cluster.endpoint, settings.native).items()}
        try:
            self._native = _NATIVE.Producer(native, self._failed, self._error, self._log_line)
        except (ValueError, TypeError) as exc:
            raise ProducerError(f"cannot create a producer for {cluster.cluster_uri!r}: {exc}") from exc

    def produce_batch(
        self,
        topic_uri: str,
        values: Sequence[bytes],
        tally: DeliveryTally,
        *,
        partitions: Sequence[int] | None = None,
        keys: Sequence[bytes | None] | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        int_headers: Sequence[IntHeader] = (),
    ) -> tuple[int, KafkaError | None]:
        """Queue ``values[i]`` to ``partitions[i]`` (None: librdkafka's partitioner) with key ``keys[i]``.

        Every record carries ``headers``, and for each ``(name, prefix, numbers)`` of ``int_headers`` a header
        ``name`` of value ``prefix + numbers[i]`` as 8 bytes big-endian. Each record's delivery is reported to
        ``tally`` (its ``pending`` is not changed here: set it to the records expected). Returns how many
        records were queued, and the error that stopped the next one (a full queue, a record too large), or
        None: records from that index on were not queued and will not be reported.
        """
        topic = self._topic(topic_uri)
        queued, code, reason = self._native.produce_batch(topic, values, partitions, keys, headers, int_headers, tally)
        return queued, (None if code == 0 else KafkaError(code, reason))

    def produce_slices(
        self,
        topic_uri: str,
        buffer: Buffer,
        first: int,
        ends: Buffer,
        sizes: Buffer,
        sizes_before: int,
        tally: DeliveryTally,
        *,
        partitions: Sequence[int] | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        end_header: tuple[str, bytes, int] | None = None,
        copy: bool = True,
    ) -> tuple[int, KafkaError | None]:
        """Queue records that are slices of one ``buffer``, described by two int64 columns (buffers of 'q').

        Record ``i`` is the bytes from where record ``i-1`` ended (``first`` for record 0), ``sizes[i] -
        sizes[i-1]`` of them (``sizes`` is a running total that stood at ``sizes_before`` before record 0),
        and ends at ``ends[i]`` or before. It goes to ``partitions[i]`` (None: librdkafka's partitioner), with
        ``headers`` and, when ``end_header`` is ``(name, prefix, base)``, a header ``name`` of value ``prefix +
        (base + ends[i])`` as 8 bytes big-endian. No Python object is made per record, and the GIL is released
        while they are queued. Reports and the return value are as for :meth:`produce_batch`.

        ``copy=False`` hands librdkafka pointers into ``buffer`` rather than copies of the values: no allocation
        and copy per record, and the bytes are held once. ``tally`` then keeps a view of ``buffer`` until it is
        freed, and each record holds ``tally`` until its report, so the buffer cannot be freed or resized while
        a record points into it (dropping every other reference is safe, on a timeout or a purge too). Do not
        write into it until every record queued from it is reported."""
        topic = self._topic(topic_uri)
        queued, code, reason = self._native.produce_slices(
            topic, buffer, first, ends, sizes, sizes_before, partitions, headers, end_header, tally, copy
        )
        return queued, (None if code == 0 else KafkaError(code, reason))

    def _topic(self, topic_uri: str) -> str:
        """The native topic of ``topic_uri``, parsed and checked once per URI."""
        topic = self._topics.get(topic_uri)
        if topic is not None:
            return topic
        uri = TopicUri.parse(topic_uri)
        if uri.cluster_prefix != self.cluster_uri or uri.is_cluster:
            raise ProducerError(f"{topic_uri!r} is not a topic of {self.cluster_uri!r}", topic_uri=topic_uri)
        topic = self._topics[topic_uri] = self._cluster.topic_name(uri)
        return topic

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports, waiting up to ``timeout`` seconds for the first; raises if the client failed."""
        served = int(self._native.poll(timeout))
        self._check_fatal()
        return served

    def flush(self, timeout: float | None = None) -> int:
        """Send the queued records at once (without waiting for their linger time) and serve reports until
        every record is reported or ``timeout`` passes; returns the records left."""
        left = int(self._native.flush(-1.0 if timeout is None else timeout))
        self._check_fatal()
        return left

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        """Fail the records not yet sent (and those in flight): their reports come with the next poll."""
        self._native.purge(in_queue, in_flight, blocking)

    def close(self, timeout: float | None = None) -> None:
        """Flush (up to ``timeout``), report what is left as purged, and release the client; idempotent. Calls
        after it raise ``RuntimeError``."""
        if self._closed:
            return
        self._closed = True
        try:
            self._native.flush(-1.0 if timeout is None else timeout)
            self._native.purge(True, True, False)
            self._native.poll(0.0)
        finally:
            self._native.close()

    def __len__(self) -> int:
        return len(self._native)

    def __enter__(self) -> BatchProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- callbacks from librdkafka, served by poll/flush ----------------------------------------------

    def _failed(
        self,
        tally: DeliveryTally,
        code: int,
        reason: str,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
    ) -> None:
        error = KafkaError(code, reason)
        tally.failed(error, FailedRecord(error, self._cluster.topic_uri(topic), partition, key, value, headers))

    def _error(self, code: int, reason: str, fatal: bool) -> None:
        error = KafkaError(code, reason, fatal=fatal)
        _log.warning("producer client error", cluster_uri=self.cluster_uri, error=str(error), fatal=fatal)
        if fatal and self._fatal is None:
            self._fatal = str(error)

    def _log_line(self, level: int, facility: str, text: str) -> None:
        self._logger.log(_LOG_LEVELS.get(level, 10), "%s [%s] %s", facility, "batch", text)

    def _check_fatal(self) -> None:
        if self._fatal is not None:
            raise ProducerError(f"the producer of {self.cluster_uri!r} failed: {self._fatal}")
