"""Deterministic synthetic bars for the venue fakes: a seeded random walk, rounded the way a
venue quotes it, so the numbers a fake serves parse back to exactly the floats it holds."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

PRICE_COLUMNS = ("open", "high", "low", "close")


def seed_for(*parts: object) -> int:
    """A stable seed from names (``hash()`` of a str changes between runs)."""
    return zlib.crc32("|".join(map(str, parts)).encode())


def random_walk(
    ts_ms: np.ndarray, seed: int, *, start: float = 100.0, price_decimals: int = 2
) -> pd.DataFrame:
    """Bars at the given open times: ``ts`` (int64 ms) and float OHLCV, high/low consistent."""
    rng = np.random.default_rng(seed)
    n = len(ts_ms)
    close = np.round(start * np.exp(np.cumsum(rng.normal(0.0, 0.001, n))), price_decimals)
    open_ = np.round(np.r_[start, close[:-1]], price_decimals)
    wick = np.round(np.abs(rng.normal(0.0, 0.0005, (2, n))) * start, price_decimals)
    high = np.round(np.maximum(open_, close) + wick[0], price_decimals)
    low = np.round(np.minimum(open_, close) - wick[1], price_decimals)
    volume = np.round(rng.uniform(0.01, 5.0, n), 8)
    return pd.DataFrame(
        {
            "ts": np.asarray(ts_ms, dtype=np.int64),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )
