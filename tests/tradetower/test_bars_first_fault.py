"""With several faults in one frame, validation names the same one as checking each rule in
turn over the whole frame would: the first rule broken anywhere, at its first row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradetower.domain.bars import validate_bars
from tradetower.errors import DataValidationError

FAULTS = ("nan_open", "nan_volume", "repeat_time", "high_below_low", "open_above", "neg_volume")


def _expected(frame: pd.DataFrame) -> tuple[int, str]:
    """(row, column) of the fault reported first, rule by rule over the whole frame."""
    o, h, lo, c, v = (frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    for col, arr in (("open", o), ("high", h), ("low", lo), ("close", c), ("volume", v)):
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            return int(bad[0]), col
    ns = pd.DatetimeIndex(frame["timestamp"]).as_unit("ns").asi8
    steps = np.flatnonzero(np.diff(ns) <= 0)
    if steps.size:
        return int(steps[0]) + 1, "timestamp"
    rules = ((h < lo, "high"), (o > h, "open"), (o < lo, "open"), (c > h, "close"))
    for mask, col in (*rules, (c < lo, "close"), (v < 0, "volume")):
        if mask.any():
            return int(np.flatnonzero(mask)[0]), col
    raise AssertionError("no fault was planted")


@settings(max_examples=100, deadline=None)
@given(faults=st.lists(st.tuples(st.integers(1, 49), st.sampled_from(FAULTS)), min_size=1))
def test_the_first_rule_broken_is_named_at_its_first_row(faults: list[tuple[int, str]]) -> None:
    n = 50
    close = np.linspace(100.0, 110.0, n)
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC"),
            "open": close,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": np.full(n, 5.0),
        }
    )
    for row, fault in faults:
        if fault == "nan_open":
            frame.loc[row, "open"] = np.nan
        elif fault == "nan_volume":
            frame.loc[row, "volume"] = np.inf
        elif fault == "repeat_time":
            frame.loc[row, "timestamp"] = frame.loc[row - 1, "timestamp"]
        elif fault == "high_below_low":
            frame.loc[row, "high"] = frame.loc[row, "low"] - 0.5
        elif fault == "open_above":
            frame.loc[row, "open"] = frame.loc[row, "high"] + 0.5
        else:
            frame.loc[row, "volume"] = -1.0
    row, column = _expected(frame)
    with pytest.raises(DataValidationError) as info:
        validate_bars(frame)
    assert (info.value.row, info.value.column) == (row, column)
