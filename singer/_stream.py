"""One stream's pipeline: tail its files, send batches, and advance the watermark as batches are acknowledged.

Batches are settled in order, and the watermark moves to the end of a batch only when it and every batch
before it were fully acknowledged. A :class:`SendWindow` bounds the batches not yet covered by a written
watermark (one by default: the next batch is sent once the previous one's watermark is on disk), so a crash
resends at most that many; records read beyond the window wait in memory for it to open. A failed or
timed-out batch rewinds the stream to the watermark, once the producer has reported every batch it still
holds (it must not deliver records that are also sent again), and everything after it is read and sent
again after a backoff (at-least-once; consumers deduplicate by ``_mid``). A record that keeps failing while
its batch-mates succeed, or that the broker calls too large, is poison: the next time it is read it goes to
the dead-letter topic (or is skipped), counted either way, so it cannot block its stream forever.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import os
import re
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from psc.common.log import LogThrottle, get_logger
from singer._config import StreamSettings
from singer._files import FINGERPRINT_BYTES, OpenFile, StreamTail, bytes_after, fingerprint, list_stream
from singer._metrics import SingerMetrics
from singer._partitioners import Partitioner
from singer._records import Lines, Reader, ReadStats, Record, value_bytes
from singer._text import TextReader
from singer._thrift import ThriftReader
from singer._watermark import ReferenceWatermarkError, Watermark, WatermarkStore, read_reference_watermark
from singer._writer import RECORD_OVERHEAD_BYTES, Batch, Writer

_log = get_logger("singer.stream")
_TOO_LARGE = ("too large", "msg_size_too_large", "record_too_large")
POISON_STRIKES = 2
READ_CHUNK_BYTES = 1 << 20
# The producer reports a record failed after batch_timeout_s (its delivery timeout); a batch whose reports
# are this much later is given up on without them.
REPORT_GRACE_S = 5.0
_VALUE = operator.itemgetter(0)  # Record.value, in C


class SendWindow:
    """The in-flight policy: how many of a stream's batches may be un-watermarked at once, that is sent and not
    yet acknowledged, or acknowledged with their watermark not yet written. A crash resends at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.unsaved = 0  # acknowledged batches whose watermark is not written yet

    def open(self, inflight: int) -> bool:
        return inflight + self.unsaved < self.limit


