"""Trades read straight from the simulator's fill log equal those of the fills frame, open lots
and several instruments included."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import state as S
from simulator.trades import fills_to_trades, trades_of_log

SYMBOLS = ("BTC", "ETH", "SOL")


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_fills=st.integers(0, 40),
    k=st.integers(1, 3),
    unit=st.sampled_from(["s", "ms", "us", "ns"]),
)
def test_the_log_gives_the_frames_trades(seed: int, n_fills: int, k: int, unit: str) -> None:
    rng = np.random.default_rng(seed)
    n = 30
    index = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC", name="timestamp")
    index = index.as_unit(unit)
    log = np.zeros((n_fills, S.N_FILL))
    log[:, S.F_BAR] = np.sort(rng.integers(0, n, n_fills))
    log[:, S.F_INST] = rng.integers(0, k, n_fills)  # any instrument may come first
    log[:, S.F_SIDE] = rng.choice([-1.0, 1.0], n_fills)
    log[:, S.F_QTY] = rng.choice([0.5, 1.0, 1.5], n_fills)
    log[:, S.F_PRICE] = rng.uniform(90, 110, n_fills)
    log[:, S.F_FEE] = rng.uniform(0, 0.1, n_fills)
    symbols = SYMBOLS[:k]
    marks = {s: 100.0 + j for j, s in enumerate(symbols)}
    bars = log[:, S.F_BAR].astype(np.int64)
    fills = pd.DataFrame(
        {
            "timestamp": index[bars],
            "bar": bars,
            "instrument": pd.Series(
                np.asarray(symbols, dtype=object)[log[:, S.F_INST].astype(int)], dtype="str"
            ),
            "side": log[:, S.F_SIDE].astype(np.int64),
            "qty": log[:, S.F_QTY],
            "price": log[:, S.F_PRICE],
            "fee": log[:, S.F_FEE],
        }
    )
    expected = fills_to_trades(fills, marks, mark_time=index[-1], mark_bar=n - 1)
    got = trades_of_log(log, symbols, index, marks, n - 1)
    assert list(got.dtypes) == list(expected.dtypes)
    assert got.equals(expected)
