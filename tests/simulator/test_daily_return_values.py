"""compute_metrics' daily returns without resampling equal those of ``daily_returns``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.metrics import daily_return_values, daily_returns


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n=st.integers(1, 400),
    step_min=st.sampled_from([1, 5, 60, 240, 1440, 2 * 1440 + 7]),
    start_min=st.integers(0, 3 * 1440),
    jumps=st.lists(st.integers(0, 399), max_size=4),
    naive=st.booleans(),
    to_zero=st.booleans(),
)
def test_equal_to_the_resampled_returns(
    seed: int,
    n: int,
    step_min: int,
    start_min: int,
    jumps: list[int],
    naive: bool,
    to_zero: bool,
) -> None:
    rng = np.random.default_rng(seed)
    steps = np.full(n, step_min, dtype=np.int64)
    for j in jumps:  # days without bars
        if j < n:
            steps[j] += 3 * 1440
    minutes = start_min + np.cumsum(steps) - steps[0]
    index = pd.to_datetime("2024-03-01") + pd.to_timedelta(minutes, unit="min")
    if not naive:
        index = index.tz_localize("UTC")
    values = 1_000.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    if to_zero and n > 3:
        values[n // 2 :] = 0.0  # the account emptied: those returns are not finite
    equity = pd.Series(values, index=index)
    expected = daily_returns(equity).to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(daily_return_values(equity), expected)
    # a rising timeline without NaN: what a caller that knows it may skip the checks for
    np.testing.assert_array_equal(daily_return_values(equity, checked=True), expected)
    for unit in ("s", "ms", "us", "ns"):  # day numbers are taken in the index's own unit
        in_unit = pd.Series(values, index=pd.DatetimeIndex(index).as_unit(unit))
        np.testing.assert_array_equal(daily_return_values(in_unit), expected)


def test_unsorted_or_missing_values_fall_back_to_resampling() -> None:
    index = pd.DatetimeIndex(["2024-01-02", "2024-01-01", "2024-01-03"], tz="UTC")
    equity = pd.Series([100.0, 110.0, 121.0], index=index)
    np.testing.assert_array_equal(daily_return_values(equity), daily_returns(equity).to_numpy())
    gappy = pd.Series([100.0, np.nan, 121.0], index=index.sort_values())
    np.testing.assert_array_equal(daily_return_values(gappy), daily_returns(gappy).to_numpy())


@pytest.mark.nojit
def test_a_timeline_said_to_rise_that_does_not_is_never_overrun() -> None:
    """The day ends are sized by the days the timeline spans. A caller wrong about it rising
    gets figures of no meaning, but nothing is written past them (uncompiled, such a write
    raises IndexError)."""
    days = ["2024-01-01", "2024-01-03", "2024-01-02", "2024-01-04", "2024-01-01", "2024-01-04"]
    loop = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-02", "2024-01-02"]
    for stamps in (days, days[::-1], days * 3, loop):  # loop: ends on its first day, 0 days
        index = pd.DatetimeIndex(stamps, tz="UTC")
        equity = pd.Series(100.0 + np.arange(len(index)), index=index)
        got = daily_return_values(equity, checked=True)
        assert len(got) <= 4 and np.isfinite(got).all()


def test_a_backtest_checks_its_curve_only_when_its_bars_were_not_validated() -> None:
    """Validated bars (and slices of them) say their timeline rises, and a run over them skips
    that check; bars given as a bare MarketData do not, and are checked: same metrics."""
    from conftest import random_walk

    from simulator import backtest
    from simulator.research.walkforward import bars_slice
    from strategies import SmaCross
    from tradetower.domain.bars import MarketData

    frame = random_walk(4 * 1440, seed=5)
    validated = MarketData.coerce(frame)
    bare = MarketData(validated.symbols, validated.index, validated.ohlcv)
    assert validated.rising and not bare.rising
    assert bars_slice(validated, 10, 200).rising
    runs = [backtest(SmaCross(fast=10, slow=50), m, cash=10_000.0) for m in (validated, bare)]
    a, b = ({k: v for k, v in r.metrics.items() if k != "elapsed_ms"} for r in runs)
    assert a == b and a["n_return_days"] >= 3
