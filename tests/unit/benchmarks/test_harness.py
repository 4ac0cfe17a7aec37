"""The benchmark harness: interleaved repeats, medians, ratios to the baseline and the JSON rows."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks._harness import Scenario, format_table, run_scenario, write_json


def sequence(*values: float) -> Iterator[float]:
    yield from values


def test_median_and_ratio_to_baseline(tmp_path: Path) -> None:
    calls: list[str] = []
    fast, slow = sequence(100, 300, 200), sequence(10, 90, 20)

    def run_fast() -> float:
        calls.append("fast")
        return next(fast)

    def run_slow() -> float:
        calls.append("slow")
        return next(slow)

    scenario = Scenario("s1", "throughput", "msg/s", "fast", {"fast": run_fast, "slow": run_slow})
    rows = run_scenario("suite", scenario, repeat=3, progress=io.StringIO())
    assert calls == ["fast", "slow", "slow", "fast", "fast", "slow"], "interleaved, in rotating order"
    by_system = {row.system: row for row in rows}
    assert by_system["fast"].median == 200 and by_system["fast"].ratio_to_baseline == 1.0
    assert by_system["slow"].median == 20 and by_system["slow"].ratio_to_baseline == 0.1
    assert by_system["slow"].runs == [10, 90, 20]
    assert by_system["slow"].paired_ratio == 0.1  # per repeat 0.1, 0.3, 0.1

    out = tmp_path / "rows.json"
    write_json(rows, out)
    data = json.loads(out.read_text())
    assert set(data[0]) == {
        "suite",
        "scenario",
        "system",
        "metric",
        "unit",
        "median",
        "runs",
        "ratio_to_baseline",
        "paired_ratio",
    }
    table = format_table(rows, {"s1": "fast"})
    assert "1.00 (baseline)" in table and "0.10" in table


def test_fewer_than_three_repeats_is_refused() -> None:
    scenario = Scenario("s", "m", "u", "a", {"a": lambda: 1.0})
    with pytest.raises(ValueError, match="at least 3"):
        run_scenario("suite", scenario, repeat=2, progress=io.StringIO())


def test_baseline_must_be_one_of_the_systems() -> None:
    with pytest.raises(ValueError, match="baseline 'zz'"):
        Scenario("s", "m", "u", "zz", {"a": lambda: 1.0})


def test_warmup_rounds_run_every_system_and_are_not_recorded() -> None:
    values = {"a": sequence(1, 10, 20, 30), "b": sequence(2, 5, 5, 5)}
    calls: list[str] = []

    def run(name: str) -> float:
        calls.append(name)
        return next(values[name])

    scenario = Scenario("s", "m", "u", "a", {"a": lambda: run("a"), "b": lambda: run("b")})
    progress = io.StringIO()
    rows = {row.system: row for row in run_scenario("suite", scenario, repeat=3, progress=progress, warmup=1)}
    assert calls[:2] == ["a", "b"] and len(calls) == 8
    assert rows["a"].runs == [10, 20, 30] and rows["b"].runs == [5, 5, 5]
    assert "[warm-up 1/1] a: 1.0" in progress.getvalue()


def test_negative_warmup_is_refused() -> None:
    scenario = Scenario("s", "m", "u", "a", {"a": lambda: 1.0})
    with pytest.raises(ValueError, match="warmup must be 0 or more, got -1"):
        run_scenario("suite", scenario, repeat=3, progress=io.StringIO(), warmup=-1)
