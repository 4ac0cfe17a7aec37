"""memq.Consumer: reads notifications in a Kafka consumer group, then the objects they announce.

Objects are read with ranged reads: the index first, then windows of producer messages, so a large object is
never held in memory whole. Every producer message's CRC is checked. A record's offset is PSC's packed form,
`notification offset << 19 | record index in the object`, and a commit records that exact position (the Kafka
offset of the notification plus the record index in the commit's metadata), so a restart resumes mid-object.
A missing or corrupt object raises `CorruptObjectError`, or goes to a dead-letter topic; nothing is skipped
silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, islice, repeat
from typing import Any, ClassVar, NamedTuple, Protocol

import psc
from memq._errors import CorruptObjectError, FormatError, MemqError, ObjectNotFoundError, StorageError
from memq._format import (
    MessageHeader,
    Notification,
    ObjectIndex,
    RecordColumns,
    decode_message_columns,
    parse_message_header,
)
from memq._format import parse_object_index as _parse_index
from memq.storage import FileStorage, StorageHandler, open_storage
from psc.common import get_logger
from psc.common.metrics import MetricsRegistry, default_registry

__all__ = ["RECORD_INDEX_BITS", "Consumer", "ConsumerMetrics", "ConsumerRecord", "pack_offset", "unpack_offset"]

RECORD_INDEX_BITS = 19
_RECORD_MASK = (1 << RECORD_INDEX_BITS) - 1
_METADATA_PREFIX = "memq:"  # commit metadata: the index of the next record in the committed notification's object
_PEEK = 64  # bytes enough for any producer message header

_log = get_logger("memq.consumer")
_new_tuple = tuple.__new__


def pack_offset(notification_offset: int, record_index: int) -> int:
    """PSC's offset of a MemQ record: 45 bits of notification offset, 19 bits of record index in the object."""
    if not 0 <= record_index <= _RECORD_MASK:
        raise ValueError(f"record index {record_index} does not fit in {RECORD_INDEX_BITS} bits")
    return notification_offset << RECORD_INDEX_BITS | record_index


def unpack_offset(offset: int) -> tuple[int, int]:
    """(notification offset, record index in the object) of a packed offset."""
    return offset >> RECORD_INDEX_BITS, offset & _RECORD_MASK


class ConsumerRecord(NamedTuple):
    """A record read from an object, with where it came from (a named tuple: one is made per record)."""

    topic: str  # the MemQ topic named by the notification
    notification_uri: str  # the notification topic URI it was announced on
    partition: int  # of the notification topic
    offset: int  # packed: notification offset << 19 | record index in the object
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int
    message_id: bytes | None
    object_location: str
    message_index: int  # of the producer message in the object
    last_in_object: bool

    @property
    def notification_offset(self) -> int:
        return self.offset >> RECORD_INDEX_BITS

    @property
    def record_index(self) -> int:
        return self.offset & _RECORD_MASK

    def next_position(self) -> _Position:
        if self.last_in_object:
            return _Position(self.notification_offset + 1, 0)
        return _Position(self.notification_offset, self.record_index + 1)


class NotificationConsumer(Protocol):
    """What the consumer needs of `psc.Consumer`; tests may pass a double."""

    def subscribe(self, topic_uris: Sequence[str], on_assign: Any = None, on_revoke: Any = None) -> None: ...
    def poll(self, timeout: float | None = None) -> Any: ...
    def commit(self, *, offsets: Sequence[psc.TopicUriPartition], asynchronous: bool = True) -> Any: ...
    def committed(self, partitions: Sequence[psc.TopicUriPartition], timeout: float = -1) -> Any: ...
    def seek(self, partition: psc.TopicUriPartition) -> None: ...
    def assignment(self) -> list[psc.TopicUriPartition]: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Position:
    """The next record to read on one notification partition."""

    notification_offset: int
    record_index: int

    def packed(self) -> int:
        return pack_offset(self.notification_offset, self.record_index)