class Stream:
    def __init__(
        self,
        key: str,
        directory: Path,
        settings: StreamSettings,
        writer: Writer,
        partitioner: Partitioner,
        store: WatermarkStore,
        metrics: SingerMetrics,
        host: str,
    ) -> None:
        self.key = key
        self.directory = directory
        self.settings = settings
        self.writer = writer
        self.store = store
        self.metrics = metrics
        self.host = host.encode()
        self.partitioner = partitioner
        self.read_stats = ReadStats()
        self.inflight: deque[Batch] = deque()
        self.window = SendWindow(settings.max_inflight_batches)
        # Read, waiting for the window: file, records, end.
        self._held: tuple[OpenFile, Sequence[Record], int] | None = None
        self._held_bytes = 0
        self.watermark = store.load(key) or self._migrated()
        self.tail = StreamTail(
            directory, re.compile(settings.pattern), self._reader, self.watermark, settings.rotation_grace_s
        )
        self.lag_bytes = 0
        self.hungry = True  # the last read may have left data behind: read again without waiting
        self.stuck = False
        self.last_error: str | None = None
        self._last_progress = time.monotonic()
        self._retry_at = 0.0
        self._failing = False  # a batch failed: send nothing until the producer is done with the rest
        self._unsaved: Watermark | None = None  # acknowledged, not yet written
        self._saved_at = 0.0
        self._backoff = settings.retry_backoff_s
        self._strikes: dict[tuple[int, int], int] = {}
        self._poison: set[tuple[int, int]] = set()
        self._queued_to: tuple[int, int, int] | None = None  # (device, inode, offset) of the last batch queued
        self._reported: dict[str, int] = {}
        self._repeats = LogThrottle(_log)
        self._labels = metrics.lag_bytes.labels(key)  # created so every stream shows up at 0
        # Counted for each batch: looked up once (labels() takes a lock and builds a key every call).
        self._records_sent = metrics.records_sent.labels(key)
        self._bytes_sent = metrics.bytes_sent.labels(key)

    # --- set-up ----------------------------------------------------------------------------------

    def _reader(self, fd: int, offset: int) -> Reader:
        s = self.settings
        chunk = max(READ_CHUNK_BYTES, s.batch_bytes)  # a read can fill a whole batch: one round trip for it
        reader: Reader
        if s.format == "thrift":
            reader = ThriftReader(fd, offset, chunk_bytes=chunk, max_message_bytes=s.max_message_bytes)
        else:
            reader = TextReader(
                fd,
                offset,
                chunk_bytes=chunk,
                max_message_bytes=s.max_message_bytes,
                keep_newline=s.keep_newline,
                start_regex=s.start_regex,
            )
        reader.stats = self.read_stats
        return reader

    def _migrated(self) -> Watermark | None:
        """The reference agent's position for this stream, if configured and its file is still here."""
        ref = self.settings.reference_watermark
        if ref is None:
            return None
        path = ref if ref.is_absolute() else self.directory / ref
        try:
            inode, offset = read_reference_watermark(path)
        except FileNotFoundError:
            return None
        except ReferenceWatermarkError as exc:
            _log.error("reference watermark unusable, starting from the oldest file", stream=self.key, error=str(exc))
            return None
        for f in list_stream(self.directory, re.compile(self.settings.pattern)):
            if f.inode == inode:
                fd = os.open(f.path, os.O_RDONLY)
                try:
                    digest, nbytes = fingerprint(fd, FINGERPRINT_BYTES)
                finally:
                    os.close(fd)
                mark = Watermark(f.device, f.inode, offset, digest, nbytes, str(f.path))
                self.store.save(self.key, mark)
                _log.info("migrated the reference watermark", stream=self.key, path=str(f.path), offset=offset)
                return mark
        _log.warning("reference watermark names no current file", stream=self.key, inode=inode)
        return None

    # --- the data path ---------------------------------------------------------------------------

    @property
    def inflight_bytes(self) -> int:
        """Memory held by records read and not yet acknowledged: those in flight and those waiting to be sent."""
        return sum(b.held for b in self.inflight) + self._held_bytes

    def step(self, now: float, look_around: bool, room_bytes: int) -> bool:
        """Settle finished batches, read a chunk if allowed, and send what the window admits. True if records
        were sent. A chunk is read while the window is shut too, so the next batch is ready when it opens."""
        self.settle(now)
        if now < self._retry_at or self._failing:
            return False
        if self._held is None and room_bytes > 0:
            self._read(now, look_around)
        if self._held is None or not self.window.open(len(self.inflight)):
            return False
        return self._send_held(now)

    def _read(self, now: float, look_around: bool) -> None:
        try:
            current, records = self.tail.read(look_around)
        except OSError as exc:
            self.tail.last_error = str(exc)
            current, records = None, []
        if self.tail.last_error != self.last_error and self.tail.last_error is not None:
            self._repeats.log("error", ("read", self.key), "stream cannot read on", stream=self.key,
                              error=self.tail.last_error)  # fmt: skip
        self.last_error = self.tail.last_error
        self.hungry = bool(records) or (current is not None and not current.reader.eof)
        if current is None:
            return
        end = current.reader.position
        if records:
            self._held = (current, records, end)
            self._held_bytes = value_bytes(records) + len(records) * RECORD_OVERHEAD_BYTES
        elif self._queued_to != (current.device, current.inode, end) and end > 0:
            self._queue(current, [], end, now)  # records dropped by the reader still move the watermark

    def _send_held(self, now: float) -> bool:
        """Cut the records read into batches and send as many as the window allows; the rest wait.

        Batches of at most batch_records records, closed by the record that reaches batch_bytes; found on the
        running total of value sizes, without a Python step per record."""
        assert self._held is not None
        current, records, end = self._held
        limit_n, limit_b = self.settings.batch_records, self.settings.batch_bytes
        total: Sequence[int]
        if isinstance(records, Lines):  # the running total of value sizes is one of its columns
            total, before = records.running_bytes(), records.bytes_before
        else:
            total, before = list(itertools.accumulate(map(len, map(_VALUE, records)))), 0
        start = 0
        while start < len(records) and self.window.open(len(self.inflight)):
            stop = min(bisect.bisect_left(total, before + limit_b, start) + 1, start + limit_n, len(records))
            self._queue(
                current,
                records[start:stop],
                end if stop == len(records) else _next_offset(records, stop - 1),
                now,
                total[stop - 1] - before,
            )
            start, before = stop, total[stop - 1]
        rest = records[start:]
        self._held = (current, rest, end) if rest else None
        self._held_bytes = (total[-1] - before) + len(rest) * RECORD_OVERHEAD_BYTES if rest else 0
        self.hungry = self.hungry or self._held is not None
        return True

    def _queue(self, current: OpenFile, records: Sequence[Record], end: int, now: float, nbytes: int = 0) -> None:
        """Send ``records`` (``nbytes`` of values) as one batch that moves the watermark to ``end``."""
        if self._poison:
            kept = self._divert_poison(current, records)
            if len(kept) != len(records):
                records, nbytes = kept, value_bytes(kept)
        batch = Batch(
            current.watermark(end),
            len(records),
            nbytes,
            now + self.settings.batch_timeout_s + REPORT_GRACE_S,
        )
        self.inflight.append(batch)
        self._queued_to = (current.device, current.inode, end)
        if records:
            try:
                self.writer.send(
                    self.settings.topic_uri, records, batch, self.partitioner, current.mid_inode, self.host,
                    current.content_id,
                )  # fmt: skip
            except Exception as exc:  # metadata unavailable: the batch fails and is retried
                batch.failures.append((str(exc), None))
                batch.pending = 0

    def _divert_poison(self, current: OpenFile, records: Sequence[Record]) -> list[Record]:
        keep = []
        for record in records:
            mark = (current.inode, record.next_offset)
            if mark not in self._poison:
                keep.append(record)
                continue
            self._poison.discard(mark)
            dlq = self.settings.dead_letter_topic_uri
            if dlq is None:
                self.metrics.skipped.labels(self.key).inc()
                _log.error("undeliverable record skipped", stream=self.key, next_offset=record.next_offset)
            else:
                file_id = current.content_id(record.next_offset)
                self.writer.dead_letter(
                    dlq, record, current.mid_inode, self.host, file_id, "undeliverable", self._dead_lettered
                )
        return keep

    def _dead_lettered(self, ok: bool) -> None:
        (self.metrics.dead_lettered if ok else self.metrics.skipped).labels(self.key).inc()

    def settle(self, now: float) -> None:
        """Advance the watermark over acknowledged batches; rewind on the first failed or timed-out one."""
        advanced = False
        while self.inflight:
            batch = self.inflight[0]
            if batch.ok:
                self.inflight.popleft()
                self._unsaved, advanced = batch.watermark, True
                self.window.unsaved += 1
                self._records_sent.inc(batch.count)
                self._bytes_sent.inc(batch.bytes)
            elif batch.done or now > batch.deadline:
                # Rewind only once the producer holds none of the stream's records: records it still holds
                # would be delivered as well as their re-sent copies, outside the cap on bytes in flight.
                self._failing = any(not b.done and now <= b.deadline for b in self.inflight)
                if not self._failing:
                    self._rewind(batch, now)
                break
            else:
                break
        if advanced:
            self._backoff = self.settings.retry_backoff_s
            self._last_progress = now
        if (self._unsaved is not None or self.tail.scan_changed) and (
            now - self._saved_at >= self.settings.watermark_interval_s
        ):
            self.save(now)

    def save(self, now: float) -> None:
        """Write the watermark of everything acknowledged so far, if it moved (or the files around it did:
        the copies counted so far are recorded with it, so a restart does not count them again)."""
        mark = self._unsaved or (self.watermark if self.tail.scan_changed else None)
        if mark is None:
            return
        try:
            self.store.save(self.key, self.tail.stamp(mark))
        except OSError as exc:
            self._repeats.log("error", ("save", self.key), "watermark not saved", stream=self.key, error=str(exc))
            return
        self._unsaved, self._saved_at = None, now
        self.window.unsaved = 0
        self.tail.scan_changed = False
        self.watermark = mark
        self.tail.release(mark)

    def _rewind(self, batch: Batch, now: float) -> None:
        if batch.failures:
            reason = batch.failures[0][0]
        else:
            reason = f"timed out after {self.settings.batch_timeout_s}s with {batch.pending} records unacknowledged"
        self.metrics.delivery_errors.labels(self.key).inc(max(len(batch.failures), 1))
        self.metrics.batch_retries.labels(self.key).inc()
        inode = batch.watermark.inode
        for error, offset in batch.failures:
            if offset is None:
                continue
            too_large = any(word in error.lower() for word in _TOO_LARGE)
            if too_large or batch.acked:  # its batch-mates got through: this record is the problem
                mark = (inode, offset)
                self._strikes[mark] = self._strikes.get(mark, 0) + 1
                if too_large or self._strikes[mark] >= POISON_STRIKES:
                    self._poison.add(mark)
                    self._strikes.pop(mark, None)
        self._repeats.log(
            "warning", ("rewind", self.key), "batch failed, rewinding to the watermark", stream=self.key,
            error=reason, retry_in_s=round(self._backoff, 2),
        )  # fmt: skip
        self.inflight.clear()
        self._held, self._held_bytes = None, 0
        self._queued_to = None
        self.save(now)  # what was acknowledged before the failure is kept
        self.tail.rewind(self.watermark)
        self._retry_at = now + self._backoff
        self._backoff = min(self._backoff * 2, self.settings.retry_backoff_max_s)

    # --- housekeeping ----------------------------------------------------------------------------

    def refresh(self, now: float, stuck_after_s: float) -> None:
        """Lag, stuck state and counters for the metrics; called every few seconds."""
        lag = bytes_after(list_stream(self.directory, self.tail.pattern), self.watermark)
        self.lag_bytes = lag
        if lag == 0:
            self._last_progress = now
        self.stuck = lag > 0 and now - self._last_progress > stuck_after_s
        self._labels.set(lag)
        self.metrics.stuck.labels(self.key).set(1 if self.stuck else 0)
        tail = self.tail.stats
        for name, value, counter in (
            ("truncated", self.read_stats.truncated, self.metrics.truncated),
            ("dropped", self.read_stats.dropped, self.metrics.skipped),
            ("copytruncate", tail.copytruncate, self.metrics.copytruncate),
            ("lost", tail.bytes_unrecoverable, self.metrics.bytes_lost),
            ("copytruncate_lost", tail.copytruncate_lost_bytes, self.metrics.copytruncate_lost),
            ("skipped_bytes", tail.skipped_bytes, self.metrics.skipped_bytes),
        ):
            delta = value - self._reported.get(name, 0)
            if delta > 0:
                counter.labels(self.key).inc(delta)
                self._reported[name] = value

    def status(self) -> dict[str, Any]:
        mark = self.watermark
        current = self.tail.current
        return {
            "stream": self.key,
            "file": str(current.path) if current else None,
            "watermark": None if mark is None else {"path": mark.path, "inode": mark.inode, "offset": mark.offset},
            "lag_bytes": self.lag_bytes,
            "inflight_batches": len(self.inflight),
            "stuck": self.stuck,
            "error": self.last_error,
            "copytruncate": self.tail.stats.copytruncate,
            "bytes_unrecoverable": self.tail.stats.bytes_unrecoverable,
            "copytruncate_lost_bytes": self.tail.stats.copytruncate_lost_bytes,
        }

    def close(self) -> None:
        self.save(time.monotonic())
        self.tail.close()
        self.inflight.clear()
        self._held, self._held_bytes = None, 0

    @property
    def idle(self) -> bool:
        """Nothing in flight (records read and waiting for the window are not sent on a drain)."""
        return not self.inflight

    @property
    def waiting(self) -> bool:
        """Records are read and wait for the window to open: an acknowledgement or a watermark write."""
        return self._held is not None


def _next_offset(records: Sequence[Record], index: int) -> int:
    return records.next_offset(index) if isinstance(records, Lines) else records[index].next_offset


def stream_key(name: str, directory: Path) -> str:
    return f"{name}@{directory}"
