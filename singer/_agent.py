"""The agent: one thread, one loop over every stream, one producer per producer configuration.

Each turn settles acknowledged batches, reads at most one chunk per stream (within the cap on bytes in
flight), serves delivery reports with ``poll(0)``, and sleeps on inotify (or a timer) when there is nothing
to do. The configuration directory is re-read every few seconds: streams are added, changed and removed
without a restart. SIGTERM stops reading and waits up to ``drain_timeout_s`` for batches in flight, so their
watermarks are saved.
"""

from __future__ import annotations

import ctypes
import gc
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import psc
from psc.common.log import configure_logging, get_logger
from psc.common.metrics import start_metrics_server
from psc.common.settings import SettingsError
from singer._config import AgentSettings, ConfigSnapshot, StreamSettings, load_agent, load_streams
from singer._files import stream_directories
from singer._metrics import SingerMetrics
from singer._partitioners import Partitioner, create
from singer._stream import Stream, stream_key
from singer._watch import Everything, Watcher
from singer._watermark import WatermarkStore
from singer._writer import ProducerFactory, Writer

_log = get_logger("singer.agent")
LOOK_AROUND_MIN_S = 0.05  # at most this often per stream when its directory keeps changing
REFRESH_S = 2.0  # lag, stuck streams and counters


