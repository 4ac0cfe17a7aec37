"""Running scenarios side by side, repeating them, and reporting medians and ratios to a baseline."""

from __future__ import annotations

import gc
import json
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

# A system's run of one scenario: returns the measured figure (e.g. messages per second).
RunFn = Callable[[], float]


@dataclass(frozen=True)
class Scenario:
    """One workload measured for several systems; ``systems`` maps a system name to its run function."""

    name: str
    metric: str
    unit: str
    baseline: str
    systems: dict[str, RunFn]
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if self.baseline not in self.systems:
            raise ValueError(f"scenario {self.name!r}: baseline {self.baseline!r} is not one of its systems")


@dataclass
class Row:
    suite: str
    scenario: str
    system: str
    metric: str
    unit: str
    median: float
    runs: list[float] = field(default_factory=list)
    ratio_to_baseline: float = 1.0
    # Median over repeats of this run / the baseline's run of the same repeat: systems run back to back in
    # a repeat, so this ratio holds while the machine or the broker drifts between repeats.
    paired_ratio: float = 1.0


def balanced_orders(n: int) -> list[list[int]]:
    """Run orders for ``n`` systems in which each one goes first, last, and right after each other one,
    equally often (a Williams design): a run slows the next one (the broker flushing and deleting its data,
    its JVM collecting the garbage of a fast run), so a plain rotation, where each system always follows the
    same one, gives some systems a calmer broker than others.
    """
    first = [0]
    for step in range(1, n):
        first.append((step + 1) // 2 if step % 2 else n - step // 2)
    rows = [[(i + shift) % n for i in first] for shift in range(n)]
    return rows if n % 2 == 0 else rows + [row[::-1] for row in rows]


def run_scenario(
    suite: str, scenario: Scenario, repeat: int, progress: TextIO = sys.stderr, warmup: int = 0
) -> list[Row]:
    """Run every system ``repeat`` times, interleaved and in balanced orders, so drift hits all systems alike.

    ``warmup`` rounds run every system first and are not recorded: the first runs after a broker start
    (cold page cache, a broker not yet at its steady heap and threads) are slower than the rest.
    """
    if repeat < 3:
        raise ValueError(f"repeat must be at least 3 for a meaningful median, got {repeat}")
    if warmup < 0:
        raise ValueError(f"warmup must be 0 or more, got {warmup}")
    runs: dict[str, list[float]] = {name: [] for name in scenario.systems}
    names = list(scenario.systems)
    for attempt in range(1, warmup + 1):
        for name in names:
            value = scenario.systems[name]()
            print(f"  {scenario.name} [warm-up {attempt}/{warmup}] {name}: {value:,.1f} {scenario.unit}", file=progress)
    orders = balanced_orders(len(names))
    for attempt in range(1, repeat + 1):
        for name in (names[i] for i in orders[(attempt - 1) % len(orders)]):
            gc.collect()  # garbage left by the previous run is not collected on this one's clock
            value = scenario.systems[name]()
            runs[name].append(value)
            print(f"  {scenario.name} [{attempt}/{repeat}] {name}: {value:,.1f} {scenario.unit}", file=progress)
    baseline_runs = runs[scenario.baseline]
    base = statistics.median(baseline_runs)
    rows = []
    for name, values in runs.items():
        median = statistics.median(values)
        paired = [v / b if b else float("nan") for v, b in zip(values, baseline_runs, strict=True)]
        rows.append(
            Row(suite, scenario.name, name, scenario.metric, scenario.unit, median, values,
                round(median / base, 4) if base else float("nan"), round(statistics.median(paired), 4))
        )  # fmt: skip
    return rows


def format_table(rows: Sequence[Row], baselines: dict[str, str]) -> str:
    headers = ("scenario", "system", "metric", "median", "unit", "runs", "ratio", "paired")
    body = []
    for row in rows:
        mark = " (baseline)" if baselines.get(row.scenario) == row.system else ""
        body.append(
            (row.scenario, row.system, row.metric, f"{row.median:,.1f}", row.unit,
             " ".join(f"{v:,.0f}" for v in row.runs), f"{row.ratio_to_baseline:.2f}{mark}", f"{row.paired_ratio:.2f}")
        )  # fmt: skip
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *body, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=False)) for line in [headers, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(rows: Sequence[Row], path: Path) -> None:
    path.write_text(json.dumps([asdict(row) for row in rows], indent=2) + "\n")


def as_dicts(rows: Sequence[Row]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]
