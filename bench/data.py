"""The benchmark's bars: one seeded generator for every peer.

A geometric random walk of one-minute bars with a weak pull back toward the start price (an
AR(1) walk in log price). The pull keeps the ±10% grid busy all year, as a ranging market
would, instead of letting the walk wander out of the range and leave the grid idle; set
``reversion=0`` for a pure random walk. Bars are built from the walk: each open is the previous
close, high and low reach a random distance beyond them, volume is uniform.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import pandas as pd

PandasT = TypeVar("PandasT", pd.Series, pd.DataFrame)

BARS_PER_YEAR = 525_600
SEED = 2024
VOL = 0.0004
"""Per-minute standard deviation of log returns (about 29% a year)."""
REVERSION = 3e-5
"""Per-minute pull of the log price toward its start (a half-life of about 16 days)."""


def _ar1(eps: np.ndarray, phi: float) -> np.ndarray:
    """x[t] = phi * x[t-1] + eps[t], x[-1] = 0, in vectorised blocks (exact up to rounding)."""
    n = eps.shape[0]
    out = np.empty(n)
    block = 4096
    if 0.0 < phi < 1.0:  # keep phi**block far from underflow
        block = max(1, min(block, int(200.0 / -np.log(phi))))
    carry = 0.0
    powers = phi ** np.arange(1, block + 1)
    for start in range(0, n, block):
        e = eps[start : start + block]
        m = e.shape[0]
        p = powers[:m]
        # x[j] = phi^(j+1) carry + sum_{s<=j} phi^(j-s) e[s] = p[j] (carry + sum e[s] / p[s])
        x = p * (carry + np.cumsum(e / p))
        out[start : start + m] = x
        carry = float(x[-1])
    return out


def random_walk_bars(
    n: int = BARS_PER_YEAR,
    *,
    seed: int = SEED,
    start: float = 100.0,
    vol: float = VOL,
    reversion: float = REVERSION,
) -> pd.DataFrame:
    """``n`` one-minute OHLCV bars (UTC index named ``timestamp``) from a seeded walk."""
    rng = np.random.default_rng(seed)
    log_price = _ar1(rng.normal(0.0, vol, n), 1.0 - reversion)
    close = start * np.exp(log_price)
    open_ = np.r_[start, close[:-1]]
    wick = np.abs(rng.normal(0.0, vol / 2, n))
    high = np.maximum(open_, close) * (1.0 + wick)
    low = np.minimum(open_, close) * (1.0 - wick)
    volume = rng.uniform(1.0, 10.0, n) * 1e3
    index = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def naive(obj: PandasT) -> PandasT:
    """The same values on a tz-naive index, for vectorbt.

    vectorbt 1.2 with pandas 3 turns a tz-aware index into an object array of Timestamps each
    time it wraps a result: seconds per call on 525,600 bars (about 1 s per wrap here), a cost
    that says nothing about its simulation. A tz-naive index gives it its best case.
    """
    index = pd.DatetimeIndex(obj.index)
    return obj.set_axis(index.tz_localize(None) if index.tz is not None else index, axis=0)
