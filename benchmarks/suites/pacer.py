"""Pacer vs a PinLater-style baseline on MariaDB: dequeue latency, throughput and SQL statements per job.

- ``pacer-owner``: the broker's dequeue path in process (pacer's PartitionOwner), serving a partition
  from its in-memory buffer. Each dequeue writes the lease (state, claim token, expiry) in one UPDATE
  under the epoch fence, so its latency includes one commit. Measured server side, per call.
- ``pacer-http``: a broker process; the client's round trip for one job over HTTP/JSON.
- ``pacer-http-server``: the same broker's own time for each of those requests (its ``Server-Timing`` header):
  the dequeue handler, from the parsed request to the answer ready to be encoded.
- ``pinlater-update-limit`` (baseline): no broker; each dequeue claims straight from MySQL with
  ``UPDATE … SET state, claim … WHERE state = 0 AND run_after <= now LIMIT n`` then selects the rows by
  claim (PinLater's algorithm, with PinLater's indexes: (state, run_after) and the claim, in place of Pacer's),
  and each ack is one UPDATE per job.

Throughput: enqueue (calls of 100 jobs, one thread in a process of its own, as an enqueuing service would be)
→ dequeue (batches of 10) → ack, 8 worker threads with a no-op handler, on a queue of 4 partitions; timed from
the first enqueue until every job is acked. A Pacer worker acks the jobs it ran and takes its next ones in one
call (``Pacer.ack_and_dequeue``); a baseline worker claims, then acks each job. Both systems enqueue with the
same code (Pacer's: one multi-row INSERT per call, kinder to the baseline than PinLater's INSERT per job).
Pacer's owners in the workers' process hear of the other process's jobs at their next look at MySQL (1 ms
after a look that found jobs, up to 20 ms on a partition found empty again and again), as embedded Pacer has no
doorbell across processes. The ``prefilled`` scenario enqueues every job before the clock starts and times the
dequeue and ack path alone.
Both systems open their connections (and Pacer takes its partitions) before the clock starts.
``dramatiq-redis`` (the peer): Dramatiq's Redis broker and an in-process worker with 8 threads running a
no-op actor, with a private ``redis-server`` (Debian's, no persistence) started per run; messages are sent one
by one (Dramatiq has no batch send).

Statements per job: SQL statements run for the dequeues (refills and lease grants), and apart for the acks, of a
prefilled queue drained as above, divided by the jobs (BEGIN/COMMIT not counted). A statement that writes lease
grants and acks together counts in both.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import multiprocessing
import socket
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pymysql
import redis

from benchmarks._env import BenchEnv
from benchmarks._harness import RunFn, Scenario
from pacer import Job, Lease, Pacer
from pacer._names import partition_table
from pacer._owner import PartitionOwner
from pacer.client import Client
from pacer.storage.mysql import MysqlStore

DESCRIPTION = "Pacer (buffered owner, HTTP broker) vs PinLater-style UPDATE…LIMIT: latency, throughput, SQL/job"
BASELINE = "pinlater-update-limit"
PEER = "dramatiq-redis"
WORKERS = 8
PARTITIONS = 4
LATENCY_SAMPLES = 2000
THROUGHPUT_JOBS = 20_000
BATCH = 10
DEADLINE_S = 180


def _shard_url(env: BenchEnv) -> str:
    parts = urlsplit(env.services.mysql_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/bench_pacer_{uuid.uuid4().hex[:8]}", "", ""))


@contextlib.contextmanager
def _pacer(env: BenchEnv, queue: str, partitions: int, url: str | None = None) -> Iterator[Pacer]:
    url = url or _shard_url(env)
    pacer = Pacer.open([url])
    pacer.create_queue(queue, partitions=partitions, lease=timedelta(minutes=10))
    try:
        yield pacer
    finally:
        pacer.close()
        MysqlStore([url]).drop_databases()


def _enqueue_all(pacer: Pacer, queue: str, count: int) -> None:
    for start in range(0, count, 100):
        pacer.enqueue(queue, [Job(b"x" * 64) for _ in range(min(100, count - start))])


def _enqueuer(url: str, count: int, ready: Any, go: Any) -> None:
    """The end-to-end scenario's enqueuing service, a process of its own: in the workers' process it waited
    for the interpreter lock behind eight busy threads and bounded both systems."""
    pacer = Pacer(MysqlStore([url]))
    pacer.enqueue("tput", [Job(b"x" * 64)])  # connected, the queue's configuration read
    ready.set()
    go.wait()
    _enqueue_all(pacer, "tput", count - 1)
    pacer.close()


def _percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1] * 1e6


# --- the PinLater-style baseline ---------------------------------------------------------------------


class _PinLater:
    """PinLater's MySQL dequeue and ack, over the same table layout."""

    def __init__(self, pacer: Pacer, queue: str, partitions: int) -> None:
        pool = pacer.store._pools[0]  # type: ignore[attr-defined]  # the bench's own database
        self.connect: Callable[[], Any] = lambda: pymysql.connect(
            host=pool.url.host, port=pool.url.port, user=pool.url.user, password=pool.url.password,
            database=pool.url.database, autocommit=True,
        )  # fmt: skip
        self.tables = [partition_table(queue, p) for p in range(partitions)]
        conn = self.connect()
        with conn.cursor() as cursor:
            for table in self.tables:  # PinLater's indexes in place of Pacer's: (state, run_after) and the claim
                cursor.execute(
                    f"ALTER TABLE {table} DROP INDEX ix_due, ADD INDEX ix_state (state, run_after), "
                    "ADD INDEX ix_claim (claim_token)"
                )
        conn.close()
        self.statements: collections.Counter[str] = collections.Counter()  # by "dequeue" and "ack"
        self._lock = threading.Lock()
        self._next = 0

    def worker(self, conn: Any, limit: int) -> list[tuple[str, int]]:
        """One dequeue: claim on the shards (tables) in turn until ``limit`` jobs are found."""
        with self._lock:
            self._next += 1
            claim, start = f"w{threading.get_ident()}:{self._next}", self._next
        out: list[tuple[str, int]] = []
        statements = 0
        with conn.cursor() as cursor:
            for i in range(len(self.tables)):
                table = self.tables[(start + i) % len(self.tables)]
                now = time.time_ns() // 1000
                statements += 1
                changed = _retrying(
                    cursor,
                    f"UPDATE {table} SET state = 1, claim_token = %s, updated_at = %s, lease_expires_at = %s "
                    "WHERE state = 0 AND run_after <= %s LIMIT %s",
                    (claim, now, now + 600_000_000, now, limit - len(out)),
                )
                if changed:
                    statements += 1
                    cursor.execute(f"SELECT local_id, body FROM {table} WHERE claim_token = %s", (claim,))
                    out += [(table, int(row[0])) for row in cursor.fetchall()]
                if len(out) >= limit:
                    break
        with self._lock:
            self.statements["dequeue"] += statements
        return out

    def ack(self, conn: Any, jobs: list[tuple[str, int]]) -> None:
        now = time.time_ns() // 1000
        with conn.cursor() as cursor:
            for table, local_id in jobs:  # one statement per job, no claim check (PinLater's success ack)
                _retrying(
                    cursor, f"UPDATE {table} SET state = 2, finished_at = %s WHERE local_id = %s", (now, local_id)
                )
        with self._lock:
            self.statements["ack"] += len(jobs)


