"""The event loop's jump to the next signal (one instrument, nothing resting, no timer) stops
where a bar-by-bar walk does, whatever order it is asked in, and a run that uses it equals a
run that skips no bar at all."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import random_walk
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import backtest
from simulator import state as S
from simulator.config import SimConfig
from simulator.engine import instrument_table, sim_params
from simulator.nb.loop import next_signal_nb
from simulator.nb.signal_bars import CHUNK, signal_bars_nb
from strategies import SmaCross
from tradetower.domain.instrument import Instrument
from tradetower.risk import RiskConfig
from tradetower.strategy import Strategy

pytestmark = pytest.mark.nojit  # also checked as plain Python (NUMBA_DISABLE_JIT=1)


def _state(signals: np.ndarray) -> S.SimState:
    n = signals.shape[0]
    ohlcv = np.full((n, 1, 5), 100.0)
    times = np.arange(n, dtype=np.int64) * 60_000
    inst = instrument_table({"X": Instrument(symbol="X")})
    return S.allocate(ohlcv, times, inst, sim_params(SimConfig(), False), signals=signals)


def _cursor_at(state: S.SimState, t: int) -> bool:
    """The cursor names the first signal bar at or after t (or the end)."""
    bars = state.sig_bars
    cur = int(state.counters[S.C_SIG_CURSOR])
    return 0 <= cur < bars.shape[0] and bars[cur] >= t and (cur == 0 or bars[cur - 1] < t)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n=st.integers(1, 200),
    density=st.floats(0.0, 0.5),
    asks=st.lists(st.tuples(st.integers(0, 220), st.integers(0, 220)), min_size=1, max_size=40),
)
def test_the_jump_stops_at_the_first_signal_from_any_bar_asked(
    seed: int, n: int, density: float, asks: list[tuple[int, int]]
) -> None:
    rng = np.random.default_rng(seed)
    codes = np.where(rng.random(n) < density, rng.choice([-1, 1, 7], n), 0).astype(np.int64)
    state = _state(codes[:, None])
    assert state.counters[S.C_SIG_CURSOR] == 0
    # Asked in any order, repeated, past the end: the cursor moves either way, and a bar
    # holding a signal is its own answer.
    for t, last in asks:
        t = min(t, n)
        last = min(last, n - 1)
        first = next((b for b in range(t, n) if codes[b] != 0), n)
        expected = t if t >= last else min(first, last)
        assert next_signal_nb(state, t, last) == expected
        if t < last:
            assert _cursor_at(state, t)


def test_a_walk_in_order_moves_the_cursor_one_signal_a_jump() -> None:
    codes = np.zeros(100, dtype=np.int64)
    codes[[10, 40, 41, 90]] = 1
    state = _state(codes[:, None])
    assert list(state.sig_bars) == [10, 40, 41, 90, 100]
    assert next_signal_nb(state, 0, 99) == 10
    assert state.counters[S.C_SIG_CURSOR] == 0
    assert next_signal_nb(state, 10, 99) == 10  # the loop asks again at the bar it stopped at
    assert next_signal_nb(state, 12, 99) == 40
    assert state.counters[S.C_SIG_CURSOR] == 1
    assert next_signal_nb(state, 41, 99) == 41
    assert next_signal_nb(state, 42, 99) == 90
    assert next_signal_nb(state, 91, 99) == 99  # none left: the last bar the walk may reach
    assert state.counters[S.C_SIG_CURSOR] == 4
    assert next_signal_nb(state, 50, 60) == 60  # a limit before the signal
    assert next_signal_nb(state, 11, 99) == 40  # and back
    assert state.counters[S.C_SIG_CURSOR] == 1


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    n=st.integers(0, 5 * CHUNK + 3),
    k=st.sampled_from([1, 3]),
    density=st.floats(0.0, 0.6),
)
def test_signal_bars_are_the_bars_holding_any_code_then_the_end(
    seed: int, n: int, k: int, density: float
) -> None:
    rng = np.random.default_rng(seed)
    codes = np.where(rng.random((n, k)) < density, rng.choice([-2, -1, 1, 9], (n, k)), 0)
    expected = [*np.flatnonzero(codes.any(axis=1)), n]
    assert list(signal_bars_nb(codes.astype(np.int64))) == expected


@pytest.mark.parametrize("gap", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 3 * CHUNK])
def test_signal_bars_find_a_code_at_any_place_in_a_chunk(gap: int) -> None:
    codes = np.zeros((200, 1), dtype=np.int64)
    for start in range(0, 2 * CHUNK):
        codes[:] = 0
        codes[start, 0] = 5
        codes[start + gap, 0] = -3
        assert list(signal_bars_nb(codes)) == [*sorted({start, start + gap}), 200]
    assert list(signal_bars_nb(np.zeros((200, 1), dtype=np.int64))) == [200]


# A drawdown limit no run here reaches: the risk monitor then watches every bar's equity, so the
# loop skips nothing and every bar is looked at one by one.
WATCH_EVERY_BAR = RiskConfig(
    max_drawdown_pct=99.0, max_orders_per_minute=100_000, min_order_spacing_ms=0
)


@pytest.mark.parametrize("strategy", [SmaCross(fast=5, slow=20), SmaCross(fast=3, slow=8)])
def test_a_run_that_jumps_equals_a_run_that_skips_nothing(strategy: Strategy) -> None:
    bars = random_walk(4_000, seed=3)
    jumped = backtest(strategy, bars, fees=0.001, mode="compiled")
    walked = backtest(strategy, bars, fees=0.001, mode="compiled", risk=WATCH_EVERY_BAR)
    assert walked.risk_events.empty  # the limit never tripped: only the walk differs
    assert jumped.metrics["n_orders"] > 100
    pd.testing.assert_frame_equal(jumped.orders, walked.orders)
    pd.testing.assert_frame_equal(jumped.fills, walked.fills)
    pd.testing.assert_frame_equal(jumped.trades, walked.trades)
    pd.testing.assert_series_equal(jumped.equity, walked.equity)
