"""``python -m benchmarks.singer_outage`` in short: a private broker stopped for 5 s under a running agent."""

from __future__ import annotations

from pathlib import Path

from benchmarks.singer_outage import run_outage


def test_broker_down_for_5_s_loses_nothing_and_keeps_memory_bounded(tmp_path: Path) -> None:
    outcome = run_outage(tmp_path, outage_s=5, before_s=1.5, after_s=1.5, rate=1000, max_inflight_bytes=4 << 20)

    assert outcome.written == 8000, outcome
    assert outcome.lost == 0, outcome
    assert outcome.duplicates_share_id, outcome  # a line sent twice is recognisable by its id
    assert outcome.lag_bytes.get("outage", 0) > 0, outcome  # the agent did notice the outage
    # The agent holds at most max_inflight_bytes of records in flight; its memory must not follow the backlog.
    assert outcome.rss_mb["outage"] < outcome.rss_mb["before"] + 4 * 4 + 80, outcome
