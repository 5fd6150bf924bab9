"""End-to-end: both reference strategies run on real data, both driver paths agree."""

from __future__ import annotations

import pandas as pd
import pytest

from simulator import backtest
from strategies import SimpleGrid, SmaCross


@pytest.mark.nojit
def test_sma_cross_on_real_data_accounts_for_every_fill(eth_btc: pd.DataFrame) -> None:
    r = backtest(SmaCross(fast=10, slow=50), eth_btc, cash=10_000, fees=0.001)
    m = r.metrics
    assert m["bars"] == len(eth_btc)
    assert m["n_fills"] == len(r.fills) > 20
    # Every buy is filled at the open of the bar after its signal: never on the signal bar.
    placed = r.orders.set_index("order_id")["placed_bar"]
    assert (r.fills["bar"].to_numpy() > placed.loc[r.fills["order_id"]].to_numpy()).all()
    # Cash bookkeeping: final equity equals the cash flows of all fills (flat at the end).
    flows = -(r.fills["side"] * r.fills["qty"] * r.fills["price"]).sum() - r.fills["fee"].sum()
    assert m["final_equity"] == pytest.approx(10_000 + flows, rel=1e-12)
    assert m["fees_paid"] == pytest.approx(r.fills["fee"].sum(), rel=1e-12)
    assert r.equity.iloc[-1] == pytest.approx(m["final_equity"], rel=1e-12)


@pytest.mark.nojit
def test_grid_compiled_and_python_paths_give_identical_logs(eth_btc: pd.DataFrame) -> None:
    c = float(eth_btc["close"].iloc[0])

    def make() -> SimpleGrid:
        return SimpleGrid(low_price=c * 0.9, high_price=c * 1.1, grid_levels=20, investment=1_000)

    compiled = backtest(make(), eth_btc, fees=0.001, mode="compiled")
    python = backtest(make(), eth_btc, fees=0.001, mode="python")
    assert len(compiled.fills) > 100
    pd.testing.assert_frame_equal(compiled.orders, python.orders)
    pd.testing.assert_frame_equal(compiled.fills, python.fills)
    assert compiled.metrics["grid_cycles"] == python.metrics["grid_cycles"] > 50


@pytest.mark.nojit
def test_grid_cycle_earns_step_less_fees() -> None:
    from conftest import make_bars

    bars = make_bars(
        [(100, 100, 100, 100), (100, 100, 89, 90), (90, 101, 90, 100), (100, 100, 100, 100)]
    )
    r = backtest(
        SimpleGrid(low_price=80, high_price=120, grid_levels=5, investment=400), bars, fees=0.001
    )
    grid = r.fills[r.fills["order_id"] >= 0]  # the end-of-data close has no order
    buys = grid[(grid["side"] == 1) & (grid["price"] == 90)]
    sells = grid[(grid["side"] == -1) & (grid["price"] == 100)]
    assert len(buys) == 1 and len(sells) == 1
    qty = 100 / 90  # investment / cells at the buy level
    assert buys["qty"].iloc[0] == pytest.approx(qty)
    assert sells["qty"].iloc[0] == pytest.approx(qty)
    assert r.metrics["grid_cycles"] == 1
    realised = qty * 100 - qty * 90 - buys["fee"].iloc[0] - sells["fee"].iloc[0]
    assert realised == pytest.approx(qty * 10 - qty * 90 * 0.001 - qty * 100 * 0.001)
    assert buys["liquidity"].iloc[0] == "MAKER"
    assert int(r.fills["order_id"].iloc[-1]) == -2  # close at end
