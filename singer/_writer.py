"""Sending batches through one shared ``psc.Producer`` per producer configuration.

Nothing here blocks: records are queued with a delivery callback bound to their batch, and the agent's loop
serves callbacks with ``poll(0)``. A batch is done when every record has been reported; it succeeded only
if every report was a success.

Each record carries the headers consumers deduplicate with: ``_mid`` (16 bytes: the file's inode, then the
offset after the record, both big-endian, as the reference agent writes it), ``_ots`` (the record's
timestamp in ns, or the read time), ``host`` and ``_fid`` (8 bytes naming the file's content generation, so
``_mid`` stays unique across copytruncate and reused inodes, where offsets start again).

To a Kafka topic a batch goes through ``psc.BatchProducer`` where it is available: the records are queued in
one C call, ``_mid``, ``_ots`` and ``_fid`` built there from integers, and successes counted without a
Python call. Elsewhere (MemQ, builds without PSC's C extensions) each record goes through ``produce``.
"""

from __future__ import annotations

import functools
import operator
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psc
from psc.common.log import get_logger
from singer._files import CONTENT_ID_BYTES
from singer._partitioners import Partitioner, Partitions
from singer._racks import RackReader
from singer._records import Lines, Record
from singer._watermark import Watermark

_log = get_logger("singer.writer")

# What a record in flight costs beyond its value: its headers, librdkafka's message and PSC's report
# bookkeeping. Counted against max_inflight_bytes, so the cap bounds memory for short lines too.
RECORD_OVERHEAD_BYTES = 512
MID = struct.Struct(">QQ")
MID_INODE = struct.Struct(">Q")  # the first half of ``_mid``; the batch producer appends the offset
OTS = struct.Struct(">q")
PARTITIONS_TTL_S = 30.0
QUEUE_FULL_WAIT_S = 1.0  # how long a batch waits for room in a full producer queue before it fails
_VALUE = operator.itemgetter(0)  # Record.value, in C
_NEXT_OFFSET = operator.itemgetter(1)
_KEY = operator.itemgetter(2)
_TIMESTAMP = operator.itemgetter(3)


class Batch(psc.DeliveryTally):
    """Records read together from one file, acknowledged as a whole; the delivery callback of all of them.

    As a ``DeliveryTally`` its successes are counted without a Python call per record."""

    __slots__ = ("bytes", "count", "deadline", "failures", "held", "watermark")

    def __init__(self, watermark: Watermark, count: int, nbytes: int, deadline: float) -> None:
        super().__init__(count)
        self.watermark = watermark  # where the stream resumes once this batch and all before it are delivered
        self.count = count
        self.bytes = nbytes
        self.held = nbytes + count * RECORD_OVERHEAD_BYTES  # memory held until it is acknowledged
        self.failures: list[tuple[str, int | None]] = []  # (error, offset after the failed record)
        self.deadline = deadline

    def failed(self, err: Any, msg: Any) -> None:
        self.failures.append((str(err), _next_offset_of(msg)))

    @property
    def done(self) -> bool:
        return self.pending <= 0

    @property
    def ok(self) -> bool:
        return self.pending <= 0 and not self.failures


def _next_offset_of(msg: Any) -> int | None:
    try:
        headers = msg.headers() or ()
        for name, value in headers.items() if isinstance(headers, dict) else headers:
            if name == "_mid":
                return int(MID.unpack(value)[1])
    except Exception:  # a report without headers: the record is not identified
        return None
    return None


ProducerFactory = Callable[[Mapping[str, str]], Any]


