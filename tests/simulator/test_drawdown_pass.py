"""The compiled drawdown pass gives exactly the figures of the numpy formulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.metrics import drawdown_stats, drawdown_stats_numpy


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n=st.integers(1, 300),
    vol=st.sampled_from([0.0, 0.001, 0.05]),
    start=st.sampled_from([1_000.0, 0.0, -5.0]),
    flat_tail=st.integers(0, 30),
    whole=st.booleans(),
)
def test_the_compiled_pass_equals_numpy(
    seed: int, n: int, vol: float, start: float, flat_tail: int, whole: bool
) -> None:
    rng = np.random.default_rng(seed)
    values = start + np.cumsum(rng.normal(0, vol * 1_000.0, n))
    if whole:  # whole numbers: runs that come back exactly to their peak, and dip again
        values = np.round(values / 10.0)
    level_from = min(max(0, n - flat_tail), n - 1)
    values[level_from:] = values[level_from]  # a level stretch at the end
    index = pd.date_range("2024-01-01", periods=n, freq="7min", tz="UTC")
    times = index.as_unit("ns").asi8
    expected = drawdown_stats_numpy(values, times)
    for unit in ("s", "ms", "us", "ns"):  # spans are taken in the index's own unit
        assert drawdown_stats(pd.Series(values, index=index.as_unit(unit))) == expected
    # the numpy path, in a coarser unit, gives the same span in nanoseconds
    assert drawdown_stats_numpy(values, index.as_unit("s").asi8, 10**9) == expected


def test_a_drop_and_a_recovery() -> None:
    index = pd.date_range("2024-01-01", periods=6, freq="1D", tz="UTC")
    stats = drawdown_stats(pd.Series([100.0, 120.0, 90.0, 100.0, 121.0, 110.0], index=index))
    assert stats["max_drawdown_pct"] == (90.0 / 120.0 - 1.0) * 100.0
    assert stats["max_drawdown"] == -30.0
    assert stats["max_drawdown_duration_bars"] == 3  # peak at bar 1, back above at bar 4
    assert stats["max_drawdown_duration_days"] == 3.0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(1, 200), data=st.data())
def test_an_equity_with_nan_takes_the_numpy_formulation(
    seed: int, n: int, data: st.DataObject
) -> None:
    """The compiled pass stops at the first NaN, wherever it is (before, at or under a peak),
    and the figures are numpy's."""
    rng = np.random.default_rng(seed)
    values = 1_000.0 + np.cumsum(rng.normal(0, 5.0, n))
    holes = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3))
    values[holes] = np.nan
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    expected = drawdown_stats_numpy(values, index.as_unit("ns").asi8)
    got = drawdown_stats(pd.Series(values, index=index))
    assert got.keys() == expected.keys()
    for key, want in expected.items():
        assert got[key] == want or (want != want and got[key] != got[key]), key
