"""The skip loop's stream scan (whole chunks of bars tested at once) stops at the same bar as
a bar-by-bar walk."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import state as S
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


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n=st.integers(1, 300),
    every=st.integers(0, 60),
    due_q=st.one_of(st.none(), st.floats(-0.1, 1.1)),
    start=st.integers(0, 300),
)
def test_the_row_walk_stops_at_a_reached_bound_a_signal_or_a_due_timer(
    seed: int, n: int, every: int, due_q: float | None, start: int
) -> None:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    ohlcv = np.zeros((n, 1, 5))
    ohlcv[:, 0, 1] = close * 1.001
    ohlcv[:, 0, 2] = close * 0.999
    signals = np.zeros((n, 1), dtype=np.int64)
    if every:
        signals[every - 1 :: every, 0] = 1
    times = np.cumsum(rng.integers(1, 4, n)) * 60_000
    due = S.NO_TIMER if due_q is None else int(times[0] + due_q * (times[-1] - times[0]))
    # The bar holding the due time (the one whose end passes it), as a search finds it.
    timer_bar = n if due_q is None else max(int(np.searchsorted(times, due, side="right")) - 1, 0)
    lo, hi = 100.0 * 0.99, 100.0 * 1.01
    t = min(start, n - 1)
    plain = _walk(ohlcv[:, 0, 2], ohlcv[:, 0, 1], lo, hi, t, n)
    # The last bar is never skipped here: its end is not among the times.
    expected = max(t, min(plain, timer_bar, n - 1))
    assert skip_rows_nb(ohlcv, signals[:0], times, due, lo, hi, t, n) == expected
    first_signal = next((b for b in range(t, n) if signals[b, 0] != 0), n)
    assert skip_rows_nb(ohlcv, signals, times, due, lo, hi, t, n) == max(
        t, min(expected, first_signal)
    )
    assert skip_rows_nb(ohlcv, signals, times, due, lo, hi, t, t) == t


def test_a_timer_due_at_a_bar_end_lets_that_bar_pass_and_stops_at_the_next() -> None:
    ohlcv = np.zeros((5, 1, 5))
    ohlcv[:, 0, 1:4] = 100.0
    times = np.arange(5, dtype=np.int64) * 60_000
    none = np.zeros((0, 1), dtype=np.int64)
    # A bar whose end (the next bar's time) is at or before the due time cannot hold it: with
    # the timer due at 120,000, bar 1 (ending then) passes and bar 2 holds it.
    assert skip_rows_nb(ohlcv, none, times, 120_000, 50.0, 150.0, 0, 5) == 2
    assert skip_rows_nb(ohlcv, none, times, 119_999, 50.0, 150.0, 0, 5) == 1
    assert skip_rows_nb(ohlcv, none, times, S.NO_TIMER, 50.0, 150.0, 0, 5) == 4
