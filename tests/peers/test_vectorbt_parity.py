"""Our accounting against vectorbt's: replay every fill through ``Portfolio.from_orders``.

Each run's fill log (the end-of-data close, order id -2, included) is handed to vectorbt as
orders at the same bars, sizes and prices with the same fees; vectorbt's cash, assets and value
must then equal our cash, position and equity at every bar.

``from_orders`` takes one order per bar and column. A SmaCross reversal fills two market orders
at the same open (close the old side, open the new one), so the fills of one bar are merged into
one net order: size ``Σ side·qty``, price ``Σ side·qty·price / Σ side·qty`` (both fills share the
open, so this is that open), and the summed fees passed as ``fixed_fees`` (fees as money, not a
rate). The end-of-bar cash and position, which is all a bar-close series can show, are then the
same as after the two fills. A bar whose fills net to zero could not be expressed this way; the
grid below is therefore run with levels wide enough that no two of its fills share a bar, and its
fills replay one to one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import vectorbt as vbt
from conftest import real_file

from simulator import backtest
from simulator.result import BacktestResult
from strategies import SimpleGrid, SmaCross
from tradetower.domain import Instrument

ETH_BTC = "binance_ETH-BTC_5m_2018-01.parquet"
ALT_BTC = "binance_ALT-BTC_1m_2017-11.parquet"
CASH = 10_000.0
RTOL = 1e-9


def _bars(name: str) -> pd.DataFrame:
    return pd.read_parquet(real_file(name))


def _close(result: BacktestResult, bars: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        bars["close"].to_numpy(dtype=float), index=result.equity.index, columns=["ASSET"]
    )


def replay_orders(result: BacktestResult, close: pd.DataFrame) -> dict[str, np.ndarray]:
    """``from_orders`` inputs from the fill log: one net order per (bar, instrument)."""
    f = result.fills
    cols = [close.columns.get_loc(s) for s in f["instrument"]]
    per_bar = (
        f.assign(
            col=cols,
            signed=f["side"] * f["qty"],
            notional=f["side"] * f["qty"] * f["price"],
        )
        .groupby(["bar", "col"], sort=True)
        .agg(
            size=("signed", "sum"),
            notional=("notional", "sum"),
            fee=("fee", "sum"),
            n=("qty", "size"),
            price=("price", "first"),
        )
    )
    # A bar whose fills cancel out (a buy and a sell of the same quantity) has no net order.
    assert (per_bar["size"].abs() > 1e-12 * f["qty"].max()).all()
    net_price = np.where(per_bar["n"] == 1, per_bar["price"], per_bar["notional"] / per_bar["size"])
    assert (net_price > 0).all()
    shape = close.shape
    bars = per_bar.index.get_level_values("bar").to_numpy()
    col = per_bar.index.get_level_values("col").to_numpy()
    size = np.zeros(shape)
    price = np.full(shape, np.nan)
    fixed_fees = np.zeros(shape)
    size[bars, col] = per_bar["size"].to_numpy()
    price[bars, col] = net_price
    fixed_fees[bars, col] = per_bar["fee"].to_numpy()
    return {"size": size, "price": price, "fixed_fees": fixed_fees}


def our_cash(result: BacktestResult, cash0: float) -> np.ndarray:
    """Cash at each bar close, rebuilt from the fills (no funding in these runs)."""
    f = result.fills
    flow = np.zeros(len(result.equity))
    np.add.at(
        flow,
        f["bar"].to_numpy(),
        -(f["side"] * f["qty"] * f["price"]).to_numpy() - f["fee"].to_numpy(),
    )
    return cash0 + np.cumsum(flow)


def assert_vectorbt_agrees(result: BacktestResult, bars: pd.DataFrame, cash0: float) -> Any:
    close = _close(result, bars)
    orders = replay_orders(result, close)
    pf = vbt.Portfolio.from_orders(
        close,
        size=orders["size"],
        price=orders["price"],
        fees=0.0,
        fixed_fees=orders["fixed_fees"],
        init_cash=cash0,
        cash_sharing=True,
        group_by=True,
        freq=None,
    )
    # Every net order went through whole: nothing capped for cash, nothing rejected.
    rec = pf.orders.records
    n_orders = int((orders["size"] != 0).sum())
    assert len(rec) == n_orders
    want = orders["size"][orders["size"] != 0]
    np.testing.assert_allclose(np.where(rec["side"] == 0, 1, -1) * rec["size"], want, rtol=RTOL)

    pos = result.positions.to_numpy()[:, 0]
    scale = float(np.abs(pos).max())
    np.testing.assert_allclose(
        pf.assets().to_numpy()[:, 0], pos, rtol=RTOL, atol=RTOL * scale, err_msg="assets"
    )
    np.testing.assert_allclose(
        pf.cash().to_numpy(), our_cash(result, cash0), rtol=RTOL, atol=RTOL * cash0, err_msg="cash"
    )
    np.testing.assert_allclose(
        pf.value().to_numpy(), result.equity.to_numpy(), rtol=RTOL, err_msg="value"
    )
    # Our equity is our own cash plus position at the close: the same identity vbt uses.
    np.testing.assert_allclose(
        result.equity.to_numpy(),
        our_cash(result, cash0) + pos * close.to_numpy()[:, 0],
        rtol=RTOL,
    )
    assert float(pf.orders.fees.sum()) == pytest.approx(result.metrics["fees_paid"], rel=RTOL)
    return pf


@pytest.mark.parametrize(("name", "closing_fills"), [(ETH_BTC, 0), (ALT_BTC, 1)])
def test_sma_cross_long_only_matches_vectorbt(name: str, closing_fills: int) -> None:
    bars = _bars(name)
    r = backtest(SmaCross(fast=10, slow=50), bars, cash=CASH, fees=0.001)
    f = r.fills
    assert len(f) > 50
    assert not f.duplicated(["bar", "instrument"]).any()  # one fill per bar: a 1:1 replay
    # A position still open at the end is closed at the last close (order id -2), replayed too.
    closing = f[f["order_id"] == -2]
    assert len(closing) == closing_fills
    assert (closing["bar"] == len(bars) - 1).all()
    assert r.positions.iloc[-1, 0] == 0.0
    assert_vectorbt_agrees(r, bars, CASH)


@pytest.mark.parametrize("name", [ETH_BTC, ALT_BTC])
def test_sma_cross_reverse_on_margin_matches_vectorbt(name: str) -> None:
    bars = _bars(name)
    inst = Instrument(symbol="ASSET", margin=True)
    r = backtest(
        SmaCross(fast=10, slow=50, reverse=True), bars, instrument=inst, cash=CASH, fees=0.001
    )
    f = r.fills
    assert (r.positions.to_numpy() < 0).any()  # it does go short
    # Reversals: the close and the new entry fill in the same bar, at the same open.
    same_bar = f[f.duplicated(["bar"], keep=False)]
    assert len(same_bar) > 50
    assert (same_bar.groupby("bar")["price"].nunique() == 1).all()
    assert (same_bar.groupby("bar")["side"].nunique() == 1).all()
    assert f["order_id"].iloc[-1] == -2  # the closing fill at the last close is replayed too
    assert_vectorbt_agrees(r, bars, CASH)


@pytest.mark.parametrize(
    ("name", "low", "high", "levels"),
    [(ETH_BTC, 0.9, 1.1, 11), (ALT_BTC, 0.8, 1.2, 21)],
)
def test_simple_grid_matches_vectorbt(name: str, low: float, high: float, levels: int) -> None:
    bars = _bars(name)
    c0 = float(bars["close"].iloc[0])
    grid = SimpleGrid(low_price=c0 * low, high_price=c0 * high, grid_levels=levels, investment=1.0)
    r = backtest(grid, bars, cash=2.0, fees=0.001)
    f = r.fills
    assert len(f) > 60
    assert r.metrics["grid_cycles"] > 30
    assert (f["liquidity"] == "MAKER").sum() > 50  # resting limits at the grid's prices
    # These levels are wide enough that no bar fills two orders: the replay is one to one.
    assert not f.duplicated(["bar", "instrument"]).any()
    assert_vectorbt_agrees(r, bars, 2.0)


def test_to_vectorbt_bridge_matches_our_equity() -> None:
    bars = _bars(ETH_BTC)
    r = backtest(SmaCross(fast=10, slow=50), bars, cash=CASH, fees=0.001)
    pf = r.to_vectorbt(_close(r, bars)["ASSET"])
    np.testing.assert_allclose(pf.value().to_numpy(), r.equity.to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(
        pf.assets().to_numpy()[:, 0], r.positions.to_numpy()[:, 0], rtol=RTOL, atol=1e-6
    )