class _ObjectReader:
    """Reads one announced object: the index, then windows of producer messages, record by record.

    A failure is kept and raised again on every call until the reader is skipped past it or dropped.
    """

    def __init__(
        self,
        source: tuple[str, int, int],
        raw: bytes,
        resolve: Callable[[Notification], tuple[StorageHandler, str]],
        start_index: int,
        settings: _Settings,
    ) -> None:
        self.uri, self.partition, self.notification_offset = source
        self.raw = raw
        self.settings = settings
        self.key = f"{self.uri}[{self.partition}]@{self.notification_offset}"  # until the notification is read
        # The records of the producer message decoded last, made as they are handed out (pending: how many are
        # left): the caller usually drops them before the collector's youngest generation fills up, so they are
        # never traversed, where a whole message of records made at once would be promoted and traversed again.
        self._records: Iterator[Any] = iter(())  # of settings.record_type
        self.pending = 0
        self.failure: CorruptObjectError | None = None
        self.done = False
        self._start = start_index
        self._entry = 0  # next index entry to fetch
        self._record_index = 0  # object-wide index of the first record of entry `_entry`
        self._index: ObjectIndex | None = None
        self._window: bytes | None = None  # fetched producer messages not yet decoded: entries up to _window_stop
        self._window_base = 0  # the window's offset in the object
        self._window_stop = 0
        self._storage: StorageHandler | None = None
        self.notification: Notification | None = None
        try:
            self.notification = Notification.from_json(raw)
            self._storage, self.key = resolve(self.notification)
        except (FormatError, StorageError) as exc:
            self._fail(-1, f"unusable notification {raw[:200]!r}: {exc}", next_object=True)

    @property
    def location(self) -> str:
        return self.notification.location if self.notification else self.key

    def next(self) -> ConsumerRecord | None:
        """The next record, None once the object is read; raises its failure until skipped."""
        while not self.pending:
            if self.failure is not None:
                raise self.failure
            if self.done:
                return None
            self._advance()
        self.pending -= 1
        record: ConsumerRecord = next(self._records)
        return record

    def take(self, limit: int) -> list[ConsumerRecord]:
        """Up to `limit` records already decoded (none when the next producer message is due: `next` decodes it)."""
        taken = min(limit, self.pending)
        self.pending -= taken
        return list(islice(self._records, taken))

    def after_failure(self) -> _Position:
        """Where reading resumes past the failure: the next producer message if its size is known, else the next
        notification."""
        assert self.failure is not None and self.failure.resume_offset is not None
        return _Position(*unpack_offset(self.failure.resume_offset))

    def skip_failure(self) -> None:
        position = self.after_failure()
        self.failure = None
        self._window = None
        if position.notification_offset != self.notification_offset:
            self.done = True
        else:
            self._entry += 1
            self._record_index = position.record_index

    # -- reading -----------------------------------------------------------------------------------------

    def _advance(self) -> None:
        """Decode the next producer message of the window, fetching the window first when none is left.

        A window's messages are decoded one at a time as their records are asked for, so only one message's
        records exist at once: they are usually handed out and dropped before the garbage collector's youngest
        generation fills up, which keeps its work per record small without turning it off.
        """
        if self._window is None:
            if self._index is None:
                self._index = self._read_index()
                if self._index is None:
                    return
            entries = self._index.entries
            while self._entry < len(entries) and self._start > self._record_index:
                count = self._peek_count(self._entry)
                if count is None:
                    return
                if self._record_index + count > self._start:
                    break  # the start lies inside this message: read it and drop the records before the start
                self._record_index += count
                self._entry += 1
            if self._entry >= len(entries):
                self.done = True
                return
            self._read_window()
            if self._window is None:
                return
        self._decode_next()

    def _read(self, start: int, length: int, *, partial: bool = False) -> bytes | None:
        """Bytes of the object, retried on transient errors; None (and a failure) if they are not all there,
        unless `partial` allows fewer where the object ends."""
        assert self._storage is not None
        for attempt in range(self.settings.read_retries + 1):
            try:
                began = time.monotonic()
                data = self._storage.read(self.key, start, length)
                self.settings.metrics.fetch_seconds.observe(time.monotonic() - began)
                self.settings.metrics.fetched_bytes.inc(len(data))
                break
            except ObjectNotFoundError:
                self._fail(-1, "object not found", next_object=True)
                return None
            except StorageError:
                if attempt == self.settings.read_retries:
                    raise
                time.sleep(min(0.1 * 2**attempt, 2.0))
        if len(data) < length and not partial:
            self._fail(start + len(data), f"object ends early: wanted bytes {start}..{start + length - 1}")
            return None
        return data

    def _read_index(self) -> ObjectIndex | None:
        assert self.notification is not None
        head = self._read(0, self.notification.header_size)
        if head is None:
            return None
        try:
            index = _parse_index(head, self.notification.object_size)
        except FormatError as exc:
            self._fail(exc.offset, f"bad index: {exc.reason}", next_object=True)
            return None
        if len(index.entries) != self.notification.message_count:
            self._fail(
                4, f"index has {len(index.entries)} messages, the notification says {self.notification.message_count}"
            )
            return None
        return index

    def _peek_count(self, entry_number: int) -> int | None:
        assert self._index is not None
        entry = self._index.entries[entry_number]
        head = self._read(entry.offset, min(entry.size, _PEEK))
        if head is None:
            return None
        try:
            header = parse_message_header(head, with_body=False)
        except FormatError as exc:
            self._fail(entry.offset + exc.offset, f"producer message {entry.id}: {exc.reason}", next_object=True)
            return None
        return header.record_count

    def _read_window(self) -> None:
        """Fetch whole producer messages from `_entry` on, at most `fetch_bytes` of them (at least one)."""
        assert self._index is not None
        entries = self._index.entries
        last = self._entry
        while (
            last + 1 < len(entries)
            and entries[last + 1].offset + entries[last + 1].size - entries[self._entry].offset
            <= self.settings.fetch_bytes
        ):
            last += 1
        base = entries[self._entry].offset
        window = self._read(base, entries[last].offset + entries[last].size - base, partial=True)
        if window is not None:
            self._window, self._window_base, self._window_stop = window, base, last + 1

    def _decode_next(self) -> None:
        assert self._index is not None and self._window is not None
        entries, window, base = self._index.entries, self._window, self._window_base
        number = self._entry
        entry = entries[number]
        if entry.offset + entry.size > base + len(window):  # the messages before it are still delivered
            self._window = None
            end = entry.offset + entry.size - 1
            self._fail(base + len(window), f"object ends early: wanted bytes {entry.offset}..{end}")
            return
        header, records = self._decode(window, entry.offset - base, entry.size, number)
        if header is None:
            self._window = None
            return
        self._emit(number, records, final=number == len(entries) - 1)
        self._entry += 1
        self._record_index += len(records[0])
        if self._entry >= self._window_stop:
            self._window = None

    def _decode(self, window: bytes, at: int, size: int, number: int) -> tuple[MessageHeader | None, RecordColumns]:
        assert self._index is not None
        base = self._index.entries[number].offset
        message = memoryview(window)[at : at + size]
        try:
            header, records = decode_message_columns(message, max_body_bytes=self.settings.max_body_bytes)
            if header.size != size:
                raise FormatError(f"message of {header.size} bytes where the index has {size}", 0)
        except FormatError as exc:
            count = _count_or_none(message)
            self._fail(base + exc.offset, f"producer message {number}: {exc.reason}", skip_records=count)
            return None, ([], [], [], [], [])
        return header, records

    def _emit(self, number: int, columns: RecordColumns, *, final: bool) -> None:
        assert self.notification is not None
        first = self._record_index
        total = len(columns[0])
        if first + total - 1 > _RECORD_MASK:
            raise MemqError(
                f"object {self.key!r} holds more than {_RECORD_MASK + 1} records, beyond PSC's packed offsets"
            )
        topic, uri, partition, location = self.notification.topic, self.uri, self.partition, self.location
        skip = max(0, self._start - first)
        count = total - skip
        if count <= 0:
            return
        values, keys, headers, stamps, ids = (column[skip:] for column in columns) if skip else columns
        start = (self.notification_offset << RECORD_INDEX_BITS) + first + skip  # the index fits its 19 bits
        ends = chain(repeat(False, count - 1), (final,))
        rows = zip(
            repeat(topic),
            repeat(uri),
            repeat(partition),
            range(start, start + count),
            keys,
            values,
            headers,
            stamps,
            ids,
            repeat(location),
            repeat(number),
            ends,
            strict=False,  # the repeats are endless; the columns have `count` items
        )
        self._records = map(_new_tuple, repeat(self.settings.record_type), rows)  # no Python frame per record
        self.pending = count
        self.settings.metrics.records.inc(count)

    def _fail(self, offset: int, reason: str, *, next_object: bool = False, skip_records: int | None = None) -> None:
        if next_object or skip_records is None or self._index is None or self._entry + 1 >= len(self._index.entries):
            resume = pack_offset(self.notification_offset + 1, 0)
        else:
            resume = pack_offset(self.notification_offset, self._record_index + skip_records)
        self.failure = CorruptObjectError(
            self.key,
            offset,
            reason,
            notification_offset=self.notification_offset,
            partition=self.partition,
            resume_offset=resume,
        )


