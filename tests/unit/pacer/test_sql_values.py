"""The integers the hot statements carry written into their text."""

from __future__ import annotations

import pytest

from pacer.storage.base import int_list, listed_ids, same_values


def test_rows_sharing_their_values_need_no_id_list_of_their_own() -> None:
    assert same_values(("dispatches",), [5, 6, 9], [(0,), (0,), (0,)]) == "dispatches = 0"
    assert same_values(("owner_epoch", "dispatches"), [5], [(3, 1)]) == "owner_epoch = 3 AND dispatches = 1"


def test_rows_with_different_values_are_grouped_by_them() -> None:
    assert same_values(("owner_epoch", "dispatches"), [5, 6, 7], [(3, 1), (3, 2), (3, 1)]) == (
        "((owner_epoch = 3 AND dispatches = 1 AND local_id + 0 IN (5, 7)) "
        "OR (owner_epoch = 3 AND dispatches = 2 AND local_id + 0 IN (6)))"
    )


def test_no_rows_match_nothing_and_only_integers_reach_the_text() -> None:
    assert same_values(("dispatches",), [], []) == "1 = 0"
    assert int_list([True, 2]) == "(1, 2)"
    with pytest.raises(ValueError):
        same_values(("dispatches",), [1], [("0); DROP TABLE x; --",)])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        same_values(("dispatches",), [1, 2], [(0,), ("1 OR 1=1",)])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        int_list(["1 OR 1=1"])  # type: ignore[list-item]


def test_ids_close_together_are_one_range_and_spread_ones_a_list() -> None:
    assert listed_ids([7, 5, 6, 9]) == "local_id BETWEEN 5 AND 9 AND local_id + 0 IN (7, 5, 6, 9)"
    assert listed_ids([3]) == "local_id BETWEEN 3 AND 3 AND local_id + 0 IN (3)"
    assert listed_ids([5, 10, 900]) == "local_id IN (5, 10, 900)"
