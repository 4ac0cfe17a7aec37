"""Broker restarts under running jobs: ``python -m benchmarks.connectors_broker_restart [--rounds N] [--seed S]``.

The shared broker cannot be stopped, so a private one is started with the stack launcher (its own home and
ports, as ``benchmarks.singer_outage`` does). An exactly-once and an at-least-once job
(``tests/integration/connectors/jobs.py``) read one topic while input keeps arriving; each round the
broker is SIGKILLed or stopped cleanly at a random moment, left down ``--down-s`` seconds and started
again on the same data. The jobs are never restarted by hand. At the end each output is read back:
the exactly-once one under ``read_committed`` must hold every record once in per-partition order; the
at-least-once one every record, in order once replayed stretches are left out. The report gives both,
how long after the last restart the outputs were complete, and how often each job restarted itself.
The CI test (``tests/integration/connectors/test_broker_restart.py``) runs one round.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from benchmarks.singer_outage import PrivateKafka, private_kafka
from tests.integration.connectors.harness import PARTITIONS, Harness, Running, compare


def kill_broker(kafka: PrivateKafka) -> None:
    """SIGKILL the broker's process group, as a crash would."""
    pid = int((kafka.home / "kafka.pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def create_topics(kafka: PrivateKafka, count: int) -> list[str]:
    names = [f"conn-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    for future in admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names]).values():
        future.result(30)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.connectors_broker_restart", description=__doc__)
    parser.add_argument("--rounds", type=int, default=4, help="broker restarts")
    parser.add_argument("--down-s", type=float, default=5.0, help="seconds the broker stays down each round")
    parser.add_argument("--rate", type=float, default=1000.0, help="input records per second")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp, private_kafka(Path(tmp)) as kafka:
        source, exactly, at_least = create_topics(kafka, 3)
        eos = Harness(kafka.bootstrap, kafka.discovery_file, source, exactly, Path(tmp))
        alo = Harness(kafka.bootstrap, kafka.discovery_file, source, at_least, Path(tmp))
        alo.produced = eos.produced  # one input, two jobs
        settings = {"CONN_INTERVAL": "0.5", "CONN_TXN_TIMEOUT": "6", "CONN_MAX_RESTARTS": "10"}
        jobs = [Running(eos, **settings), Running(alo, CONN_GUARANTEE="at_least_once", **settings)]
        stop_feeding = threading.Event()

        def feed() -> None:
            while not stop_feeding.is_set():
                eos.produce(500, args.rate)

        feeder = threading.Thread(target=feed)
        feeder.start()
        try:
            for round_no in range(1, args.rounds + 1):
                time.sleep(rng.uniform(2.0, 6.0))
                how = rng.choice(["SIGKILL", "clean stop"])
                if how == "SIGKILL":
                    kill_broker(kafka)
                else:
                    kafka.down()
                time.sleep(args.down_s)
                started = time.monotonic()
                kafka.up()
                print(f"round {round_no}: broker {how}, down {args.down_s:.0f}s, "
                      f"up again in {time.monotonic() - started:.1f}s", file=sys.stderr)  # fmt: skip
            back = time.monotonic()
            stop_feeding.set()
            feeder.join()
            expected = eos.expected()
            found = eos.read(exactly, until=len(eos.produced), timeout=300)
            replayed = eos.read(at_least, until=0, timeout=300, done=lambda got: compare(got, expected)[0] == 0)
            caught_up_s = time.monotonic() - back
        finally:
            (eos_rc, eos_log), (alo_rc, alo_log) = jobs[0].stop(), jobs[1].stop()
    eos_result, alo_result = compare(found, expected), compare(replayed, expected)
    print(
        f"seed {seed}: {args.rounds} broker restarts, {len(eos.produced)} records; outputs complete "
        f"{caught_up_s:.1f}s after the last restart\n"
        f"exactly-once: missing {eos_result[0]}, duplicated {eos_result[1]}, partitions out of order "
        f"{eos_result[2]}; restarted itself {eos_log.count('job_restarting')} times, exit {eos_rc}\n"
        f"at-least-once: missing {alo_result[0]}, duplicated {alo_result[1]} (replays), partitions out of "
        f"order {alo_result[2]}; restarted itself {alo_log.count('job_restarting')} times, exit {alo_rc}"
    )
    ok = eos_result == (0, 0, 0) and alo_result[0] == alo_result[2] == 0 and eos_rc == alo_rc == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