def _committed_index(metadata: str | None) -> int:
    """The record index a commit's metadata names (0 when it names none)."""
    if not metadata or not metadata.startswith(_METADATA_PREFIX):
        return 0
    try:
        return min(max(int(metadata[len(_METADATA_PREFIX) :]), 0), _RECORD_MASK)
    except ValueError:
        _log.warning("ignoring unreadable commit metadata", metadata=metadata)
        return 0


def _flag(error: Any, attribute: str) -> Any:
    """An attribute of a PSC error, or the method of the same name on a confluent-kafka KafkaError."""
    value = getattr(error, attribute, None)
    return value() if callable(value) else value


def _next(place: ConsumerRecord | _Position) -> _Position:
    if isinstance(place, _Position):
        return place
    # By position: records may be made as another tuple type with ConsumerRecord's fields (_Settings.record_type).
    offset, last_in_object = place[3], place[11]
    if last_in_object:
        return _Position((offset >> RECORD_INDEX_BITS) + 1, 0)
    return _Position(offset >> RECORD_INDEX_BITS, (offset & _RECORD_MASK) + 1)


def _count_or_none(message: memoryview) -> int | None:
    try:
        return parse_message_header(message, with_body=False).record_count
    except FormatError:
        return None


class ConsumerMetrics:
    """Prometheus metrics of MemQ consumers (namespace `memq_consumer`)."""

    _default: ClassVar[ConsumerMetrics | None] = None

    def __init__(self, registry: MetricsRegistry) -> None:
        self.records = registry.counter("records_total", "Records returned by poll")
        self.objects = registry.counter("objects_total", "Notifications whose objects were opened")
        self.fetched_bytes = registry.counter("fetched_bytes_total", "Object bytes read by ranged reads")
        self.fetch_seconds = registry.histogram("fetch_seconds", "Latency of one ranged read of an object")
        self.corrupt = registry.counter(
            "corrupt_total", "Missing or corrupt objects and messages, by what was done", ["action"]
        )

    @classmethod
    def default(cls) -> ConsumerMetrics:
        """The metrics of every consumer in the process that is not given its own, in the default registry."""
        if cls._default is None:
            cls._default = cls(MetricsRegistry("memq_consumer", default_registry()))
        return cls._default


