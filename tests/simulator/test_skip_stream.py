"""The skip loop's stream scan (whole chunks of bars tested at once) stops at the same bar as
a bar-by-bar walk."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.nb.loop import SKIP_CHUNK, skip_rows_nb, skip_stream_nb
from tradetower.domain.bars import outward_float32

pytestmark = pytest.mark.nojit  # also checked as plain Python (NUMBA_DISABLE_JIT=1)


def _walk(lows: np.ndarray, highs: np.ndarray, lo: float, hi: float, t: int, limit: int) -> int:
    while t < limit and lows[t] > lo and highs[t] < hi:
        t += 1
    return t


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n=st.integers(1, 6 * SKIP_CHUNK),
    lo_q=st.floats(0.0, 0.5),
    hi_q=st.floats(0.5, 1.0),
    start=st.integers(0, 6 * SKIP_CHUNK),
    cut=st.integers(0, 6 * SKIP_CHUNK),
)
def test_the_chunked_scan_stops_where_a_bar_by_bar_walk_does(
    seed: int, n: int, lo_q: float, hi_q: float, start: int, cut: int
) -> None:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    lows = outward_float32(close * (1 - np.abs(rng.normal(0, 0.001, n))), down=True)
    highs = outward_float32(close * (1 + np.abs(rng.normal(0, 0.001, n))), down=False)
    lo = float(np.quantile(lows, lo_q)) if lo_q > 0 else -np.inf
    hi = float(np.quantile(highs, hi_q)) if hi_q < 1 else np.inf
    t = min(start, n)
    limit = max(t, n - cut)
    assert skip_stream_nb(lows, highs, lo, hi, t, limit) == _walk(lows, highs, lo, hi, t, limit)


def test_a_bound_equal_to_a_low_stops_the_scan_at_that_bar() -> None:
    lows = np.full(5 * SKIP_CHUNK, 10.0, dtype=np.float32)
    highs = np.full(5 * SKIP_CHUNK, 11.0, dtype=np.float32)
    lows[3 * SKIP_CHUNK + 5] = 9.5
    assert skip_stream_nb(lows, highs, 9.5, 12.0, 0, lows.shape[0]) == 3 * SKIP_CHUNK + 5
    assert skip_stream_nb(lows, highs, 9.0, 12.0, 0, lows.shape[0]) == lows.shape[0]
    assert skip_stream_nb(lows, highs, 9.0, 11.0, 7, lows.shape[0]) == 7


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(1, 300), every=st.integers(0, 60))
def test_the_row_walk_stops_at_a_reached_bound_or_a_signal(seed: int, n: int, every: int) -> None:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    ohlcv = np.zeros((n, 1, 5))
    ohlcv[:, 0, 1] = close * 1.001
    ohlcv[:, 0, 2] = close * 0.999
    signals = np.zeros((n, 1), dtype=np.int64)
    if every:
        signals[every - 1 :: every, 0] = 1
    lo, hi = 100.0 * 0.99, 100.0 * 1.01
    plain = _walk(ohlcv[:, 0, 2], ohlcv[:, 0, 1], lo, hi, 0, n)
    assert skip_rows_nb(ohlcv, signals[:0], lo, hi, 0, n) == plain
    first_signal = every - 1 if every and every <= n else n
    assert skip_rows_nb(ohlcv, signals, lo, hi, 0, n) == min(plain, first_signal)
