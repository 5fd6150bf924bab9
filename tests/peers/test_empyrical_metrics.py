"""Our risk metrics on real runs against empyrical's, fed the same returns.

simulator/metrics.py's conventions: daily returns are the equity's last value of each UTC day
over the day before, the first day measured from the starting equity (dropped when that day
holds a single bar); ``P`` periods a year (365 crypto, 252 equities); the risk-free rate ``rf``
a year enters as ``rf/P`` a day. The drawdown is taken on the bar equity, not the daily one.
Here the daily returns are rebuilt from those words, independently of our code.
"""

from __future__ import annotations

from collections.abc import Callable

import empyrical
import numpy as np
import pandas as pd
import pytest
from backtesting.test import GOOG
from conftest import real_file

from simulator import backtest
from simulator.result import BacktestResult
from strategies import SmaCross
from tradetower.domain import AssetClass, Instrument

RTOL = 1e-9


def daily_returns(equity: pd.Series) -> np.ndarray:
    e0 = float(equity.iloc[0])
    daily = equity.resample("1D").last().dropna()
    first_day_bars = int((equity.index.floor("D") == equity.index[0].floor("D")).sum())
    levels = np.r_[e0, daily.to_numpy()] if first_day_bars > 1 else daily.to_numpy()
    return levels[1:] / levels[:-1] - 1.0


def crypto_run() -> tuple[BacktestResult, int]:
    bars = pd.read_parquet(real_file("binance_ETH-BTC_5m_2018-01.parquet"))
    return backtest(SmaCross(fast=10, slow=50), bars, cash=10_000, fees=0.001), 365


def equity_run() -> tuple[BacktestResult, int]:
    inst = Instrument(symbol="GOOG", asset_class=AssetClass.US_EQUITY, taker_fee=0.001)
    return backtest(SmaCross(fast=10, slow=20), GOOG, instrument=inst, cash=10_000), 252


@pytest.mark.parametrize("run", [crypto_run, equity_run], ids=["ETH-BTC 5m", "GOOG 1d"])
def test_sharpe_sortino_drawdown_match_empyrical(
    run: Callable[[], tuple[BacktestResult, int]],
) -> None:
    result, periods = run()
    m = result.metrics
    assert m["periods_per_year"] == periods
    rf = m["risk_free"]
    assert rf == 0.05

    r = daily_returns(result.equity)
    assert len(r) == m["n_return_days"] >= 15
    assert np.std(r) > 0

    assert m["sharpe"] == pytest.approx(
        empyrical.sharpe_ratio(r, risk_free=rf / periods, annualization=periods), rel=RTOL
    )
    assert m["sortino"] == pytest.approx(
        empyrical.sortino_ratio(r, required_return=rf / periods, annualization=periods),
        rel=RTOL,
    )
    assert m["volatility_pct"] == pytest.approx(
        empyrical.annual_volatility(r, annualization=periods) * 100, rel=RTOL
    )
    bar_returns = result.equity.pct_change().dropna().to_numpy()
    assert m["max_drawdown_pct"] < 0
    assert m["max_drawdown_pct"] == pytest.approx(
        empyrical.max_drawdown(bar_returns) * 100, rel=RTOL
    )
