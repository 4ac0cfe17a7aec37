"""Singer under SIGKILL while logrotate rotates the file it ships: what is lost, what is sent twice.

``python -m benchmarks.singer_faults [--cycles 20] [--mode create|copytruncate|both] [--lines N] [--json FILE]``

A writer appends numbered lines (reopening the file for each burst, as an application does after a HUP, and
never creating it once it exists: see :class:`LineWriter`); the real ``logrotate`` rotates it every 0.3 s in
``create`` or ``copytruncate`` mode; ``singer run`` is
started and killed with SIGKILL at random moments, ``--cycles`` times, then left to finish. Every record of
the topic is then read back. The report gives, per mode: lines written, lost, duplicated, whether every
duplicate carries the id (``_mid`` and ``_fid``) of its original, the duplicates of each crash in lines and
in batches, the copytruncate events Singer detected against the truncations of a non-empty file performed,
and the bytes it counted as lost. Expected: ``create`` loses nothing; ``copytruncate`` loses at most what
was written between a copy and its truncation, and counts the events; a crash resends at most one batch
(``max_inflight_batches``, 1 by default). The exit status is 1 if a ``create`` line is lost, two different
lines share an id, or a crash resent more batches than that.

A duplicate is charged to the last kill before it was read again (``_ots``: text records carry their read
time, one value per batch), and the batches it resent are told apart by their original's ``_ots``.

Lost lines are located (``lost_where``): one row per run of them in one write, with the file that holds them
at the end and whether it is one of the stream's, the inode and offset the write went to, the cycle it was
written in, and the watermark files as the kills before and after it left them. ``logrotate_backups``
counts the files logrotate found in the way of the one it creates and renamed aside (``app.log-*.backup``,
outside the stream): what a writer creates between logrotate's rename and its create ends up there.

The helpers (a Singer process, the writer, rotation, reading back) are shared with the integration tests.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from tests.services import Services

ROOT = Path(__file__).resolve().parents[1]
LOGROTATE = shutil.which("logrotate") or "/usr/sbin/logrotate"
STREAM_PATTERN = r"app\.log(\.\d+)?"  # the live file and its rotated siblings
LOGROTATE_BACKUP = "already exists, renaming to"  # logrotate's message when it moves a file out of its way
BATCH_RECORDS = 500
MAX_INFLIGHT_BATCHES = 1  # Singer's default: a crash resends at most this many batches


class SingerProcess:
    """``singer run`` in a subprocess with its own configuration directory under ``base``."""

    def __init__(self, base: Path, services: Services) -> None:
        self.config = base / "conf"
        (self.config / "conf.d").mkdir(parents=True)
        self.services = services
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = base / "singer.log"
        (self.config / "singer.toml").write_text(
            "poll_interval_s = 0.2\nreload_interval_s = 0.5\nstuck_after_s = 30\n"
            f'[producer]\n"psc.discovery.file" = "{services.psc_discovery_file}"\n'
            '"psc.producer.batch.duration.ms" = "20"\n'
        )

    def stream(self, name: str, logs: Path, topic: str, batch_records: int = BATCH_RECORDS, **extra: object) -> None:
        lines = [
            f'dir = "{logs}"',
            f"pattern = '{STREAM_PATTERN}'",
            f'topic_uri = "{self.services.cluster_prefix}{topic}"',
            "rotation_grace_s = 0.5",
            f"batch_records = {batch_records}",
            *(f"{k} = {_toml(v)}" for k, v in extra.items()),
        ]
        (self.config / "conf.d" / f"{name}.toml").write_text("\n".join(lines) + "\n")

    def start(self, wait_s: float = 0.0) -> None:
        """Start the agent; with ``wait_s``, return once it has started a stream (or that long passed)."""
        env = {**os.environ, "TOOLKIT_LOG_FORMAT": "json", "PSC_DISCOVERY_FILE": self.services.psc_discovery_file}
        started = self.log_text().count('"stream started"') if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "singer.cli", "run", "--config", str(self.config)],
                stdout=out, stderr=out, env=env, cwd=ROOT,
            )  # fmt: skip
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and self.log_text().count('"stream started"') <= started:
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(30)
        self.proc = None
        return code

    def kill_if_running(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def status(self) -> dict[str, dict[str, Any]]:
        path = self.config / "state" / "status.json"
        try:
            return {s["stream"]: s for s in json.loads(path.read_text())["streams"]}
        except (OSError, ValueError):
            return {}

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _toml(value: object) -> str:
    """A TOML value: JSON's scalars and strings are TOML's; a dict becomes an inline table."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