def _retrying(cursor: Any, sql: str, params: tuple[Any, ...]) -> int:
    """Execute, retrying deadlocks and lock wait timeouts as PinLater does ("expected" under contention)."""
    while True:
        try:
            return int(cursor.execute(sql, params))
        except pymysql.err.OperationalError as exc:
            if exc.args[0] not in (1205, 1213):
                raise


# --- scenarios ---------------------------------------------------------------------------------------


def _latency_pacer_owner(env: BenchEnv, q: float, samples: int) -> float:
    with _pacer(env, "lat", 1) as pacer:
        _enqueue_all(pacer, "lat", samples + 100)
        owner = PartitionOwner(pacer.store, pacer.queue_config("lat"), 0, "bench", capacity=samples + 100)
        owner.acquire()
        owner.refill(force=True)
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            owner.dequeue(1)
            times.append(time.perf_counter() - started)
        return _percentile(times, q)


def _latency_pinlater(env: BenchEnv, q: float, samples: int) -> float:
    with _pacer(env, "lat", 1) as pacer:
        _enqueue_all(pacer, "lat", samples + 100)
        baseline = _PinLater(pacer, "lat", 1)
        conn = baseline.connect()
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            baseline.worker(conn, 1)
            times.append(time.perf_counter() - started)
        conn.close()
        return _percentile(times, q)


