"""PSC's per-record hot paths on their own, without a broker: ``python -m benchmarks.hotpaths``.

- produce: ns per ``produce(topic, 100 B)`` call, PSC's ``Producer.produce`` against the native
  confluent-kafka ``produce`` of the same backend producer, interleaved; then the same with four headers
  (as the Singer agent sends), with a per-record ``on_delivery`` callback, and with both. The producer
  points at a port nothing listens on and queues everything (purged between rounds), so the figure is the
  call, not the network.
- deliver: ns per successful delivery report of a record produced with headers and a callback: the report
  PSC handed to the backend, called as confluent-kafka calls it, against the bare callback that native
  confluent-kafka calls.
- wrap: ns per record to wrap a 500-record batch of ``confluent_kafka.Message`` and read each value, with
  the C hot paths (``psc._speedups``) and their Python definitions (``psc._fallback``); ``native`` reads
  the values of the unwrapped batch, so the difference is what PSC's messages cost per record.

Each figure is the fastest and the median of the rounds; they are side by side from one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit
from collections.abc import Callable
from functools import partial
from typing import Any

import confluent_kafka

import psc
import psc._fallback as fallback
from psc._message import Source

PAYLOAD = b"x" * 100
HEADERS: list[tuple[str, str | bytes | None]] = [
    ("_mid", b"0123456789abcdef"),
    ("_ots", b"1764412800000"),
    ("host", b"host-01"),
    ("_fid", b"f-000042"),
]
CALLS = 50_000
BATCH = 500
URI = "plaintext:/rn:kafka:local:local_dev::cluster01:hotpaths"


def _on_delivery(err: Any, msg: Any) -> None:
    pass


def _per_call(produce: Callable[..., Any], topic: str, kwargs: dict[str, Any]) -> float:
    started = time.perf_counter()
    if kwargs:
        for _ in range(CALLS):
            produce(topic, PAYLOAD, **kwargs)
    else:
        for _ in range(CALLS):
            produce(topic, PAYLOAD)
    return (time.perf_counter() - started) / CALLS * 1e9


CASES: dict[str, dict[str, Any]] = {
    "": {},
    " +headers": {"headers": HEADERS},
    " +callback": {"on_delivery": _on_delivery},
    " +both": {"headers": HEADERS, "on_delivery": _on_delivery},
}


def _producer() -> psc.Producer:
    return psc.Producer(
        {
            "psc.project": "hotpaths",
            "psc.discovery.connect": "127.0.0.1:1",
            "psc.config.logging.enabled": "false",
            "psc.producer.delivery.report.only.error": "true",
            "psc.producer.compression.type": "none",
            "psc.producer.batch.duration.ms": "100000",  # under the delivery timeout: nothing is sent meanwhile
            "psc.producer.buffer.max.messages": str(CALLS * 2 + 1),
            "psc.producer.buffer.max.kbytes": "4000000",
        }
    )


def produce_rounds(rounds: int) -> dict[str, list[float]]:
    producer = _producer()
    producer.produce(URI, PAYLOAD)  # resolve the route
    native = producer._routes[URI].produce  # the backend's own produce, on the same producer
    out: dict[str, list[float]] = {f"{side}{case}": [] for case in CASES for side in ("psc", "native")}
    for round_ in range(rounds):
        for case, kwargs in CASES.items():
            # Each side starts from an empty queue, and the sides take turns going first: a fuller queue (and
            # heap) makes the same calls slower, which once showed up as PSC's cost with headers.
            sides = [("native", native, "hotpaths"), ("psc", producer.produce, URI)]
            for side, produce, topic in sides if round_ % 2 == 0 else sides[::-1]:
                out[f"{side}{case}"].append(_per_call(produce, topic, kwargs))
                producer.purge()  # the purge reports are served outside the timing
                producer.poll(0)
    producer.close(0)
    return out


def deliver_rounds(rounds: int) -> dict[str, list[float]]:
    producer = _producer()
    producer.produce(URI, PAYLOAD)
    route = producer._routes[URI]
    sent: list[tuple[Any, ...]] = []
    backend_produce, route.produce = route.produce, lambda *args, **kwargs: sent.append(args)
    producer.produce(URI, PAYLOAD, headers=HEADERS, on_delivery=_on_delivery)
    route.produce = backend_produce
    report = sent[-1][4]  # the on_delivery PSC gave the backend
    delivered = confluent_kafka.Message(topic="hotpaths", partition=0, offset=1, value=PAYLOAD, headers=HEADERS)
    out: dict[str, list[float]] = {}
    calls: dict[str, Callable[[Any, Any], Any]] = {"native": _on_delivery, "psc": report}
    for name, call in calls.items():
        runs = timeit.repeat(partial(call, None, delivered), number=CALLS, repeat=rounds)
        out[name] = [run / CALLS * 1e9 for run in runs]
    producer.purge()
    producer.close(0)
    return out


def wrap_rounds(rounds: int) -> dict[str, list[float]]:
    source = Source(URI[: -len("hotpaths")])
    batch = [confluent_kafka.Message(topic="hotpaths", partition=0, offset=i, value=PAYLOAD) for i in range(BATCH)]
    out: dict[str, list[float]] = {"native": [], "c": [], "python": []}

    def read_native() -> None:
        for message in batch:
            message.value()

    out["native"] = [run / 200 / BATCH * 1e9 for run in timeit.repeat(read_native, number=200, repeat=rounds)]
    for name, impl in (("c", _speedups()), ("python", fallback)):
        if impl is None:
            continue

        def wrap_and_read(impl: Any = impl) -> None:
            for message in impl.wrap_batch(source, batch):
                message.value()

        runs = timeit.repeat(wrap_and_read, number=200, repeat=rounds)
        out[name] = [run / 200 / BATCH * 1e9 for run in runs]
    return out


def _speedups() -> Any:
    try:
        import psc._speedups as speedups
    except ImportError:
        return None
    return speedups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotpaths", description=__doc__)
    parser.add_argument("--rounds", type=int, default=12, help="interleaved rounds per figure")
    args = parser.parse_args(argv)
    for title, results in (
        ("produce, ns per call", produce_rounds(args.rounds)),
        ("deliver (headers + callback), ns per report", deliver_rounds(args.rounds)),
        ("wrap + value, ns per record", wrap_rounds(args.rounds)),
    ):
        print(title)
        for name, runs in results.items():
            if runs:
                print(f"  {name:18} fastest {min(runs):7.1f}  median {statistics.median(runs):7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