@dataclass(frozen=True, slots=True)
class _Settings:
    fetch_bytes: int
    read_retries: int
    max_body_bytes: int
    metrics: ConsumerMetrics
    # What records are made as: ConsumerRecord, or a tuple type with its fields in its order (the PSC backend's
    # message shape, made directly rather than copied from a ConsumerRecord).
    record_type: type[tuple[Any, ...]] = ConsumerRecord


class Consumer:
    """Reads MemQ records from notification topics, in a consumer group.

    `config` is a `psc.Consumer` config (project, discovery, group id, offset reset); pass
    `notification_consumer` instead to reuse a consumer. `storage_options` configure the S3 handlers the
    notifications lead to (e.g. `endpoint_url`). With `dead_letter_topic_uri`, an unreadable object or producer
    message is announced there (the notification as value, the failure in headers) and reading goes on past it;
    without, `poll` raises `CorruptObjectError` until the application seeks past it (`resume_offset`).
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        notification_consumer: NotificationConsumer | None = None,
        storage_options: Mapping[str, str] | None = None,
        dead_letter_topic_uri: str | None = None,
        dead_letter_producer: Any = None,
        fetch_bytes: int = 8 << 20,
        read_retries: int = 2,
        max_body_bytes: int = 256 << 20,
        metrics: ConsumerMetrics | None = None,
        _record_type: type[tuple[Any, ...]] = ConsumerRecord,
    ) -> None:
        if (config is None) == (notification_consumer is None):
            raise ValueError("pass either config or notification_consumer")
        self._owns_inner = notification_consumer is None
        # Positions are (notification, record index) pairs that this class commits itself: the inner
        # consumer's own automatic commits would mark whole objects read before their records were returned.
        inner_config = {**(config or {}), "psc.consumer.commit.auto.enabled": False}
        self._inner: NotificationConsumer = notification_consumer or psc.Consumer(inner_config)
        self._config = dict(config or {})
        self.metrics = metrics or ConsumerMetrics.default()
        self._settings = _Settings(fetch_bytes, read_retries, max_body_bytes, self.metrics, _record_type)
        self._storage_options = dict(storage_options or {})
        self._storages: dict[str, StorageHandler] = {}
        self._dead_letter_uri = dead_letter_topic_uri
        self._dead_letter = dead_letter_producer
        self._owns_dead_letter = False
        self._reader: _ObjectReader | None = None
        # Where reading stands per partition: the last record returned, or a position when none was returned.
        self._positions: dict[tuple[str, int], ConsumerRecord | _Position] = {}
        self._starts: dict[tuple[str, int], _Position] = {}  # from seek(): where to start in a notification
        self._resume_checked: set[tuple[str, int]] = set()

    # -- subscription ------------------------------------------------------------------------------------

    def subscribe(self, notification_topic_uris: Sequence[str]) -> None:
        """Read these notification topic URIs in the group (replacing any earlier subscription)."""
        self._inner.subscribe(list(notification_topic_uris), on_assign=self._on_assign, on_revoke=self._on_revoke)

    def assignment(self) -> list[tuple[str, int]]:
        """The (notification topic URI, partition) pairs this member of the group reads now."""
        return [(tp.topic_uri, tp.partition) for tp in self._inner.assignment()]

    def _on_assign(self, _consumer: Any, partitions: Sequence[psc.TopicUriPartition]) -> None:
        for tp in partitions:
            self._resume_checked.discard((tp.topic_uri, tp.partition))

    def _on_revoke(self, _consumer: Any, partitions: Sequence[psc.TopicUriPartition]) -> None:
        for tp in partitions:
            where = (tp.topic_uri, tp.partition)
            self._positions.pop(where, None)
            self._starts.pop(where, None)
            if self._reader is not None and (self._reader.uri, self._reader.partition) == where:
                self._reader = None

    # -- reading ---------------------------------------------------------------------------------------------

    def poll(self, timeout: float | None = None) -> ConsumerRecord | None:
        """The next record, or None if none arrived within `timeout` seconds (None: wait indefinitely)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            reader = self._reader
            if reader is not None:
                try:
                    record = reader.next()
                except CorruptObjectError as exc:
                    self._on_corrupt(reader, exc)
                    continue
                if record is not None:
                    self._positions[(reader.uri, reader.partition)] = record
                    return record
                self._positions[(reader.uri, reader.partition)] = _Position(reader.notification_offset + 1, 0)
                self._reader = None
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            message = self._inner.poll(left if left is not None else 1.0)
            if message is None:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            error = message.error()
            if error is not None:
                self._on_notification_error(error)
                continue
            self._reader = self._open(message)
            self.metrics.objects.inc()

    def consume(self, num_messages: int = 1, timeout: float | None = None) -> list[ConsumerRecord]:
        """Up to `num_messages` records, returning early once `timeout` seconds have passed with some read."""
        deadline = None if timeout is None else time.monotonic() + timeout
        out: list[ConsumerRecord] = []
        while len(out) < num_messages:
            reader = self._reader
            if reader is not None and reader.pending:  # records of the current producer message: taken in bulk
                taken = reader.take(num_messages - len(out))
                self._positions[(reader.uri, reader.partition)] = taken[-1]
                out += taken
                continue
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            record = self.poll(left)
            if record is None:
                break
            out.append(record)
        return out

    def _on_notification_error(self, error: Any) -> None:
        """Fatal errors of the notification consumer are raised; the client recovers from the others itself."""
        if _flag(error, "name") == "_PARTITION_EOF":
            return
        if not _flag(error, "fatal"):
            _log.warning("notification consumer error", error=str(error))
            return
        if isinstance(error, BaseException):
            raise error
        raise MemqError(f"notification consumer failed: {error}")

    def _open(self, message: Any) -> _ObjectReader:
        uri, partition, offset = message.topic(), message.partition(), message.offset()
        raw = message.value()
        raw = raw if isinstance(raw, bytes) else b"" if raw is None else str(raw).encode()
        return _ObjectReader(
            (uri, partition, offset), raw, self._resolve, self._start_index(uri, partition, offset), self._settings
        )

    def _start_index(self, uri: str, partition: int, offset: int) -> int:
        """The first record to read in the notification at `offset`: after a seek or a commit mid-object."""
        where = (uri, partition)
        start = self._starts.pop(where, None)
        if start is not None:
            self._resume_checked.add(where)
            return start.record_index if start.notification_offset == offset else 0
        if where in self._resume_checked:
            return 0
        self._resume_checked.add(where)
        for tp in self._inner.committed([psc.TopicUriPartition(uri, partition)], 10.0) or []:
            if tp.offset == offset:
                return _committed_index(tp.metadata)
        return 0

    def open_bucket(self, bucket: str) -> None:
        """Set up the client for an S3 bucket that notifications will name (from TOPIC_METADATA's `storage`), so
        that reading the first object does not also pay for the client's setup (a fifth of a second)."""
        if bucket not in self._storages:
            self._storages[bucket] = open_storage(f"s3://{bucket}", **self._storage_options)

    def _resolve(self, notification: Notification) -> tuple[StorageHandler, str]:
        if notification.bucket is not None:
            self.open_bucket(notification.bucket)
            storage = self._storages[notification.bucket]
        else:
            storage = self._storages.setdefault("file:", FileStorage("/"))
        return storage, storage.key_of(notification)

    def _on_corrupt(self, reader: _ObjectReader, error: CorruptObjectError) -> None:
        _log.error(
            "corrupt object",
            key=error.key,
            offset=error.offset,
            reason=error.reason,
            dead_letter=bool(self._dead_letter_uri),
        )
        self.metrics.corrupt.labels("raised" if self._dead_letter_uri is None else "dead_letter").inc()
        if self._dead_letter_uri is None:
            raise error
        self._send_dead_letter(reader, error)
        position = reader.after_failure()
        reader.skip_failure()
        if reader.done:
            self._positions[(reader.uri, reader.partition)] = position
            self._reader = None

    def _send_dead_letter(self, reader: _ObjectReader, error: CorruptObjectError) -> None:
        if self._dead_letter is None:
            generic = {k: v for k, v in self._config.items() if not k.startswith("psc.consumer.")}
            self._dead_letter = psc.Producer(generic)
            self._owns_dead_letter = True
        failures: list[Any] = []
        headers = [
            ("memq.error", error.reason.encode()),
            ("memq.object", error.key.encode()),
            ("memq.object.offset", str(error.offset).encode()),
            ("memq.notification", f"{reader.uri}[{reader.partition}]@{reader.notification_offset}".encode()),
            ("memq.resume.offset", str(error.resume_offset).encode()),
        ]
        self._dead_letter.produce(
            self._dead_letter_uri, reader.raw, headers=headers, on_delivery=lambda err, _msg: failures.append(err)
        )
        if self._dead_letter.flush(30.0) != 0 or any(err is not None for err in failures):
            raise MemqError(f"cannot send {error.key!r} to the dead-letter topic: {failures}") from error

    # -- positions ---------------------------------------------------------------------------------------

    def commit(
        self,
        record: ConsumerRecord | None = None,
        *,
        offsets: Mapping[tuple[str, int], int] | None = None,
        asynchronous: bool = False,
    ) -> None:
        """Commit the position after `record`, explicit packed `offsets` (the next record to read per
        (notification topic URI, partition)), or the position after every record returned so far."""
        if record is not None and offsets is not None:
            raise ValueError("commit() takes either a record or offsets, not both")
        if record is not None:
            after = {(record.notification_uri, record.partition): record.next_position()}
        elif offsets is not None:
            after = {where: _Position(*unpack_offset(offset)) for where, offset in offsets.items()}
        else:
            after = {where: _next(place) for where, place in self._positions.items()}
        if not after:
            return
        native = [
            psc.TopicUriPartition(
                uri,
                partition,
                position.notification_offset,
                metadata=f"{_METADATA_PREFIX}{position.record_index}" if position.record_index else None,
            )
            for (uri, partition), position in after.items()
        ]
        self._inner.commit(offsets=native, asynchronous=asynchronous)

    def committed(self, partitions: Sequence[tuple[str, int]], timeout: float = 10.0) -> dict[tuple[str, int], int]:
        """The group's committed packed offset per (notification topic URI, partition); Kafka's logical offsets
        (e.g. `psc.OFFSET_INVALID` when nothing is committed) pass through as they are."""
        asked = [psc.TopicUriPartition(uri, partition) for uri, partition in partitions]
        found = {}
        for tp in self._inner.committed(asked, timeout) or []:
            found[(tp.topic_uri, tp.partition)] = (
                pack_offset(tp.offset, _committed_index(tp.metadata)) if tp.offset >= 0 else tp.offset
            )
        return found

    def position(self) -> dict[tuple[str, int], int]:
        """Packed offset of the next record per (notification topic URI, partition) read so far."""
        return {where: _next(place).packed() for where, place in self._positions.items()}

    def seek(self, notification_uri: str, partition: int, offset: int) -> None:
        """Read `partition` from a packed offset, or from `psc.OFFSET_BEGINNING` / `psc.OFFSET_END`."""
        where = (notification_uri, partition)
        if self._reader is not None and (self._reader.uri, self._reader.partition) == where:
            self._reader = None
        self._positions.pop(where, None)
        if offset < 0:
            self._starts.pop(where, None)
            self._resume_checked.add(where)
            self._inner.seek(psc.TopicUriPartition(notification_uri, partition, offset))
            return
        start = _Position(*unpack_offset(offset))
        self._starts[where] = start
        self._inner.seek(psc.TopicUriPartition(notification_uri, partition, start.notification_offset))

    def seek_to_beginning(self, notification_uri: str, partition: int) -> None:
        self.seek(notification_uri, partition, psc.OFFSET_BEGINNING)

    def seek_to_end(self, notification_uri: str, partition: int) -> None:
        self.seek(notification_uri, partition, psc.OFFSET_END)

    # -- lifetime ----------------------------------------------------------------------------------------

    def close(self) -> None:
        self._reader = None
        for storage in self._storages.values():
            storage.close()
        self._storages.clear()
        if self._dead_letter is not None:
            self._dead_letter.flush(30.0)
            if self._owns_dead_letter:
                self._dead_letter.close()
        if self._owns_inner:
            self._inner.close()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
