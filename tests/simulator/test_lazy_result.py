"""A backtest's frames are built from its logs when first read, and its metrics never need them;
a finished run leaves no reference cycle holding its venue state."""

from __future__ import annotations

import gc
import pickle
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import random_walk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "golden"))
from golden_cases import CASES

from simulator import backtest
from simulator import engine as E
from simulator.metrics import trade_stats
from simulator.result import BacktestResult
from strategies import SmaCross
from tradetower.strategy import Strategy

FRAMES = ("orders", "fills", "trades", "positions")


@pytest.mark.parametrize("mode", ["compiled", "python"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_metrics_read_from_the_logs_match_the_frames(case: Any, mode: str) -> None:
    r = case.run(mode=mode)
    assert not any(name in r.__dict__ for name in FRAMES)  # nothing built yet
    assert r.logs is not None
    assert trade_stats(r.logs.trades) == trade_stats(r.trades)
    m = r.metrics
    assert m["n_orders"] == len(r.orders)
    assert m["n_fills"] == len(r.fills)
    assert m["n_liquidations"] == int(r.fills["liquidation"].sum())
    assert m["n_trades"] == int((~r.trades["is_open"]).sum())
    assert r.positions.index.equals(r.equity.index)
    # positions rebuilt when read agree with the exposure the metrics counted in the run
    held = (r.positions.to_numpy() != 0).any(axis=1)
    assert m["exposure_pct"] == np.count_nonzero(held) / len(held) * 100.0


def test_a_frame_is_built_once_and_can_be_replaced() -> None:
    r = backtest(SmaCross(fast=5, slow=20), random_walk(3_000, seed=4), fees=0.001)
    first = r.trades
    assert len(first) > 0
    assert r.trades is first
    mine = first.head(1)
    r.trades = mine
    assert r.trades is mine
    assert r.orders is r.orders
    assert "risk_events" not in r.__dict__  # no risk rules: an empty frame, built when read
    assert r.risk_events.empty
    assert r.risk_events is r.risk_events


def test_a_result_pickles_with_its_frames_unbuilt_and_builds_them_after() -> None:
    r = backtest(SmaCross(fast=5, slow=20), random_walk(3_000, seed=5), fees=0.001)
    back = pickle.loads(pickle.dumps(r))
    assert back.metrics == r.metrics
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(back, name), getattr(r, name))
    pd.testing.assert_series_equal(back.equity, r.equity)


def test_a_result_needs_each_frame_or_the_logs() -> None:
    idx = pd.date_range("2024-01-01", periods=2, freq="1min", tz="UTC")
    equity = pd.Series([1.0, 1.0], index=idx, name="equity")
    empty = pd.DataFrame()
    with pytest.raises(TypeError, match="positions"):
        BacktestResult("s", {}, ("X",), {}, equity=equity, orders=empty, fills=empty, trades=empty)
    whole = BacktestResult(
        "s", {}, ("X",), {}, equity=equity, orders=empty, fills=empty, trades=empty, positions=empty
    )
    assert whole.positions is empty
    assert whole.risk_events.empty
    assert "s" in repr(whole)


@pytest.fixture
def no_cyclic_gc() -> Iterator[None]:
    """Only reference counting frees objects while the test runs."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _KeepsContext(Strategy):
    """A plain-Python strategy that keeps its context past the run, as a user's might."""

    def on_start(self, ctx: Any) -> None:
        self.ctx = ctx
        ctx.place(1, 1.0)


@pytest.mark.parametrize("strategy", [SmaCross(fast=5, slow=20), _KeepsContext()])
def test_a_finished_run_frees_its_venue_state_without_the_cyclic_collector(
    strategy: Strategy, no_cyclic_gc: None
) -> None:
    run = E.prepare_run(
        strategy, random_walk(2_000, seed=6), None, None, None, "ASSET", None, {"fees": 0.001}
    )
    run.drive("auto")
    result = run.finish()
    driver = weakref.ref(run.driver)
    bars = run.driver.state.ohlcv
    probe = weakref.ref(bars.base if bars.base is not None else bars)
    del run, bars
    assert driver() is None  # the context holds its driver weakly: no cycle
    assert probe() is None  # so the bars and logs went with it
    assert np.isfinite(result.metrics["final_equity"])
    assert len(result.orders) == result.metrics["n_orders"]  # the result stands alone
