"""A sweep's one-instrument metric reduction (flat stretches settled at once, held stretches
tested a chunk of bars at a time) gives exactly the figures of the general bar-by-bar one."""

from __future__ import annotations

import numpy as np
from conftest import random_walk
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.config import SimConfig
from simulator.engine import instrument_table, sim_params
from simulator.nb.sweep import METRIC_NAMES, N_METRICS, run_one_nb
from strategies import SimpleGrid
from tradetower.domain.bars import MarketData, outward_float32
from tradetower.domain.instrument import Instrument


def _metrics(
    ohlcv: np.ndarray, time_ms: np.ndarray, strat: SimpleGrid, close_px: np.ndarray
) -> np.ndarray:
    """One run of the sweep's serial path over bar times in milliseconds (scale 1/1)."""
    cfg = SimConfig.parse({"fees": 0.001, "cash": 10_000.0})
    inst = Instrument(symbol="ASSET", maker_fee=0.001, taker_fee=0.001)
    lows = outward_float32(ohlcv[:, 0, 2], down=True)
    highs = outward_float32(ohlcv[:, 0, 1], down=False)
    out = np.full(N_METRICS, np.nan)
    run_one_nb(
        ohlcv,
        time_ms,
        np.ones(2, dtype=np.int64),
        instrument_table({"ASSET": inst}),
        sim_params(cfg, wants_bars=False),
        type(strat).kernel,
        np.asarray(strat.params, dtype=np.float64).copy(),
        strat.state.copy(),
        64,
        False,
        np.zeros(0, dtype=np.int64),
        close_px,
        lows,
        highs,
        out,
        type(strat).event_mask(),
    )
    return out


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    levels=st.integers(3, 30),
    width=st.floats(0.01, 0.2),
    gaps=st.lists(st.tuples(st.integers(1, 2_999), st.integers(1, 80)), max_size=8),
    tail=st.integers(0, 70),
)
def test_chunked_reduction_equals_the_bar_by_bar_one(
    seed: int, levels: int, width: float, gaps: list[tuple[int, int]], tail: int
) -> None:
    market = MarketData.coerce(random_walk(3_000, seed=seed, vol=0.003), "ASSET")
    ohlcv = market.ohlcv.copy(order="F")  # the engine's layout (MarketData)
    for start, length in gaps:  # stretches the instrument did not trade: closes carry forward
        ohlcv[start : start + length, 0, :] = np.nan
    ohlcv[ohlcv.shape[0] - tail :, 0, :] = np.nan  # the data may end in such a stretch
    c0 = float(market.ohlcv[0, 0, 3])
    strat = SimpleGrid(
        low_price=c0 * (1 - width),
        high_price=c0 * (1 + width),
        grid_levels=levels,
        investment=1_000.0,
    )
    strat.prepare(market)
    chunked = _metrics(ohlcv, market.time_ms, strat, np.ascontiguousarray(ohlcv[:, 0, 3]))
    general = _metrics(ohlcv, market.time_ms, strat, np.zeros(0))
    np.testing.assert_array_equal(chunked, general, err_msg=str(general))


def test_a_run_that_never_trades_keeps_its_cash_and_has_no_drawdown() -> None:
    market = MarketData.coerce(random_walk(2_000, seed=3), "ASSET")
    c0 = float(market.ohlcv[0, 0, 3])
    # The grid sits far below the prices: no order ever fills.
    strat = SimpleGrid(low_price=c0 * 0.2, high_price=c0 * 0.3, grid_levels=5, investment=500.0)
    strat.prepare(market)
    out = _metrics(market.ohlcv, market.time_ms, strat, np.ascontiguousarray(market.ohlcv[:, 0, 3]))
    row = dict(zip(METRIC_NAMES, out, strict=True))
    assert row["n_fills"] == 0
    assert row["final_equity"] == 10_000.0
    assert row["max_drawdown_pct"] == 0.0
    assert row["exposure_pct"] == 0.0
