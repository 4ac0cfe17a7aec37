"""The benchmark harness: interleaved repeats, medians, ratios to the baseline and the JSON rows."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks._harness import RunFn, Scenario, balanced_orders, format_table, run_scenario, write_json


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


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_each_system_follows_each_other_equally_often(n: int) -> None:
    orders = balanced_orders(n)
    assert all(sorted(order) == list(range(n)) for order in orders)
    assert [sum(order[0] == s for order in orders) for s in range(n)] == [len(orders) // n] * n, "each goes first"
    follows = Counter((order[i], order[i + 1]) for order in orders for i in range(n - 1))
    assert set(follows) == {(a, b) for a in range(n) for b in range(n) if a != b}
    assert len(set(follows.values())) <= 1, follows


def test_four_systems_do_not_always_follow_the_same_one() -> None:
    calls: list[str] = []

    def system(name: str) -> RunFn:
        def run() -> float:
            calls.append(name)
            return 1.0

        return run

    systems = {name: system(name) for name in "abcd"}
    run_scenario("suite", Scenario("s", "m", "u", "a", systems), repeat=4, progress=io.StringIO())
    before_a = {calls[i - 1] for i in range(1, len(calls)) if calls[i] == "a" and i % 4}
    assert before_a == {"b", "c", "d"}, calls


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
