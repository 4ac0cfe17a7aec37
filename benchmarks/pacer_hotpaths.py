"""Pacer's per-job Python in a worker's process, without MySQL: ``python -m benchmarks.pacer_hotpaths``.

- leases: µs per job to make the leases of a 10-job write (a Lease, its Descriptor, its claim and expiry).
- unpack: µs per job to unpack a 400-job packed refill (64-byte bodies) into Reserved jobs in dispatch order.
- ack_groups: µs per job to group a worker's 10 acks by partition as the store's items.

Each with the C hot paths (``pacer._speedups``) and their Python definitions (``pacer._fallback``). Then
``call``: µs per job of a worker's whole ``Pacer.ack_and_dequeue`` loop (10 jobs a call, 4 partitions) over a
store that answers at once, as in use here (C where it was built): the Python a call costs apart from its SQL
round trips, in half as many rounds (at least 3) of 100,000 jobs. Each figure is the fastest and the median of
the rounds; they are side by side from one run.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import struct
import time
import timeit
from collections.abc import Callable, Collection, Sequence
from typing import Any

import pacer._fallback as fallback
from pacer import Lease, Pacer
from pacer._accel import configure
from pacer._models import QueueConfig
from pacer.storage.base import AckItem, Reserved, Store, _grantable, _plainly_acked

NOW = 1_700_000_000_000_000


def _packed(count: int) -> bytes:
    numbers = [(64, 1, NOW + i, 1000 + i, 3, 3, 0) for i in range(count)]
    return b"".join(b"".join(struct.pack(">q", n).hex().upper().encode() for n in job) + b"x" * 64 for job in numbers)


def _cases(module: Any) -> dict[str, tuple[Callable[[], object], int]]:
    jobs = [Reserved(1000 + i, 1, 3, 3, 0, b"x" * 64) for i in range(10)]
    leases = module.leases(jobs, [NOW] * 10, 7, "q", 2)
    packed = _packed(400)
    return {
        "leases": (lambda: module.leases(jobs, [NOW] * 10, 7, "q", 2), 10),
        "unpack": (lambda: module.unpack_jobs(packed), 400),
        "ack_groups": (lambda: module.ack_groups(leases, (), "q"), 10),
    }


def _per_job(run: Callable[[], object], jobs: int, rounds: int) -> list[float]:
    number = max(1, 20_000 // jobs)
    return [t / number / jobs * 1e6 for t in timeit.repeat(run, number=number, repeat=rounds)]


class _AnsweringStore(Store):
    """A store that answers at once, writing the SQL text of its rounds as MySQL's would be written."""

    def __init__(self) -> None:
        super().__init__()
        self.next_id = 1

    def acquire(self, name: str, partition: int, owner: str, now: int) -> int:
        return 7

    def reserve(
        self, name: str, partition: int, epoch: int, limit: int, now: int, held: Collection[int] = ()
    ) -> list[Reserved]:
        out = [Reserved(self.next_id + i, 2, 3, 3, 0, b"x" * 64) for i in range(limit)]
        self.next_id += limit
        return out

    def grant_and_ack(
        self,
        name: str,
        partition: int,
        epoch: int,
        jobs: Sequence[Reserved],
        lease_us: int,
        acks: Sequence[AckItem],
        now: int,
    ) -> bool:
        return bool(f"({_grantable(jobs)}) OR ({_plainly_acked(acks)})")

    def grant(
        self, name: str, partition: int, epoch: int, jobs: Sequence[Reserved], lease_us: int, now: int
    ) -> list[Reserved]:
        _grantable(jobs)
        return list(jobs)

    def ack(self, name: str, partition: int, epoch: int, items: Sequence[AckItem], now: int) -> list[str | None]:
        return [None] * len(items)


def _call_rounds(rounds: int, jobs: int = 100_000) -> list[float]:
    pacer = Pacer(_AnsweringStore())
    pacer._configs["q"] = QueueConfig("q", partitions=4)  # no metadata to read from the answering store
    held: list[Lease] = []

    def loop(count: int) -> None:
        nonlocal held
        done = 0
        while done < count:
            result, held = pacer.ack_and_dequeue("q", 10, succeeded=held)
            done += len(result.accepted)

    loop(2_000)
    out = []
    for _ in range(rounds):
        started = time.process_time()
        loop(jobs)
        out.append((time.process_time() - started) / jobs * 1e6)
    pacer.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pacer_hotpaths", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    implementations: dict[str, Any] = {"python": fallback}
    try:
        speedups = importlib.import_module("pacer._speedups")
    except ImportError:
        print("pacer._speedups was not built here: the Python versions alone")
    else:
        implementations["c"] = configure(speedups)
    print(f"{'case':12} {'impl':7} {'fastest':>9} {'median':>9}  us per job")
    for name in ("leases", "unpack", "ack_groups"):
        for impl, module in implementations.items():
            run, jobs = _cases(module)[name]
            times = _per_job(run, jobs, args.rounds)
            print(f"{name:12} {impl:7} {min(times):9.3f} {statistics.median(times):9.3f}")
    times = _call_rounds(max(3, args.rounds // 2))
    print(f"{'call':12} {'in use':7} {min(times):9.3f} {statistics.median(times):9.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