@contextlib.contextmanager
def _broker(env: BenchEnv, storage: str) -> Iterator[str]:
    from tests.integration.pacer.brokers import BrokerProcess

    topic = env.create_topic("pacer-control", 4)
    with TemporaryDirectory() as workdir:
        config = {
            "storage": [storage],
            "control_topic": env.services.cluster_prefix + topic,
            "control_partitions": 4,
            "group_id": f"bench-pacer-{uuid.uuid4().hex[:6]}",
            "buffer_capacity": 5000,
            "low_watermark": 1000,
            "psc": {"psc.discovery.file": env.services.psc_discovery_file},
        }
        broker = BrokerProcess(config, Path(workdir), "broker")
        try:
            yield broker.url
        finally:
            broker.stop()
            env.delete_topics([topic])


def _latency_http(env: BenchEnv, q: float, samples: int, *, server_side: bool = False) -> float:
    """One job per request. The client's round trip through ``pacer.Client``, or (``server_side``) the time the
    broker's handler took, from the ``Server-Timing`` header of the same request sent over a kept-alive
    connection."""
    url = _shard_url(env)
    pacer = Pacer.open([url])
    pacer.create_queue("lat", lease=timedelta(minutes=10))
    _enqueue_all(pacer, "lat", samples + 100)
    pacer.close()
    try:
        with _broker(env, url) as broker:
            client = Client(broker)
            while not client.dequeue("lat", 1):  # ownership settled and the buffer filled
                time.sleep(0.2)
            times = []
            if server_side:
                parts = urlsplit(broker)
                conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
                for _ in range(samples):
                    conn.request(
                        "POST", "/v1/queues/lat/dequeue", b'{"limit": 1}', {"Content-Type": "application/json"}
                    )
                    response = conn.getresponse()
                    response.read()
                    timing = response.headers["Server-Timing"]
                    times.append(float(timing.split("dur=")[1]) / 1000)
                conn.close()
                return _percentile(times, q)
            for _ in range(samples):
                started = time.perf_counter()
                client.dequeue("lat", 1)
                times.append(time.perf_counter() - started)
            return _percentile(times, q)
    finally:
        MysqlStore([url]).drop_databases()


class _Statements:
    """SQL statements a Pacer store runs, by the store operation running them: "dequeue" (refills, lease grants),
    "ack", or "other". A grant and acks written in one statement count in both."""

    OPERATIONS = {"reserve": ("dequeue",), "grant": ("dequeue",), "ack": ("ack",), "grant_and_ack": ("dequeue", "ack")}

    def __init__(self, store: MysqlStore) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self._doing = threading.local()
        self._lock = threading.Lock()
        store.transaction = self._counted(store.transaction)  # type: ignore[method-assign,assignment]
        store.statement = self._counted(store.statement)  # type: ignore[method-assign,assignment]
        for name, kinds in self.OPERATIONS.items():
            setattr(store, name, self._labelled(kinds, getattr(store, name)))

    def _labelled(self, kinds: tuple[str, ...], operation: Callable[..., Any]) -> Callable[..., Any]:
        def labelled(*args: Any, **kwargs: Any) -> Any:
            self._doing.kinds = kinds
            try:
                return operation(*args, **kwargs)
            finally:
                self._doing.kinds = ("other",)

        return labelled

    def _counted(self, session: Callable[[int], Any]) -> Callable[[int], Any]:
        @contextlib.contextmanager
        def counted(shard: int) -> Iterator[Any]:
            with session(shard) as tx:
                try:
                    yield tx
                finally:
                    with self._lock:
                        for kind in getattr(self._doing, "kinds", ("other",)):
                            self.counts[kind] += tx.statements

        return counted


