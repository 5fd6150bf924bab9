"""The longest run of wins or losses, taken from the gaps between the other trades, equals a
count kept trade by trade."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from simulator.metrics import _max_streak


def counted(mask: list[bool]) -> int:
    best = run = 0
    for hit in mask:
        run = run + 1 if hit else 0
        best = max(best, run)
    return best


@given(st.lists(st.booleans(), max_size=60))
def test_the_gap_count_equals_the_running_count(mask: list[bool]) -> None:
    assert _max_streak(np.array(mask, dtype=bool)) == counted(mask)


def test_no_trades_and_all_wins() -> None:
    assert _max_streak(np.zeros(0, dtype=bool)) == 0
    assert _max_streak(np.ones(5, dtype=bool)) == 5
