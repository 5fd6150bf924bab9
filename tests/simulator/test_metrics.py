"""Backtest metrics: hand-computed cases and a cross-check against empyrical."""

from __future__ import annotations

import json
import math

import empyrical
import numpy as np
import pandas as pd
import pytest

from simulator.metrics import (
    PERIODS_PER_YEAR,
    compute_metrics,
    daily_returns,
    drawdown_stats,
    trade_stats,
)
from simulator.trades import fills_to_trades

T0 = pd.Timestamp("2024-01-01", tz="UTC")
NO_TRADES = pd.DataFrame({"pnl": pd.Series(dtype=float), "is_open": pd.Series(dtype=bool)})


def daily_equity(values: list[float] | np.ndarray, start: pd.Timestamp = T0) -> pd.Series:
    return pd.Series(
        np.asarray(values, dtype=np.float64),
        index=pd.date_range(start, periods=len(values), freq="D"),
    )


def metrics(equity: pd.Series, **kw: object) -> dict[str, float | int | None]:
    kw.setdefault("in_position", np.zeros(len(equity), dtype=bool))
    kw.setdefault("fees_paid", 0.0)
    trades = kw.pop("trades", NO_TRADES)
    return compute_metrics(equity, trades, **kw)  # type: ignore[arg-type]


def test_hand_made_curve_return_and_drawdown() -> None:
    # peak 110 on day 1, trough 99 (−10 %), back above at 121 on day 4; then 115 < 121 to the end.
    eq = daily_equity([100.0, 110.0, 99.0, 104.5, 121.0, 115.0])
    m = metrics(eq)
    assert m["initial_equity"] == 100.0
    assert m["final_equity"] == 115.0
    assert m["total_return"] == pytest.approx(15.0)
    assert m["return_pct"] == pytest.approx(15.0)
    assert m["max_drawdown_pct"] == pytest.approx(-10.0)
    assert m["max_drawdown"] == pytest.approx(-11.0)  # 99 − 110 (the later dip is only −6)
    assert m["max_drawdown_duration_bars"] == 3  # bar 1 (peak) → bar 4 (recovered)
    assert m["max_drawdown_duration_days"] == pytest.approx(3.0)
    assert m["bars"] == 6
    # Daily bars: five day-over-day returns.
    r = np.array([110 / 100, 99 / 110, 104.5 / 99, 121 / 104.5, 115 / 121]) - 1.0
    assert m["n_return_days"] == 5
    rf = 0.05 / 365
    assert m["sharpe"] == pytest.approx((r.mean() - rf) / r.std(ddof=1) * math.sqrt(365))
    downside = math.sqrt(np.mean(np.minimum(0.0, r - rf) ** 2))
    assert m["sortino"] == pytest.approx((r.mean() - rf) / downside * math.sqrt(365))
    assert m["volatility_pct"] == pytest.approx(r.std(ddof=1) * math.sqrt(365) * 100)
    assert m["annualized_return_pct"] == pytest.approx(r.mean() * 365 * 100)
    cagr = 1.15 ** (365.25 / 5) - 1.0
    assert m["cagr_pct"] == pytest.approx(cagr * 100)
    assert m["calmar"] == pytest.approx(cagr / 0.10)


def test_unrecovered_drawdown_counts_to_the_end() -> None:
    eq = daily_equity([100.0, 120.0, 90.0, 100.0, 130.0, 125.0, 110.0, 118.0, 129.0])
    dd = drawdown_stats(eq)
    assert dd["max_drawdown_pct"] == pytest.approx(-25.0)
    assert dd["max_drawdown"] == pytest.approx(-30.0)
    # 120 → 130 takes 3 bars; the peak 130 on bar 4 is never regained: 4 bars to bar 8.
    assert dd["max_drawdown_duration_bars"] == 4
    assert dd["max_drawdown_duration_days"] == pytest.approx(4.0)


def test_drawdown_duration_days_follow_timestamps() -> None:
    idx = pd.DatetimeIndex(
        ["2024-01-01 00:00", "2024-01-01 06:00", "2024-01-03 18:00", "2024-01-04 00:00"], tz="UTC"
    )
    eq = pd.Series([100.0, 90.0, 95.0, 100.0], index=idx)
    dd = drawdown_stats(eq)
    assert dd["max_drawdown_duration_bars"] == 3
    assert dd["max_drawdown_duration_days"] == pytest.approx(3.0)