def _throughput(
    env: BenchEnv,
    count: int,
    worker: Callable[[Pacer], Callable[[], int]],
    ready: Callable[[Pacer], None] = lambda _: None,
    *,
    prefilled: bool = False,
    window: Callable[[str], None] = lambda _: None,
    statements: bool = False,
) -> tuple[float, collections.Counter[str]]:
    """Jobs per second with an enqueuing thread and ``WORKERS`` threads; and, if ``statements``, Pacer's SQL
    statements by phase (counting wraps every store call, so throughput runs go without it).

    ``prefilled``: every job is enqueued before the clock starts (the dequeue and ack path alone). ``window`` is
    called with "start" as the clock starts and "end" as it stops (``benchmarks.pacer_cpu`` reads CPU times then).
    """
    url = _shard_url(env)
    with _pacer(env, "tput", PARTITIONS, url) as pacer:
        store = pacer.store
        assert isinstance(store, MysqlStore)
        done = [0]
        lock = threading.Lock()
        finished = threading.Event()
        ready(pacer)
        counts = _Statements(store).counts if statements else collections.Counter[str]()
        loops = [worker(pacer) for _ in range(WORKERS)]

        def run(loop: Callable[[], int]) -> None:
            while not finished.is_set():
                acked = loop()
                with lock:
                    done[0] += acked
                    if done[0] >= count:
                        finished.set()
                if not acked:
                    time.sleep(0.001)

        threads = [threading.Thread(target=run, args=(loop,)) for loop in loops]

        spawn = multiprocessing.get_context("spawn")
        enqueuer_ready, go = spawn.Event(), spawn.Event()
        enqueuer = spawn.Process(target=_enqueuer, args=(url, count, enqueuer_ready, go), daemon=True)
        if prefilled:
            _enqueue_all(pacer, "tput", count)
        else:
            enqueuer.start()
            if not enqueuer_ready.wait(60):
                raise RuntimeError("the enqueuing process did not start")
        window("start")
        started = time.perf_counter()
        go.set()
        for thread in threads:
            thread.start()
        if not finished.wait(DEADLINE_S):
            finished.set()
            raise RuntimeError(f"only {done[0]} of {count} jobs done in {DEADLINE_S} s")
        elapsed = time.perf_counter() - started
        window("end")
        for thread in threads:
            thread.join()
        if not prefilled:
            enqueuer.join(30)
        return count / elapsed, counts


