"""How the pair runner reports a port whose output differs from its original's."""

from __future__ import annotations

from tests.migration.pairs import Run, difference


def test_same_output_and_success_is_no_difference() -> None:
    assert difference(Run("confluent", "p", 0, "a\nb\n", ""), Run("psc", "p", 0, "a\nb\n", "noise")) == ""


def test_a_differing_line_is_shown_as_a_diff() -> None:
    shown = difference(Run("confluent", "p", 0, "a\nb\n", ""), Run("psc", "p", 0, "a\nc\n", ""))
    assert "-b" in shown and "+c" in shown


def test_a_failing_port_is_reported_with_its_error_output() -> None:
    shown = difference(Run("confluent", "p", 0, "a\n", ""), Run("psc", "p", 1, "a\n", "Traceback\nKeyError: 'x'"))
    assert "failed (rc 1)" in shown and "KeyError: 'x'" in shown


def test_a_failing_original_is_reported_as_such() -> None:
    shown = difference(Run("confluent", "p", 2, "", "boom"), Run("psc", "p", 2, "", "boom"))
    assert "original failed" in shown