def test_no_drawdown_gives_zero_and_no_calmar() -> None:
    m = metrics(daily_equity([100.0, 101.0, 102.0, 103.0]))
    assert m["max_drawdown_pct"] == 0.0
    assert m["max_drawdown"] == 0.0
    assert m["max_drawdown_duration_bars"] == 0
    assert m["calmar"] is None


def test_intraday_daily_returns_start_from_first_bar() -> None:
    # Six-hourly bars over three days; the first day's return runs from the first bar close.
    idx = pd.date_range(T0 + pd.Timedelta(hours=6), periods=11, freq="6h")
    vals = [100.0, 102.0, 101.0, 105.0, 104.0, 103.0, 99.0, 100.0, 108.0, 110.0, 111.0]
    eq = pd.Series(vals, index=idx)
    r = daily_returns(eq)
    # Day 1 closes at bar 2 (18:00), day 2 at bar 6, day 3 at bar 10.
    assert r.to_numpy() == pytest.approx([101 / 100 - 1, 99 / 101 - 1, 111 / 99 - 1])
    assert list(r.index) == list(pd.date_range(T0, periods=3, freq="D"))


def test_first_day_with_a_single_bar_adds_no_return() -> None:
    idx = pd.DatetimeIndex(["2024-01-01 23:00", "2024-01-02 05:00", "2024-01-02 23:00"], tz="UTC")
    r = daily_returns(pd.Series([100.0, 103.0, 110.0], index=idx))
    assert r.to_numpy() == pytest.approx([0.1])


@pytest.mark.parametrize("periods", [PERIODS_PER_YEAR["crypto"], PERIODS_PER_YEAR["equity"]])
def test_against_empyrical_on_random_daily_equity(periods: int) -> None:
    rng = np.random.default_rng(20240601)
    drawn = rng.normal(0.0006, 0.02, size=400)
    equity = daily_equity(1000.0 * np.concatenate(([1.0], np.cumprod(1.0 + drawn))))
    rf = 0.04
    m = metrics(equity, periods_per_year=periods, risk_free=rf)
    rtol = 1e-9

    # empyrical is fed the day-over-day returns of the same equity curve.
    r = equity.pct_change().dropna().to_numpy()
    np.testing.assert_allclose(r, drawn, rtol=1e-9)
    np.testing.assert_allclose(daily_returns(equity).to_numpy(), r, rtol=1e-12, atol=1e-15)

    # Sharpe: empyrical subtracts a per-period risk-free rate; rf/P is ours.
    assert m["sharpe"] == pytest.approx(
        empyrical.sharpe_ratio(r, risk_free=rf / periods, annualization=periods), rel=rtol
    )
    # Sortino: empyrical's downside risk is sqrt(mean(min(0, r − required)²)), ours with
    # required = rf/P, and its numerator mean(r − required)·P over that risk·√P is ours.
    assert m["sortino"] == pytest.approx(
        empyrical.sortino_ratio(r, required_return=rf / periods, annualization=periods), rel=rtol
    )
    assert m["volatility_pct"] == pytest.approx(
        empyrical.annual_volatility(r, annualization=periods) * 100, rel=rtol
    )
    assert m["max_drawdown_pct"] == pytest.approx(empyrical.max_drawdown(r) * 100, rel=rtol)
    # CAGR: empyrical computes prod(1 + r)^(A/n) − 1 with n = number of returns. For one return
    # per calendar day n equals our calendar span in days, so with A = 365.25 the two formulas
    # are identical. Its Calmar is that CAGR over |max drawdown|, as ours (choice 14).
    assert m["cagr_pct"] == pytest.approx(empyrical.cagr(r, annualization=365.25) * 100, rel=rtol)
    assert m["calmar"] == pytest.approx(empyrical.calmar_ratio(r, annualization=365.25), rel=rtol)
    # empyrical has no arithmetic annual return; it is mean(r)·P by definition.
    assert m["annualized_return_pct"] == pytest.approx(r.mean() * periods * 100, rel=rtol)
    assert m["return_pct"] == pytest.approx((np.prod(1.0 + r) - 1.0) * 100, rel=rtol)