class Agent:
    def __init__(
        self,
        config_dir: Path,
        agent: AgentSettings,
        producer_factory: ProducerFactory = psc.Producer,
        metrics: SingerMetrics | None = None,
    ) -> None:
        self.config_dir = config_dir
        self.settings = agent
        assert agent.state_dir is not None
        self.store = WatermarkStore(agent.state_dir)
        self.metrics = metrics or SingerMetrics()
        self.producer_factory = producer_factory
        self.watcher = Watcher(agent.use_inotify)
        self.streams: dict[str, Stream] = {}
        self.writers: dict[tuple[tuple[str, str], ...], Writer] = {}
        self.partitioners: dict[tuple[str, str, str], Partitioner] = {}
        self.snapshot: ConfigSnapshot | None = None
        self._reported_errors: dict[str, list[str]] = {}
        self._stop_requested = False
        self._last_look: dict[str, float] = {}
        self._next_reload = 0.0
        self._next_refresh = 0.0
        self._next_heartbeat = 0.0
        self._started = time.time()

    # --- configuration ---------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read conf.d and bring the running streams in line with it."""
        self.snapshot = load_streams(self.config_dir, self.snapshot)
        self._report_config_errors(self.snapshot.errors)
        wanted: dict[str, tuple[Path, StreamSettings]] = {}
        for name, settings in self.snapshot.streams.items():
            for directory in stream_directories(settings.dir):
                wanted[stream_key(name, directory)] = (directory, settings)
        for key in list(self.streams):
            if key not in wanted or wanted[key][1] != self.streams[key].settings:
                self._stop_stream(key, "removed" if key not in wanted else "changed")
        for key, (directory, settings) in wanted.items():
            if key not in self.streams:
                self._start_stream(key, directory, settings)
        self.metrics.streams.set(len(self.streams))

    def _report_config_errors(self, errors: dict[str, list[str]]) -> None:
        for name, problems in errors.items():
            if self._reported_errors.get(name) != problems:
                _log.error("stream configuration invalid", stream=name, problems=problems)
        for name in self._reported_errors.keys() - errors.keys():
            _log.info("stream configuration valid again", stream=name)
        self._reported_errors = dict(errors)
        self.metrics.config_errors.set(len(errors))

    def _start_stream(self, key: str, directory: Path, settings: StreamSettings) -> None:
        try:
            writer = self._writer(settings.producer_config(self.settings))
            partitioner = self._partitioner(settings)
            self.streams[key] = Stream(
                key, directory, settings, writer, partitioner, self.store, self.metrics, self.settings.host
            )
        except Exception as exc:  # one stream's bad producer settings or state must not stop the others
            _log.error("stream not started", stream=key, error=str(exc))
            self._reported_errors[key] = [str(exc)]
            self.metrics.config_errors.set(len(self._reported_errors))
            return
        self.watcher.watch(directory)
        mark = self.streams[key].watermark
        _log.info("stream started", stream=key, topic_uri=settings.topic_uri, offset=mark.offset if mark else None)

    def _stop_stream(self, key: str, why: str) -> None:
        stream = self.streams.pop(key)
        stream.close()  # batches still in flight are sent again by the next owner of the watermark
        if not any(s.directory == stream.directory for s in self.streams.values()):
            self.watcher.unwatch(stream.directory)
        _log.info("stream stopped", stream=key, reason=why)

    def _partitioner(self, settings: StreamSettings) -> Partitioner:
        """One partitioner per topic and partitioner settings for the process's life: "single" means one
        partition per topic per host, however many streams write to it and however often they reload."""
        params = settings.partitioner.params()
        key = (settings.topic_uri, settings.partitioner.type, json.dumps(params, sort_keys=True, default=str))
        partitioner = self.partitioners.get(key)
        if partitioner is None:
            partitioner = self.partitioners[key] = create(settings.partitioner.type, params)
        return partitioner

    def _writer(self, config: dict[str, str]) -> Writer:
        key = tuple(sorted(config.items()))
        writer = self.writers.get(key)
        if writer is None:
            writer = self.writers[key] = Writer(config, self.producer_factory)
        return writer

    # --- the loop --------------------------------------------------------------------------------

    def request_stop(self, *_: Any) -> None:
        self._stop_requested = True

    def run_once(self, now: float) -> bool:
        """One turn of the loop; True if any stream sent records."""
        if now >= self._next_reload:
            self._next_reload = now + self.settings.reload_interval_s
            self.reload()
        changes = self.watcher.changes()
        periodic = {
            key for key, stream in self.streams.items()
            if now - self._last_look.get(key, 0.0) >= self.settings.poll_interval_s
        }  # fmt: skip
        for stream in self.streams.values():
            stream.settle(now)  # first, so what was acknowledged since the last turn leaves room to read
        room = self.settings.max_inflight_bytes - sum(s.inflight_bytes for s in self.streams.values())
        worked = False
        for key, stream in self.streams.items():
            look = key in periodic or (
                (isinstance(changes, Everything) or stream.directory in changes)
                and now - self._last_look.get(key, 0.0) >= LOOK_AROUND_MIN_S
            )
            if look:
                self._last_look[key] = now
            # Read only where something may have been written: inotify said so, the last read was full, or
            # it is time to look anyway.
            may_read = look or stream.hungry or isinstance(changes, Everything) or stream.directory in changes
            before = stream.inflight_bytes
            worked |= stream.step(now, look, room if may_read else 0)
            room -= stream.inflight_bytes - before
        for writer in self.writers.values():
            # After a turn that queued batches nothing more is coming for them until they are acknowledged:
            # have them sent now rather than after the linger time.
            if worked:
                writer.wait(0)
            else:
                writer.poll(0)
        if now >= self._next_refresh:
            self._next_refresh = now + REFRESH_S
            self._refresh(now)
        if self.settings.heartbeat is not None and now >= self._next_heartbeat:
            self._next_heartbeat = now + self.settings.heartbeat.interval_s
            self._heartbeat()
        return worked

    def _refresh(self, now: float) -> None:
        for stream in self.streams.values():
            stream.refresh(now, self.settings.stuck_after_s)
        self.metrics.stuck_streams.set(sum(1 for s in self.streams.values() if s.stuck))
        self.metrics.open_files.set(sum(s.tail.open_files for s in self.streams.values()))
        self.metrics.inflight_bytes.set(sum(s.inflight_bytes for s in self.streams.values()))
        status = {"host": self.settings.host, "streams": [s.status() for s in self.streams.values()]}
        assert self.settings.state_dir is not None
        path = self.settings.state_dir / "status.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=1))
        tmp.replace(path)

    def _heartbeat(self) -> None:
        hb = self.settings.heartbeat
        assert hb is not None
        streams = list(self.streams.values())
        value = {
            "host": self.settings.host,
            "timestamp_ms": int(time.time() * 1000),
            "uptime_s": round(time.time() - self._started, 1),
            "streams": len(streams),
            "stuck_streams": sum(1 for s in streams if s.stuck),
            "lag_bytes": sum(s.lag_bytes for s in streams),
            "config_errors": len(self._reported_errors),
        }
        writer = self._writer({"psc.project": "singer", **self.settings.producer})

        def sent(err: Any, msg: Any) -> None:
            if err is None:
                self.metrics.heartbeats.inc()
            else:
                _log.warning("heartbeat not delivered", error=str(err))

        try:
            writer.producer.produce(
                hb.topic_uri, json.dumps(value, sort_keys=True).encode(), self.settings.host.encode(), on_delivery=sent
            )
        except Exception as exc:
            _log.warning("heartbeat not sent", error=str(exc))

    def run(self) -> int:
        loop_sleep = min(self.settings.poll_interval_s, 0.5)
        while not self._stop_requested:
            now = time.monotonic()
            if self.run_once(now):
                continue
            if any(not s.idle or s.waiting for s in self.streams.values()):
                for writer in self.writers.values():
                    writer.wait(0.005)  # reports are due soon: wait for them rather than for files
            else:
                self.watcher.wait(loop_sleep)
        return self.drain()

    def drain(self) -> int:
        """Stop reading; wait for batches in flight up to the deadline, so their watermarks are saved."""
        deadline = time.monotonic() + self.settings.drain_timeout_s
        _log.info("draining", streams=len(self.streams), deadline_s=self.settings.drain_timeout_s)
        while time.monotonic() < deadline and any(not s.idle for s in self.streams.values()):
            for writer in self.writers.values():
                writer.wait(0.01)
            now = time.monotonic()
            for stream in self.streams.values():
                stream.settle(now)
        unsent = sum(len(s.inflight) for s in self.streams.values())
        for stream in self.streams.values():
            stream.close()
        for writer in self.writers.values():
            writer.close(max(deadline - time.monotonic(), 0.0))
        self.watcher.close()
        _log.info("stopped", batches_not_acknowledged=unsent)
        return 0