def _warm(store: MysqlStore, connections: int) -> None:
    """Open the store's connections before the clock starts, as the baseline's workers do theirs."""
    ready = threading.Barrier(connections)

    def hold() -> None:
        with store.transaction(0) as tx, store.statement(0) as statement:
            tx.rows("SELECT 1")
            statement.rows("SELECT 1")
            ready.wait()

    threads = [threading.Thread(target=hold) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _pacer_ready(pacer: Pacer) -> None:
    """Take the partitions and open the connections before the clock starts."""
    pacer.dequeue("tput", 1)
    assert isinstance(pacer.store, MysqlStore)
    _warm(pacer.store, WORKERS)


def _pacer_worker(pacer: Pacer) -> Callable[[], int]:
    """A worker's loop: ack the jobs it ran and take the next ones in one call (``Pacer.ack_and_dequeue``)."""
    held: list[Lease] = []

    def loop() -> int:
        """Jobs acked by this call; the first call takes its jobs and acks them before it returns."""
        nonlocal held
        while True:
            try:
                result, leases = pacer.ack_and_dequeue("tput", BATCH, succeeded=held)
            except pymysql.err.OperationalError:
                continue  # a replayed success ack is accepted
            assert not result.rejected, result.rejected
            held = leases
            if result.accepted or not leases:
                return len(result.accepted)

    return loop


def _pacer_run(
    env: BenchEnv,
    count: int,
    *,
    prefilled: bool = False,
    window: Callable[[str], None] = lambda _: None,
    statements: bool = False,
) -> tuple[float, dict[str, float]]:
    """Jobs per second, and SQL statements per job by phase (with ``statements``; else zeros)."""
    rate, counts = _throughput(
        env, count, _pacer_worker, _pacer_ready, prefilled=prefilled, window=window, statements=statements
    )
    return rate, {what: counts[what] / count for what in ("dequeue", "ack")}


def _pinlater_run(
    env: BenchEnv, count: int, *, prefilled: bool = False, window: Callable[[str], None] = lambda _: None
) -> tuple[float, dict[str, float]]:
    holder: dict[str, _PinLater] = {}

    def worker(pacer: Pacer) -> Callable[[], int]:
        if "b" not in holder:
            holder["b"] = _PinLater(pacer, "tput", PARTITIONS)
        baseline = holder["b"]
        conn = baseline.connect()

        def loop() -> int:
            jobs = baseline.worker(conn, BATCH)
            baseline.ack(conn, jobs)
            return len(jobs)

        return loop

    rate, _ = _throughput(env, count, worker, prefilled=prefilled, window=window)
    return rate, {what: holder["b"].statements[what] / count for what in ("dequeue", "ack")}


# --- the peer: Dramatiq on Redis ----------------------------------------------------------------------


@contextlib.contextmanager
def _redis_server() -> Iterator[int]:
    """A private ``redis-server`` (Debian's) on a free port, without persistence; its port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    with TemporaryDirectory() as workdir:
        args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        server = subprocess.Popen([*args, "--dir", workdir], stdout=subprocess.DEVNULL)
        try:
            client = redis.Redis(port=port)
            deadline = time.monotonic() + 20
            while True:
                try:
                    client.ping()
                    break
                except redis.exceptions.ConnectionError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.05)
            client.close()
            yield port
        finally:
            server.terminate()
            server.wait(10)


def _dramatiq_actor(broker: Any, noop: Callable[[str], None]) -> Any:
    import dramatiq

    return dramatiq.actor(broker=broker, actor_name="noop", queue_name="tput", max_retries=1)(noop)


def _dramatiq_sender(port: int, count: int, ready: Any, go: Any) -> None:
    """The enqueuing service for Dramatiq, a process of its own like Pacer's."""
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(host="127.0.0.1", port=port)  # type: ignore[no-untyped-call]
    actor = _dramatiq_actor(broker, lambda _: None)
    ready.set()
    go.wait()
    for _ in range(count):
        actor.send("x" * 64)
    broker.close()


def _dramatiq_run(_: BenchEnv, count: int, *, prefilled: bool = False) -> float:
    """Dramatiq's Redis broker and worker (8 threads, no-op actor): the same enqueue → run → ack as above."""
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    with _redis_server() as port:
        broker = RedisBroker(host="127.0.0.1", port=port)  # type: ignore[no-untyped-call]
        done = [0]
        lock = threading.Lock()
        finished = threading.Event()

        def noop(_: str) -> None:
            with lock:
                done[0] += 1
                if done[0] >= count:
                    finished.set()

        actor = _dramatiq_actor(broker, noop)
        spawn = multiprocessing.get_context("spawn")
        sender_ready, go = spawn.Event(), spawn.Event()
        sender = spawn.Process(target=_dramatiq_sender, args=(port, count, sender_ready, go), daemon=True)
        if prefilled:
            for _message in range(count):
                actor.send("x" * 64)
        else:
            sender.start()
            if not sender_ready.wait(60):
                raise RuntimeError("the sending process did not start")
        worker = dramatiq.Worker(broker, worker_threads=WORKERS)
        started = time.perf_counter()
        go.set()
        worker.start()
        try:
            if not finished.wait(DEADLINE_S):
                raise RuntimeError(f"only {done[0]} of {count} jobs done in {DEADLINE_S} s")
            return count / (time.perf_counter() - started)
        finally:
            worker.stop()
            broker.close()
            if not prefilled:
                sender.join(30)


@contextlib.contextmanager
def scenarios(env: BenchEnv, scale: float) -> Iterator[list[Scenario]]:
    samples = max(200, int(LATENCY_SAMPLES * scale))
    jobs = max(1000, int(THROUGHPUT_JOBS * scale))

    def latency(q: float) -> Scenario:
        systems: dict[str, RunFn] = {
            BASELINE: lambda: _latency_pinlater(env, q, samples),
            "pacer-owner": lambda: _latency_pacer_owner(env, q, samples),
            "pacer-http": lambda: _latency_http(env, q, samples),
            "pacer-http-server": lambda: _latency_http(env, q, samples, server_side=True),
        }
        return Scenario(f"dequeue-latency-p{q:g}", "latency", "us", BASELINE, systems, higher_is_better=False)

    throughput = Scenario(
        "enqueue-dequeue-ack-8-workers",
        "throughput",
        "jobs/s",
        BASELINE,
        {
            BASELINE: lambda: _pinlater_run(env, jobs)[0],
            "pacer-embedded": lambda: _pacer_run(env, jobs)[0],
            PEER: lambda: _dramatiq_run(env, jobs),
        },
    )
    drain = Scenario(
        "dequeue-ack-8-workers-prefilled",
        "throughput",
        "jobs/s",
        BASELINE,
        {
            BASELINE: lambda: _pinlater_run(env, jobs, prefilled=True)[0],
            "pacer-embedded": lambda: _pacer_run(env, jobs, prefilled=True)[0],
            PEER: lambda: _dramatiq_run(env, jobs, prefilled=True),
        },
    )

    def statements(what: str) -> Scenario:
        return Scenario(
            f"sql-statements-per-job-{what}",
            f"{what} statements, prefilled",
            "stmt/job",
            BASELINE,
            {
                BASELINE: lambda: _pinlater_run(env, jobs, prefilled=True)[1][what],
                "pacer-embedded": lambda: _pacer_run(env, jobs, prefilled=True, statements=True)[1][what],
            },
            higher_is_better=False,
        )

    yield [latency(50), latency(99), throughput, drain, statements("dequeue"), statements("ack")]