@dataclass(frozen=True)
class Burst:
    """One write of the writer: its lines, and where they went."""

    first: int  # the number of its first line
    count: int
    inode: int  # the file written to
    offset: int  # where in it the burst starts
    written_ns: int


class LineWriter(threading.Thread):
    """Appends numbered lines, reopening the file for each burst as an application after SIGHUP would.

    Only the first burst creates the file. The file is missing only inside a ``create`` rotation, between
    logrotate's rename of it and its creation of the new one, and a file made there by someone else is moved
    aside by logrotate itself (to ``app.log-YYYYMMDDHH.backup``, outside the stream) with the burst in it. An
    application reopens its log once logrotate is done (postrotate sends the HUP), so it never meets that
    window: the writer waits for the new file instead. Each burst is one ``write`` and is recorded in ``bursts``."""

    def __init__(self, path: Path, count: int, per_burst: int = 50, pause_s: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.path, self.count, self.per_burst, self.pause_s = path, count, per_burst, pause_s
        self.written = 0
        self.bursts: list[Burst] = []

    def run(self) -> None:
        while self.written < self.count:
            n = min(self.per_burst, self.count - self.written)
            self.bursts.append(append_burst(self.path, self.written, n, create=not self.written))
            self.written += n
            time.sleep(self.pause_s)


def append_burst(path: Path, first: int, count: int, create: bool, wait_s: float = 5.0) -> Burst:
    """Append lines ``first`` to ``first + count`` in one write; unless ``create``, wait (up to ``wait_s``,
    then create it after all) while the file is missing rather than make it."""
    fd = open_for_append(path, create, wait_s)
    data = b"".join(line(first + i) for i in range(count))
    try:
        done = 0
        while done < len(data):
            done += os.write(fd, data[done:])
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return Burst(first, count, st.st_ino, st.st_size - len(data), time.time_ns())  # one writer: its end


def open_for_append(path: Path, create: bool, wait_s: float = 5.0) -> int:
    flags = os.O_WRONLY | os.O_APPEND
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return os.open(path, flags | (os.O_CREAT if create else 0), 0o644)
        except FileNotFoundError:
            if time.monotonic() > deadline:
                create = True
            time.sleep(0.0002)


def line(i: int) -> bytes:
    return b"line %08d %s\n" % (i, b"x" * (i % 50))


def rotate(logs: Path, mode: str, state: Path, keep: int = 10_000, options: tuple[str, ...] = ()) -> int:
    """One forced rotation of ``logs/app.log`` by the real logrotate, in ``create`` or ``copytruncate`` mode,
    keeping ``keep`` rotated files, with more logrotate ``options``. Returns how many files logrotate found
    where it creates the new one and moved aside (0 or 1)."""
    conf = logs.parent / f"logrotate-{mode}.conf"
    body = "".join(f"  {option}\n" for option in (f"rotate {keep}", mode, "missingok", "nocompress", *options))
    conf.write_text(f"{logs}/app.log {{\n{body}}}\n")
    done = subprocess.run([LOGROTATE, "-f", "-s", str(state), str(conf)], check=True, capture_output=True, text=True)
    return done.stderr.count(LOGROTATE_BACKUP)


Records = list[tuple[bytes, bytes]]


def read_topic(
    bootstrap: str,
    topic: str,
    until: Callable[[Records], bool],
    limit_s: float = 60.0,
    idle_s: float | None = None,
    read_times: list[int] | None = None,
) -> Records:
    """(value, _mid + _fid: the record's id) of every record from the start, until ``until(records)``, the
    time limit, or (with ``idle_s``) that long without a new record. ``read_times`` gets each record's ``_ots``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})  # fmt: skip
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    out: Records = []
    deadline = time.monotonic() + limit_s
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline and not until(out):
            if idle_s is not None and time.monotonic() - last_new > idle_s:
                break
            for msg in consumer.consume(1000, 0.5):
                last_new = time.monotonic()
                if msg.error():
                    continue
                headers = dict(msg.headers() or [])
                value, mid, fid = msg.value(), headers["_mid"], headers["_fid"]
                assert isinstance(value, bytes) and isinstance(mid, bytes) and isinstance(fid, bytes)
                out.append((value, mid + fid))
                ots = headers.get("_ots")
                if read_times is not None and isinstance(ots, bytes):
                    read_times.append(int.from_bytes(ots, "big", signed=True))
    finally:
        consumer.close()
    return out


def distinct_lines(expected: int) -> Callable[[Records], bool]:
    return lambda records: len({v for v, _ in records}) >= expected


@dataclass(frozen=True)
class CrashDuplicates:
    lines: int  # copies read again after the crash of records it had already delivered
    batches: int  # the batches those records were first sent in


def duplicates_per_crash(records: Records, read_times: list[int], kills_ns: list[int]) -> list[CrashDuplicates]:
    """Every copy after a record's first, charged to the last kill before it was read; one row per kill."""
    copies: dict[bytes, list[int]] = defaultdict(list)
    for (_, record_id), read_ns in zip(records, read_times, strict=True):
        copies[record_id].append(read_ns)
    lines = [0] * len(kills_ns)
    batches: list[set[int]] = [set() for _ in kills_ns]
    for times in copies.values():
        first, *again = sorted(times)
        for read_ns in again:
            crash = bisect.bisect_right(kills_ns, read_ns) - 1
            if crash >= 0:
                lines[crash] += 1
                batches[crash].add(first)
    return [CrashDuplicates(n, len(b)) for n, b in zip(lines, batches, strict=True)]


@dataclass
class Outcome:
    mode: str
    cycles: int
    written: int
    received: int
    lost: int
    lost_on_disk: int  # lost lines that are in a file of the stream: Singer's loss, not copytruncate's
    duplicated: int
    duplicates_share_id: bool  # no id names two different lines
    duplicates_identifiable: bool  # every copy of a line carries one id: consumers can drop the repeats
    batch_records: int
    duplicates_per_crash_mean: float  # lines
    duplicates_per_crash_max: int
    duplicated_batches_per_crash_mean: float
    duplicated_batches_per_crash_max: int
    max_inflight_batches: int
    bound_holds: bool  # no crash resent more than max_inflight_batches batches
    rotations: int
    truncations: int  # copytruncate only: rotations that truncated a non-empty file (copies with bytes)
    copytruncate_events: int  # truncations Singer detected, over every run
    bytes_unrecoverable: int  # counted by the last run only
    lost_bytes: int  # the lost lines' bytes, newlines included
    copytruncate_lost_bytes: int  # what Singer counted as lost (singer_copytruncate_lost_bytes), over every run
    logrotate_backups: int  # files logrotate moved out of its way, out of the stream (see LOGROTATE_BACKUP)
    lost_where: list[dict[str, Any]]  # runs of lost lines: see lost_runs


def run_mode(services: Services, base: Path, mode: str, cycles: int, lines: int, seed: int = 1) -> Outcome:
    """The fault schedule for one rotation mode; returns what arrived."""
    rng = random.Random(seed)
    logs = base / "logs"
    logs.mkdir(parents=True)
    topic = f"singer-faults-{mode}-{uuid.uuid4().hex[:8]}"
    _create_topic(services.kafka_bootstrap_servers, topic, 3)
    singer = SingerProcess(base, services)
    singer.stream("app", logs, topic)
    # Spread the writing over the kill cycles (about 0.9 s each), so rotations and kills fall inside it.
    writer = LineWriter(logs / "app.log", lines, per_burst=100, pause_s=cycles * 0.9 / (lines / 100))
    stop_rotating = threading.Event()

    rotations = backups = 0

    def rotating() -> None:
        nonlocal rotations, backups
        while not stop_rotating.wait(0.3):
            backups += rotate(logs, mode, base / "logrotate.state")
            rotations += 1

    rotator = threading.Thread(target=rotating, daemon=True)
    kills_ns: list[int] = []
    kill_marks: list[dict[str, Any]] = []  # the watermark files as each kill left them
    read_times: list[int] = []
    writer.start()
    rotator.start()
    try:
        for _ in range(cycles):
            singer.start(wait_s=20)  # kill it while it works, not while Python starts
            time.sleep(rng.uniform(0.1, 1.2))
            kills_ns.append(time.time_ns())
            singer.stop(signal.SIGKILL)
            kill_marks.append(watermark_files(singer))
        writer.join()
        stop_rotating.set()
        rotator.join()
        (singer.config / "state" / "status.json").unlink(missing_ok=True)  # a killed agent's, maybe caught up
        singer.start()
        # Under load the last agent can take longer than the reader's idle limit to start and catch up: read
        # once it reports nothing left to ship, or lines still on their way would be counted as lost.
        caught_up(singer, limit_s=120)
        records = read_topic(
            services.kafka_bootstrap_servers, topic, distinct_lines(lines), limit_s=120, idle_s=8, read_times=read_times
        )
        time.sleep(2.5)  # one more status refresh, for the counters
        status = next(iter(singer.status().values()), {})
        truncations = sum(1 for f in logs.glob("app.log.*") if f.stat().st_size > 0) if mode == "copytruncate" else 0
        on_disk = lines_on_disk(logs)
    finally:
        singer.kill_if_running()
    by_id: dict[bytes, set[bytes]] = defaultdict(set)
    ids_of: dict[bytes, set[bytes]] = defaultdict(set)
    for value, record_id in records:
        by_id[record_id].add(value)
        ids_of[value].add(record_id)
    received = {v for v, _ in records}
    lost = [i for i in range(lines) if line(i) not in received]
    lost_where = lost_runs(lost, writer.bursts, locate_lines(logs, set(lost)), kills_ns, kill_marks) if lost else []
    crashes = duplicates_per_crash(records, read_times, kills_ns) or [CrashDuplicates(0, 0)]
    return Outcome(
        mode=mode,
        cycles=cycles,
        written=lines,
        received=len(records),
        lost=len(lost),
        lost_on_disk=sum(1 for i in lost if line(i) in on_disk),
        duplicated=len(records) - len(received),
        duplicates_share_id=all(len(values) == 1 for values in by_id.values()),
        duplicates_identifiable=all(len(ids) == 1 for ids in ids_of.values()),
        batch_records=BATCH_RECORDS,
        duplicates_per_crash_mean=round(sum(c.lines for c in crashes) / len(crashes), 1),
        duplicates_per_crash_max=max(c.lines for c in crashes),
        duplicated_batches_per_crash_mean=round(sum(c.batches for c in crashes) / len(crashes), 2),
        duplicated_batches_per_crash_max=max(c.batches for c in crashes),
        max_inflight_batches=MAX_INFLIGHT_BATCHES,
        bound_holds=max(c.batches for c in crashes) <= MAX_INFLIGHT_BATCHES,
        # Counters restart with the process; the log keeps every event of every run.
        rotations=rotations,
        truncations=truncations,
        copytruncate_events=sum(int(e.get("count", 1)) for e in log_events(singer.log_text(), "(copytruncate)")),
        bytes_unrecoverable=int(status.get("bytes_unrecoverable", 0)),
        lost_bytes=sum(len(line(i)) for i in lost),
        copytruncate_lost_bytes=sum(
            int(event.get("lost_bytes", 0)) for event in log_events(singer.log_text(), "(copytruncate)")
        ),
        logrotate_backups=backups,
        lost_where=lost_where,
    )


def caught_up(singer: SingerProcess, limit_s: float) -> bool:
    """Wait until the agent reports every stream at lag 0 with nothing in flight (or the limit passes)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        streams = singer.status().values()
        if streams and all(s["lag_bytes"] == 0 and s["inflight_batches"] == 0 for s in streams):
            return True
        time.sleep(0.5)
    return False


def lines_on_disk(logs: Path) -> set[bytes]:
    """Every line in the stream's files (live and rotated) at the end of a run."""
    return {row for f in logs.glob("app.log*") for row in f.read_bytes().splitlines(keepends=True)}


def watermark_files(singer: SingerProcess) -> dict[str, Any]:
    """The agent's watermark files, by name (its status file left out)."""
    marks: dict[str, Any] = {}
    for path in sorted((singer.config / "state").glob("*.json")):
        if path.name != "status.json":
            with contextlib.suppress(OSError, ValueError):
                marks[path.name] = json.loads(path.read_text())
    return marks


def locate_lines(logs: Path, numbers: set[int]) -> dict[int, tuple[str, int]]:
    """Where the lines numbered ``numbers`` are at the end, in any file of ``logs``: (file name, offset)."""
    where: dict[int, tuple[str, int]] = {}
    for path in sorted(logs.iterdir()):
        if not path.is_file():
            continue
        offset = 0
        for row in path.read_bytes().splitlines(keepends=True):
            number = row[5:13]
            if row.startswith(b"line ") and number.isdigit() and int(number) in numbers:
                where.setdefault(int(number), (path.name, offset))
            offset += len(row)
    return where


def lost_runs(
    lost: list[int],
    bursts: list[Burst],
    where: dict[int, tuple[str, int]],
    kills_ns: list[int],
    kill_marks: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """One row per run of lost lines written in one burst and found together: the lines, the file holding them
    at the end (None: in no file) and whether the stream's pattern matches it, the inode and offset the burst
    was written to, the cycle it was written in (how many kills came before), and the watermark files as the
    kills before and after the write left them."""
    firsts = [b.first for b in bursts]
    rows: list[dict[str, Any]] = []
    for n in sorted(lost):
        index = bisect.bisect_right(firsts, n) - 1
        burst = bursts[index] if index >= 0 and n < bursts[index].first + bursts[index].count else None
        name, offset = where.get(n, (None, None))
        last = rows[-1] if rows else None
        if last is not None and (last["last"], last["burst"], last["file"]) == (n - 1, burst and burst.first, name):
            last["last"], last["lines"] = n, last["lines"] + 1
            continue
        row: dict[str, Any] = {"first": n, "last": n, "lines": 1, "burst": burst and burst.first, "file": name}
        row["in_stream"] = name is not None and re.fullmatch(STREAM_PATTERN, name) is not None
        row["offset"] = offset
        row.update(dict.fromkeys(("written_inode", "written_offset", "written_ns", "cycle")))
        row.update(dict.fromkeys(("watermarks_before", "watermarks_after")))
        if burst is not None:
            cycle = bisect.bisect_right(kills_ns, burst.written_ns)
            row["written_inode"] = burst.inode
            row["written_offset"] = burst.offset + sum(len(line(k)) for k in range(burst.first, n))
            row["written_ns"] = burst.written_ns
            row["cycle"] = cycle
            row["watermarks_before"] = kill_marks[cycle - 1] if cycle else None
            row["watermarks_after"] = kill_marks[cycle] if cycle < len(kill_marks) else None
        rows.append(row)
    return rows


def log_events(text: str, marker: str) -> list[dict[str, Any]]:
    """The JSON log lines whose event contains ``marker``."""
    events = []
    for row in text.splitlines():
        if marker in row:
            with contextlib.suppress(ValueError):
                events.append(json.loads(row))
    return events


def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(30)


def main(argv: list[str] | None = None) -> int:
    from tests.services import resolve_services

    parser = argparse.ArgumentParser(prog="python -m benchmarks.singer_faults", description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=20, help="SIGKILLs per mode")
    parser.add_argument("--mode", choices=("create", "copytruncate", "both"), default="both")
    parser.add_argument("--lines", type=int, default=200_000, help="lines written per mode")
    parser.add_argument("--json", type=Path, help="also write the outcomes to this file")
    args = parser.parse_args(argv)
    modes = ["create", "copytruncate"] if args.mode == "both" else [args.mode]
    outcomes = []
    with resolve_services() as services:
        for mode in modes:
            with tempfile.TemporaryDirectory(prefix=f"singer-faults-{mode}-") as tmp:
                outcome = run_mode(services, Path(tmp), mode, args.cycles, args.lines)
            outcomes.append(outcome)
            print(json.dumps(asdict(outcome)))
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=2) + "\n")
    create_ok = all(o.lost == 0 for o in outcomes if o.mode == "create") and not any(o.lost_on_disk for o in outcomes)
    ids_ok = all(o.duplicates_share_id and o.duplicates_identifiable for o in outcomes)
    return 0 if create_ok and ids_ok and all(o.bound_holds for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