def test_trade_metrics_by_hand() -> None:
    pnl = [10.0, -5.0, 20.0, 30.0, 0.0, -2.0, -3.0, -1.0, 1.0]
    n = len(pnl)
    trades = pd.DataFrame(
        {
            "pnl": [*pnl, 50.0],
            "is_open": [False] * n + [True],
            "exit_time": [*pd.date_range(T0, periods=n, freq="h"), pd.NaT],
            "duration": [*(pd.Timedelta(minutes=30 * (i + 1)) for i in range(n)), pd.NaT],
        }
    )
    s = trade_stats(trades)
    assert s["n_trades"] == 9
    assert s["n_open_trades"] == 1
    assert s["win_rate_pct"] == pytest.approx(4 / 9 * 100)
    assert s["profit_factor"] == pytest.approx(61.0 / 11.0)
    assert s["profit_factor_infinite"] is False
    assert s["expectancy"] == pytest.approx(50.0 / 9)
    assert s["avg_win"] == pytest.approx(61.0 / 4)
    assert s["avg_loss"] == pytest.approx(-11.0 / 4)
    assert s["largest_win"] == 30.0
    assert s["largest_loss"] == -5.0
    assert s["max_consecutive_wins"] == 2
    assert s["max_consecutive_losses"] == 3
    assert s["avg_trade_duration_s"] == pytest.approx(np.mean([1800 * (i + 1) for i in range(n)]))


def test_profit_factor_none_with_flag_when_no_losses() -> None:
    trades = pd.DataFrame({"pnl": [3.0, 4.0, 0.0], "is_open": [False, False, False]})
    s = trade_stats(trades)
    assert s["profit_factor"] is None
    assert s["profit_factor_infinite"] is True
    assert s["win_rate_pct"] == pytest.approx(200 / 3)
    assert s["avg_loss"] is None
    none = trade_stats(NO_TRADES)
    assert none["n_trades"] == 0
    assert none["profit_factor"] is None
    assert none["profit_factor_infinite"] is False
    assert none["win_rate_pct"] is None
    assert none["expectancy"] is None
    only_losses = trade_stats(pd.DataFrame({"pnl": [-1.0], "is_open": [False]}))
    assert only_losses["profit_factor"] == 0.0


def test_exposure_buy_and_hold_alpha() -> None:
    eq = daily_equity([1000.0, 1010.0, 1030.0, 1020.0])
    m = metrics(
        eq,
        in_position=np.array([False, True, True, False]),
        gross_exposure=np.array([0.0, 505.0, 1030.0, 0.0]),
        first_open=50.0,
        last_close=51.0,
        fees_paid=1.25,
        n_orders=3,
        n_fills=4,
    )
    assert m["exposure_pct"] == 50.0
    assert m["avg_gross_exposure_pct"] == pytest.approx((0 + 50 + 100 + 0) / 4)
    assert m["buy_and_hold_pct"] == pytest.approx(2.0)
    assert m["alpha_pct"] == pytest.approx(2.0 - 2.0)
    assert (m["fees_paid"], m["n_orders"], m["n_fills"]) == (1.25, 3, 4)


def test_output_is_plain_json_without_nan() -> None:
    fills = pd.DataFrame(
        {
            "timestamp": pd.DatetimeIndex(
                [T0, T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=2)]
            ).as_unit("ns"),
            "bar": np.array([0, 1, 2], dtype=np.int64),
            "instrument": ["X", "X", "X"],
            "side": np.array([1, -1, 1], dtype=np.int64),
            "qty": [1.0, 1.0, 1.0],
            "price": [100.0, 110.0, 105.0],
            "fee": [0.1, 0.11, 0.105],
        }
    )
    trades = fills_to_trades(fills)  # the open lot has no mark: NaN pnl, excluded from stats
    eq = daily_equity([1000.0, 1009.79, 1009.685, 1009.685])
    m = compute_metrics(
        eq, trades, in_position=np.array([True, False, True, True]), fees_paid=0.315
    )
    assert m["n_trades"] == 1
    assert m["n_open_trades"] == 1
    assert m["profit_factor"] is None
    assert m["profit_factor_infinite"] is True
    json.dumps(m, allow_nan=False)
    assert all(type(v) in (float, int, bool, type(None)) for v in m.values())

    flat = metrics(daily_equity([100.0, 100.0, 100.0]))
    json.dumps(flat, allow_nan=False)
    assert flat["sharpe"] is None  # zero volatility
    # r = 0 every day: the downside deviation is rf/P, so Sortino = (0 − rf/P)/(rf/P)·√P.
    assert flat["sortino"] == pytest.approx(-math.sqrt(365))
    assert flat["calmar"] is None
    assert flat["cagr_pct"] == 0.0

    single = metrics(daily_equity([100.0]))
    json.dumps(single, allow_nan=False)
    assert single["sharpe"] is None
    assert single["cagr_pct"] is None
    assert single["volatility_pct"] is None
