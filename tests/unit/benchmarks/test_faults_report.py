"""The fault benchmark's accounting: loss, duplicates, error episodes, reduction and the report table."""

from __future__ import annotations

import pytest

from benchmarks.faults import (
    EpisodeCounter,
    PhaseResult,
    describe_error,
    format_report,
    loss_and_duplicates,
    reduction_percent,
    totals,
)


def test_every_acknowledged_message_consumed_once_is_neither_lost_nor_duplicated() -> None:
    assert loss_and_duplicates({0, 1, 2}, [2, 0, 1]) == (0, 0)


def test_acknowledged_but_never_consumed_is_lost() -> None:
    assert loss_and_duplicates({0, 1, 2, 3}, [0, 2]) == (2, 0)


def test_each_extra_copy_counts_as_one_duplicate() -> None:
    assert loss_and_duplicates({0, 1}, [0, 1, 1, 1, 0]) == (0, 3)


def test_consuming_an_unacknowledged_message_is_not_a_loss_or_duplicate() -> None:
    # A send whose report failed may still have been written: reading it once is fine.
    assert loss_and_duplicates({0}, [0, 7]) == (0, 0)


def test_messages_destroyed_by_the_fault_are_excluded_from_loss() -> None:
    assert loss_and_duplicates({0, 1, 2, 3}, [0, 3], excluded={1}) == (1, 0)


@pytest.mark.parametrize(
    ("raw", "psc", "expected"),
    [(10, 2, 80.0), (10, 0, 100.0), (4, 4, 0.0), (4, 6, -50.0), (3, 1, 200 / 3)],
)
def test_reduction_percent(raw: int, psc: int, expected: float) -> None:
    assert reduction_percent(raw, psc) == pytest.approx(expected)


def test_reduction_is_undefined_when_raw_had_no_failures() -> None:
    assert reduction_percent(0, 0) is None
    assert reduction_percent(0, 3) is None


def test_a_burst_of_one_error_from_one_client_is_one_episode() -> None:
    now = [0.0]
    counter = EpisodeCounter(window_s=1.0, clock=lambda: now[0])
    for _ in range(500):
        counter.record("producer", "_MSG_TIMED_OUT")
        now[0] += 0.001
    counter.record("consumer", "_MSG_TIMED_OUT")  # another client: another episode
    counter.record("producer", "_TRANSPORT")  # another error: another episode
    now[0] += 5.0
    counter.record("producer", "_MSG_TIMED_OUT")  # much later: a new incident
    assert (counter.episodes, counter.events) == (4, 503)
    assert counter.by_name == {"_MSG_TIMED_OUT": 502, "_TRANSPORT": 1}


def test_describe_error_understands_kafka_errors_exceptions_and_psc_errors() -> None:
    from confluent_kafka import KafkaError, KafkaException

    from psc.errors import BackendError

    assert describe_error(KafkaError(KafkaError._MSG_TIMED_OUT)) == ("_MSG_TIMED_OUT", False)
    assert describe_error(KafkaException(KafkaError(KafkaError._FATAL, fatal=True))) == ("_FATAL", True)
    assert describe_error(BackendError("boom", name="_SSL", fatal=False)) == ("_SSL", False)
    assert describe_error(ValueError("x")) == ("ValueError", False)


def _results() -> list[PhaseResult]:
    return [
        PhaseResult("broker-restart", "raw", exceptions=6, restarts=2, lost=0, duplicated=10, acked=100),
        PhaseResult("broker-restart", "psc", exceptions=1, restarts=0, lost=0, duplicated=0, acked=100),
        PhaseResult("cert-rotation", "raw", exceptions=2, restarts=2, lost=3, duplicated=0, acked=50),
        PhaseResult("cert-rotation", "psc", exceptions=0, restarts=0, lost=0, duplicated=0, acked=50),
    ]


def test_totals_add_up_one_system() -> None:
    raw = totals(_results(), "raw")
    assert (raw.exceptions, raw.restarts, raw.failures, raw.lost, raw.duplicated, raw.acked) == (8, 4, 12, 3, 10, 150)


def test_report_has_a_row_per_phase_and_system_and_totals() -> None:
    report = format_report(_results())
    rows = [line.split() for line in report.splitlines() if line.split()[:1] in (["broker-restart"], ["total"])]
    assert ["broker-restart", "raw", "6", "2", "8", "0", "10", "100", "0"] in rows
    assert ["broker-restart", "psc", "1", "0", "1", "0", "0", "100", "0"] in rows
    assert ["total", "raw", "8", "4", "12", "3", "10", "150", "0"] in rows
    assert ["total", "psc", "1", "0", "1", "0", "0", "150", "0"] in rows


def test_report_states_reduction_per_phase_and_overall() -> None:
    report = format_report(_results())
    assert "failure reduction psc vs raw, broker-restart: 88% (8 -> 1)" in report
    assert "failure reduction psc vs raw, cert-rotation: 100% (4 -> 0)" in report
    assert "failure reduction psc vs raw, total: 92% (12 -> 1)" in report
    assert "goal (>= 80% fewer failures, zero loss with acks=all): met" in report


def test_goal_not_met_when_psc_loses_a_message() -> None:
    results = _results()
    results[1].lost = 1
    assert "goal (>= 80% fewer failures, zero loss with acks=all): NOT met" in format_report(results)


def test_goal_not_met_below_80_percent() -> None:
    results = _results()
    results[1].exceptions = 3  # 12 -> 3 is 75%
    assert "NOT met" in format_report(results)


def test_columns_line_up() -> None:
    report = format_report(_results()).splitlines()
    lines = [line for line in report if line and not line.startswith(("failure", "goal"))]
    assert len({len(line.rstrip()) for line in lines}) == 1