def run_agent(config_dir: Path) -> int:
    """``singer run``: validate the agent settings, serve metrics, run until SIGTERM/SIGINT."""
    configure_logging()
    try:
        settings = load_agent(config_dir)
    except SettingsError as exc:
        print(f"singer: {exc}", file=sys.stderr)
        return 2
    agent = Agent(config_dir, settings)
    if settings.metrics_port is not None:
        start_metrics_server(settings.metrics_port, settings.metrics_addr, agent.metrics.registry)

    def stop(signum: int, frame: FrameType | None) -> None:
        agent.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _log.info("singer started", config=str(config_dir), inotify=agent.watcher.available, host=settings.host)
    # Everything loaded so far lives as long as the process: out of the cycle collector's full passes, which
    # the records of every chunk read would otherwise make walk it again and again.
    gc.freeze()
    # Each batch makes thousands of records that live until it is acknowledged: at the default threshold
    # (700 allocations) the collector walks them again and again, about 5% of the agent's CPU at 100 B lines.
    # The data path makes no reference cycles, so collecting a hundred times less often costs nothing.
    gc.set_threshold(GC_THRESHOLD)
    tune_malloc()
    return agent.run()


GC_THRESHOLD = 70_000

# mallopt() parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 4 << 20
TRIM_THRESHOLD_BYTES = 64 << 20


def tune_malloc() -> None:
    """Keep glibc's heap steady under the agent's pattern of a multi-MiB read per batch and many small
    librdkafka allocations per record.

    Left to itself, glibc raises its mmap threshold after the first large free, so every later read buffer
    comes from the heap; freeing it consolidates all the small chunks librdkafka freed meanwhile and trims
    the heap, which the next read grows again. A fixed 4 MiB threshold keeps read buffers in their own
    mappings, and a 64 MiB trim threshold stops the shrink-and-grow. Measured on 100 B lines: about a fifth
    less CPU per line. Other C libraries are left alone."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