class Writer:
    """One producer for every stream with the same producer configuration."""

    def __init__(
        self, config: Mapping[str, str], factory: ProducerFactory = psc.Producer, batches: bool | None = None
    ) -> None:
        self.config = dict(config)
        self.factory = factory
        self.producer = factory(self.config)
        self._partitions: dict[tuple[str, bool], tuple[float, Partitions]] = {}
        self._racks = RackReader(self.config)
        # Batches in C go with PSC's own producer; another factory (a test's) gets every record.
        self.batches = (factory is psc.Producer) if batches is None else batches
        self._batchers: dict[str, psc.BatchProducer] = {}  # per cluster URI
        self._batcher_of: dict[str, psc.BatchProducer | None] = {}  # per topic URI; None: per record

    def partitions(self, topic_uri: str, with_racks: bool = False) -> Partitions:
        """The topic's partitions, from metadata at most ``PARTITIONS_TTL_S`` old; raises if it has none.

        ``with_racks`` also reads each partition leader's rack, which takes a request of its own."""
        now = time.monotonic()
        cached = self._partitions.get((topic_uri, with_racks))
        if cached is not None and now - cached[0] < PARTITIONS_TTL_S:
            return cached[1]
        metadata = self.producer.list_topics(topic_uri, 10.0)
        topic = metadata.topics.get(topic_uri) or metadata.topics.get(psc.parse_topic_uri(topic_uri).topic)
        if topic is None or topic.error is not None or not topic.partitions:
            problem = "not in the metadata" if topic is None else (topic.error or "no partitions")
            raise RuntimeError(f"topic {topic_uri}: {problem}")
        ids = tuple(sorted(topic.partitions))
        if with_racks:
            leaders = {p.id: p.leader for p in topic.partitions.values()}
            parts = Partitions(ids, self._racks.leader_racks(topic_uri, leaders))
        else:
            parts = Partitions(ids)
        self._partitions[(topic_uri, with_racks)] = (now, parts)
        return parts

    def send(
        self,
        topic_uri: str,
        records: Sequence[Record],
        batch: Batch,
        partitioner: Partitioner,
        inode: int,
        host: bytes,
        content_id: Callable[[int], bytes],
    ) -> None:
        """Queue ``records``; every one is reported to ``batch``. A record the producer refuses is reported
        failed at once, so the batch still completes. ``content_id(next_offset)`` gives the ``_fid`` header."""
        parts = self.partitions(topic_uri, partitioner.wants_racks)
        keys: list[bytes | None] = [None] * len(records) if isinstance(records, Lines) else list(map(_KEY, records))
        chosen = partitioner.partition_many(keys, parts)
        batcher = self._batcher_of[topic_uri] if topic_uri in self._batcher_of else self._batcher(topic_uri)
        if batcher is not None and isinstance(records, Lines):
            self._send_lines(batcher, topic_uri, records, chosen, batch, inode, host, content_id)
            return
        if batcher is not None:
            self._send_batch(batcher, topic_uri, records, keys, chosen, batch, inode, host, content_id)
            return
        produce = self.producer.produce
        pack_mid, pack_ots = MID.pack, OTS.pack
        read_ots = pack_ots(time.time_ns())  # text records have no timestamp: the read time
        file_id = content_id(CONTENT_ID_BYTES)
        index = 0
        try:
            for index, partition in enumerate(chosen):  # index names the first record not queued
                value, end, key, ts = records[index]
                # A dict: confluent-kafka converts it with less work than a list of pairs.
                headers = {
                    "_mid": pack_mid(inode, end),
                    "_ots": read_ots if ts is None else pack_ots(ts),
                    "host": host,
                    "_fid": file_id if end >= CONTENT_ID_BYTES else content_id(end),
                }
                produce(topic_uri, value, key, partition, headers=headers, on_delivery=batch)
        except (BufferError, psc.PscError, ValueError) as exc:
            # Whatever was not queued fails the batch: it is read again from the watermark.
            for rest in records[index:]:
                batch.pending -= 1
                batch.failures.append((f"not queued: {exc}", rest.next_offset))

    def _send_batch(
        self,
        batcher: psc.BatchProducer,
        topic_uri: str,
        records: Sequence[Record],
        keys: list[bytes | None],
        chosen: Sequence[int],
        batch: Batch,
        inode: int,
        host: bytes,
        content_id: Callable[[int], bytes],
        read_ns: int | None = None,
    ) -> None:
        """``send`` through the batch producer: the same records and headers, queued in one call. ``read_ns``:
        the read time, the ``_ots`` of records without a timestamp (default: now)."""
        values = list(map(_VALUE, records))
        ends = list(map(_NEXT_OFFSET, records))
        fids = [_signed(content_id(CONTENT_ID_BYTES))] * len(records)
        for i, end in enumerate(ends):  # records ending in the file's first bytes: a shorter content id
            if end >= CONTENT_ID_BYTES:
                break
            fids[i] = _signed(content_id(end))
        stamps = list(map(_TIMESTAMP, records))
        int_headers = [("_mid", MID_INODE.pack(inode), ends), ("_fid", b"", fids)]
        headers = [("host", host)]
        read_ns = time.time_ns() if read_ns is None else read_ns
        if stamps.count(None) < len(stamps):
            int_headers.append(("_ots", b"", [read_ns if ts is None else ts for ts in stamps]))
        else:
            headers.append(("_ots", OTS.pack(read_ns)))  # text records have no timestamp: the read time
        keyed = keys.count(None) < len(keys)
        start, error = 0, None
        deadline = time.monotonic() + QUEUE_FULL_WAIT_S
        while start < len(records):
            queued, error = batcher.produce_batch(
                topic_uri,
                values[start:] if start else values,
                batch,
                partitions=chosen[start:] if start else chosen,
                keys=(keys[start:] if start else keys) if keyed else None,
                headers=headers,
                int_headers=[(name, prefix, numbers[start:]) for name, prefix, numbers in int_headers]
                if start
                else int_headers,
            )
            start += queued
            if error is None or error.code() != psc.KafkaError._QUEUE_FULL or time.monotonic() > deadline:
                break
            batcher.poll(0.005)  # the queue is full: serve reports to make room
        # Whatever was not queued fails the batch: it is read again from the watermark.
        for rest in records[start:]:
            batch.pending -= 1
            batch.failures.append((f"not queued: {error}", rest.next_offset))

    def _send_lines(
        self,
        batcher: psc.BatchProducer,
        topic_uri: str,
        lines: Lines,
        chosen: Sequence[int],
        batch: Batch,
        inode: int,
        host: bytes,
        content_id: Callable[[int], bytes],
    ) -> None:
        """``send`` of text lines kept as columns: produced as slices of their read buffer, in one C call, and not
        copied: the buffer is held by the batch until the producer has reported every line, so it outlives a
        rewind or a timed-out batch that librdkafka still holds. Every line of the batch gets one ``_ots``,
        those sent as records included: consumers tell batches apart by it."""
        read_ns = time.time_ns()
        head = 0  # lines ending in the file's first bytes have a shorter content id: sent as records
        while head < len(lines) and lines.next_offset(head) < CONTENT_ID_BYTES:
            head += 1
        if head:
            self._send_batch(batcher, topic_uri, list(lines[:head]), [None] * head, chosen[:head], batch, inode,
                             host, content_id, read_ns)  # fmt: skip
            lines, chosen = lines[head:], chosen[head:]
        headers = [("host", host), ("_ots", OTS.pack(read_ns)), ("_fid", content_id(CONTENT_ID_BYTES))]
        end_header = ("_mid", MID_INODE.pack(inode), lines.base)
        start, error = 0, None
        deadline = time.monotonic() + QUEUE_FULL_WAIT_S
        while start < len(lines):
            rest = lines[start:] if start else lines
            queued, error = batcher.produce_slices(
                topic_uri,
                rest.buffer,
                rest.value_start,
                rest.ends[rest.lo : rest.hi],
                rest.running_bytes(),
                rest.bytes_before,
                batch,
                partitions=chosen[start:] if start else chosen,
                headers=headers,
                end_header=end_header,
                copy=False,  # the batch (the tally) keeps the buffer alive until every line is reported
            )
            start += queued
            if error is None or error.code() != psc.KafkaError._QUEUE_FULL or time.monotonic() > deadline:
                break
            batcher.poll(0.005)  # the queue is full: serve reports to make room
        # Whatever was not queued fails the batch: it is read again from the watermark.
        for index in range(start, len(lines)):
            batch.pending -= 1
            batch.failures.append((f"not queued: {error}", lines.next_offset(index)))

    def _batcher(self, topic_uri: str) -> psc.BatchProducer | None:
        """The batch producer of a topic URI's cluster, made on first use; None where records go one by one."""
        batcher = None
        if self.batches and psc.BatchProducer.available():
            try:
                cluster = psc.parse_topic_uri(topic_uri).cluster_prefix
                batcher = self._batchers.get(cluster)
                if batcher is None:
                    batcher = self._batchers[cluster] = psc.BatchProducer(self.config, topic_uri)
            except psc.PscError as exc:  # not Kafka: records go one by one
                _log.info("records sent one by one", topic_uri=topic_uri, reason=str(exc))
        self._batcher_of[topic_uri] = batcher
        return batcher

    def dead_letter(
        self,
        topic_uri: str,
        record: Record,
        inode: int,
        host: bytes,
        file_id: bytes,
        reason: str,
        done: Callable[[bool], None],
    ) -> None:
        """Send an undeliverable record to the dead-letter topic; ``done(True)`` once it is there."""
        headers = [
            ("_mid", MID.pack(inode, record.next_offset)),
            ("host", host),
            ("_fid", file_id),
            ("_error", reason.encode()[:1000]),
        ]

        def report(err: Any, msg: Any) -> None:
            done(err is None)

        try:
            self.producer.produce(topic_uri, record.value, record.key, headers=headers, on_delivery=report)
        except (BufferError, psc.PscError, ValueError) as exc:
            _log.error("dead letter refused", topic_uri=topic_uri, error=str(exc))
            done(False)

    def poll(self, timeout: float = 0.0) -> None:
        """Serve delivery reports; ``timeout`` is waited on one producer only: the batch producer, if any."""
        try:
            if self._batchers:
                self.producer.poll(0)
                for batcher in self._batchers.values():
                    batcher.poll(timeout)
                    timeout = 0
            else:
                self.producer.poll(timeout)
        except Exception as exc:  # a fatal client error (PSC's remediation is off): start a new producer
            _log.error("producer failed, replacing it", error=str(exc))
            self._replace()

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` for delivery reports, when the agent has nothing more to send for now: records
        queued in the batch producer go out at once rather than after its linger time. With a timeout of 0 it
        returns at once, after asking for what is queued to be sent (best effort: librdkafka takes the linger
        as over only while the call runs)."""
        if not any(map(len, self._batchers.values())):
            self.poll(timeout)
            return
        try:
            self.producer.poll(0)
            for batcher in self._batchers.values():
                if len(batcher):
                    batcher.flush(timeout)
                    timeout = 0
                else:
                    batcher.poll(0)
        except Exception as exc:  # a fatal client error: start a new producer
            _log.error("producer failed, replacing it", error=str(exc))
            self._replace()

    def _replace(self) -> None:
        """New producers; the old ones' records fail (purged), so their batches rewind and are re-sent."""
        old, self.producer = self.producer, self.factory(self.config)
        batchers = list(self._batchers.values())
        self._batchers.clear()
        self._batcher_of.clear()
        self._partitions.clear()
        steps: list[Callable[[], Any]] = [old.purge, old.close]
        for batcher in batchers:  # purged records are reported failed before the client goes
            steps += [batcher.purge, functools.partial(batcher.close, 0)]
        for step in steps:
            try:
                step()
            except Exception as exc:  # the old client is broken: batches it does not report time out
                _log.warning("failed producer not closed cleanly", error=str(exc))

    def close(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for batcher in self._batchers.values():
            batcher.close(max(deadline - time.monotonic(), 0.0))
        self.producer.flush(max(deadline - time.monotonic(), 0.0))
        self.producer.close()


def _signed(eight: bytes) -> int:
    """8 bytes as the signed integer whose big-endian encoding they are (the batch producer writes int64s)."""
    return int.from_bytes(eight, "big", signed=True)
