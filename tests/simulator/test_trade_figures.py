"""The compiled trade metrics give the floats of the frame's numpy path, whatever the rows:
open lots (marked or not), closed rows in exit order or not (the unsorted take numpy), ties,
wins or losses only, none at all."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.metrics import trade_stats
from simulator.nb.trade_figures import trade_figures_nb
from simulator.trades import TradeRows


def rows_of(seed: int, n: int, sorted_exits: bool, open_share: float, sign: int) -> TradeRows:
    rng = np.random.default_rng(seed)
    entry = 1_600_000_000 * 10**9 + np.sort(rng.integers(0, 10**13, n))
    exit_ = entry + rng.integers(0, 10**12, n)
    if sorted_exits:
        exit_ = np.sort(exit_)
    is_open = rng.random(n) < open_share
    entry_price = rng.uniform(50, 150, n)
    exit_price = entry_price * (
        1 + sign * np.abs(rng.normal(0, 0.02, n)) if sign else 1 + rng.normal(0, 0.02, n)
    )
    exit_price[is_open & (rng.random(n) < 0.5)] = np.nan  # open lots without a mark
    fees = rng.uniform(0, 0.01, n) if sign == 0 else np.zeros(n)
    return TradeRows(
        inst=np.zeros(n, dtype=np.int64),
        symbols=["X"],
        long=rng.random(n) < 0.7 if sign == 0 else np.ones(n, dtype=bool),
        qty=rng.choice([0.5, 1.0, 1.0 / 3.0], n),
        entry_time=entry,
        exit_time=exit_,
        entry_bar=np.arange(n, dtype=np.int64),
        exit_bar=np.arange(n, dtype=np.int64) + 1,
        entry_price=entry_price,
        exit_price=exit_price,
        entry_fees=fees,
        exit_fees=fees[::-1].copy(),
        is_open=is_open,
    )


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 400),
    sorted_exits=st.booleans(),
    open_share=st.sampled_from([0.0, 0.1, 1.0]),
    sign=st.sampled_from([-1, 0, 1]),
)
def test_the_pass_gives_the_frames_figures(
    seed: int, n: int, sorted_exits: bool, open_share: float, sign: int
) -> None:
    rows = rows_of(seed, n, sorted_exits, open_share, sign)
    assert trade_stats(rows) == trade_stats(rows.frame())


@pytest.mark.nojit
def test_rows_out_of_exit_order_are_left_to_numpy() -> None:
    rows = rows_of(5, 50, sorted_exits=True, open_share=0.0, sign=0)
    args = (rows.long, rows.qty, rows.entry_price, rows.exit_price, rows.entry_fees,
            rows.exit_fees, rows.is_open, rows.entry_time, rows.exit_time)  # fmt: skip
    assert trade_figures_nb(*args)[0]
    rows.exit_time[[10, 11]] = rows.exit_time[[11, 10]]
    if rows.exit_time[10] != rows.exit_time[11]:
        assert not trade_figures_nb(*args)[0]
    assert trade_stats(rows) == trade_stats(rows.frame())
