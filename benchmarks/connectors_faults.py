"""Exactly-once under a long fault schedule: ``python -m benchmarks.connectors_faults [--rounds N] [--seed S]``.

A connectors job (``tests/integration/connectors/jobs.py``, exactly-once Kafka source and sink, per-key
state) runs as a real process while input keeps arriving. Each round kills it with SIGKILL: at a random
moment, right after a checkpoint file is written (transaction still open), or right after a checkpoint's
transaction committed; then it is restarted from the same checkpoint store. At the end the output, read
with ``read_committed``, is compared partition by partition with the expected output: records missing,
records duplicated, partitions out of order. The CI tests run a short version of this schedule.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from benchmarks._env import bench_env
from tests.integration.connectors.harness import PARTITIONS, Harness, compare, stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.connectors_faults", description=__doc__)
    parser.add_argument("--rounds", type=int, default=12, help="kills, each followed by a restart")
    parser.add_argument("--records", type=int, default=30_000, help="input records, sent while the job runs")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    with bench_env() as env, tempfile.TemporaryDirectory() as tmp:
        source, out = env.create_topic("faults-in", PARTITIONS), env.create_topic("faults-out", PARTITIONS)
        harness = Harness(env.bootstrap, env.services.psc_discovery_file, source, out, Path(tmp))
        rate = args.records / max(10.0, args.rounds * 2.5)
        feeder = threading.Thread(target=harness.produce, args=(args.records, rate))
        feeder.start()
        kinds: Counter[str] = Counter()
        for round_no in range(1, args.rounds + 1):
            kind = rng.choice(["random", "after-checkpoint-file", "after-commit"])
            kinds[kind] += 1
            started = time.monotonic()
            if kind == "random":
                proc = harness.start(CONN_INTERVAL="0.3")
                time.sleep(rng.uniform(0.5, 3.0))
                proc.kill()
                proc.wait()
            else:
                step = "put" if kind == "after-checkpoint-file" else "prune"
                rc, err = harness.run(timeout=120, CONN_INTERVAL="0.3", CONN_KILL_AT=f"{step}:{rng.randint(1, 4)}")
                if rc != -signal.SIGKILL:
                    print(f"round {round_no}: the job exited {rc} instead of being killed\n{err[-2000:]}")
                    return 1
            print(f"round {round_no:3}: killed ({kind}) after {time.monotonic() - started:.1f}s", file=sys.stderr)
        feeder.join()
        proc = harness.start(CONN_INTERVAL="0.3")
        recovery_started = time.monotonic()
        expected = harness.expected()
        found = harness.read(out, until=len(harness.produced), timeout=300)
        caught_up_s = time.monotonic() - recovery_started
        rc, err = stop(proc)
        env.delete_topics([source, out])
    missing, duplicated, disordered = compare(found, expected)
    print(
        f"seed {seed}: {args.rounds} kills ({dict(kinds)}), {len(harness.produced)} records; "
        f"missing {missing}, duplicated {duplicated}, partitions out of order {disordered}; "
        f"final run caught up in {caught_up_s:.1f}s, exit {rc}"
    )
    return 0 if missing == duplicated == disordered == 0 and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
