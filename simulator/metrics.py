"""Backtest performance metrics (PLATFORM.md §4 "Metrics", §7 choice 14).

Conventions, in the order ``compute_metrics`` reports them:

* ``E_t`` is the equity at each bar close; ``E_0 = equity.iloc[0]``, ``E_T = equity.iloc[-1]``.
* Daily returns ``r``: the equity is resampled to UTC days (last value of each day; days without
  bars are skipped) and the starting equity ``E_0`` is prepended, so the first day's return is
  measured from the first bar close to the first day's close. When the first day holds only the
  first bar that return is identically 0 over no time at all, so it is dropped (with daily bars
  the returns are then simply the day-over-day changes). Non-finite returns (after the equity
  reaches 0) are dropped.
* ``P`` = ``periods_per_year`` (``PERIODS_PER_YEAR``: 365 crypto, 252 equities and futures).
* Sharpe ``(mean(r) − rf/P) / std(r) · √P`` with ``ddof=1``; Sortino ``(mean(r) − rf/P) /
  √mean(min(0, r − rf/P)²) · √P``; volatility ``std(r)·√P``; annualised return ``mean(r)·P``.
* CAGR ``(E_T/E_0)^(365.25/days) − 1`` with ``days`` the calendar span of the equity index;
  Calmar ``CAGR / |maxDD|`` (choice 14: CAGR, not the arithmetic annual return).
* Drawdown on the bar equity: ``max_drawdown_pct = min(E_t / max_{s≤t} E_s − 1)·100`` (≤ 0);
  ``max_drawdown`` is the largest drop below the running peak in money, ``min(E_t − max E_s)``
  (≤ 0; it can sit at a different bar than the largest percentage drop). The duration is the
  longest peak-to-recovery span, from the bar of the peak to the first bar back at or above it; a
  drawdown not recovered by the last bar counts to the last bar. Bars and days are each the
  longest span in that unit.
* ``exposure_pct`` is the share of bars holding a position; ``avg_gross_exposure_pct`` the
  mean over bars of the gross position value (closes carried forward) over the equity, bars
  whose ratio is not finite (a zero or missing equity) left out. A backtest adds the ratios up
  in bar order in its curve pass; numpy's pairwise mean of the same ratios agrees to ~1e-14.
* Trade metrics use closed trades only (``is_open`` False), in exit order for the streaks. A
  trade is a win when its net PnL is > 0 and a loss when < 0; a zero trade breaks both streaks.

Percentages carry a ``_pct`` suffix and are in percent; ratios are plain. Every value is a plain
Python ``float``, ``int``, ``bool`` or ``None`` (never NaN or inf), so ``json.dumps(...,
allow_nan=False)`` accepts the result.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from simulator.trades import TradeRows
from tradetower.domain.epoch import NS_PER_UNIT

__all__ = [
    "PERIODS_PER_YEAR",
    "MetricValue",
    "compute_metrics",
    "daily_returns",
    "drawdown_stats",
    "trade_stats",
]

PERIODS_PER_YEAR: dict[str, int] = {"crypto": 365, "equity": 252, "futures": 252}

DAYS_PER_YEAR = 365.25
_SECONDS_PER_DAY = 86_400.0

MetricValue = float | int | None


def _f(x: float | np.floating | None) -> float | None:
    """A plain float, or None for None / NaN / ±inf."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _utc_index(index: pd.Index) -> pd.DatetimeIndex:
    if isinstance(index, pd.DatetimeIndex) and index.tz is not None and str(index.tz) == "UTC":
        return index  # a backtest's (pandas' own conversion costs 0.1 ms a call)
    idx = pd.DatetimeIndex(index)
    return idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")


def daily_returns(equity: pd.Series) -> pd.Series:
    """Daily simple returns of a bar equity curve indexed by timestamps (see module docstring)."""
    if len(equity) == 0:
        return pd.Series(dtype=np.float64)
    values = equity.to_numpy(dtype=np.float64)
    eq = pd.Series(values, index=_utc_index(equity.index))
    daily = eq.resample("1D").last().dropna()
    first_day_end = eq.index[0].floor("D") + pd.Timedelta(days=1)
    first_day_bars = int((eq.index < first_day_end).sum())
    levels = daily.to_numpy(dtype=np.float64)
    index = daily.index
    if first_day_bars > 1:
        # Prepend E_0 so the first day's return runs from the first bar close.
        levels = np.concatenate(([values[0]], levels))
    else:
        index = index[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = levels[1:] / levels[:-1] - 1.0
    keep = np.isfinite(rets)
    return pd.Series(rets[keep], index=index[keep], dtype=np.float64)


_DAY_NS = 86_400 * 10**9


Ticks = tuple[np.ndarray, int]  # UTC epoch integers in the index's own unit, ns per unit


def _ticks(equity: pd.Series) -> Ticks:
    """The index as epoch integers in its own unit: day numbers and spans need no conversion
    to nanoseconds, which costs ~2 ms for a year of minutes held in microseconds."""
    idx = _utc_index(equity.index)
    return np.asarray(idx.asi8, dtype=np.int64), NS_PER_UNIT[idx.unit]


def daily_return_values(
    equity: pd.Series, ticks: Ticks | None = None, *, checked: bool = False
) -> np.ndarray:
    """``daily_returns(equity).to_numpy()`` without pandas' resampling when the index is a
    rising timeline and the equity has no NaN (a backtest's curve): the last value of each UTC
    day with bars is where the day number changes. Anything else takes :func:`daily_returns`.
    ``checked``: the caller knows both already (see :func:`compute_metrics`)."""
    values = equity.to_numpy(dtype=np.float64)
    if len(values) == 0:
        return daily_returns(equity).to_numpy(dtype=np.float64)
    times, ns_per_tick = _ticks(equity) if ticks is None else ticks
    from simulator.nb.daily import day_ends_nb

    # the last bar of every day but the last; [-1] for NaN values or a timeline not rising
    ends = day_ends_nb(
        np.ascontiguousarray(values),
        np.ascontiguousarray(times),
        _DAY_NS // ns_per_tick,
        checked,
    )
    if len(ends) and ends[0] < 0:
        return daily_returns(equity).to_numpy(dtype=np.float64)
    levels = np.concatenate((values[ends], values[-1:]))
    first_day_bars = int(ends[0]) + 1 if len(ends) else len(values)
    if first_day_bars > 1:
        levels = np.concatenate((values[:1], levels))
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = levels[1:] / levels[:-1] - 1.0
    out: np.ndarray = rets[np.isfinite(rets)]
    return out


def drawdown_stats(equity: pd.Series, ticks: Ticks | None = None) -> dict[str, MetricValue]:
    """``max_drawdown_pct``, ``max_drawdown`` and the longest peak-to-recovery span
    (``ticks``: the index as :func:`_ticks` gives it, when the caller has it)."""
    values = equity.to_numpy(dtype=np.float64)
    n = len(values)
    if n == 0:
        return {
            "max_drawdown_pct": None,
            "max_drawdown": None,
            "max_drawdown_duration_bars": None,
            "max_drawdown_duration_days": None,
        }
    times, ns_per_tick = _ticks(equity) if ticks is None else ticks
    times = np.ascontiguousarray(times)
    from simulator.nb.drawdown import drawdown_nb

    frac, amount, bars, span = drawdown_nb(np.ascontiguousarray(values), times)
    if bars < 0:  # the equity holds NaN
        return drawdown_stats_numpy(values, times, ns_per_tick)
    pct = float(frac) * 100.0 if np.isfinite(frac) else None
    return _drawdown_figures(pct, float(amount), int(bars), int(span) * ns_per_tick)


def _drawdown_figures(
    pct: float | None, amount: float, bars: int, span_ns: int
) -> dict[str, MetricValue]:
    return {
        "max_drawdown_pct": 0.0 if pct == 0 else pct,  # no -0.0
        "max_drawdown": 0.0 if amount == 0 else amount,
        "max_drawdown_duration_bars": bars,
        "max_drawdown_duration_days": span_ns / 1e9 / _SECONDS_PER_DAY,
    }


def drawdown_stats_numpy(
    values: np.ndarray, times: np.ndarray, ns_per_tick: int = 1
) -> dict[str, MetricValue]:
    """:func:`drawdown_stats` in numpy (an equity with NaN in it takes this path; the compiled
    pass is tested against it). ``times``: epoch integers, ``ns_per_tick`` nanoseconds each."""
    n = len(values)
    peak = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd_frac = np.where(peak > 0, values / peak - 1.0, np.nan)
    dd_pct = float(np.nanmin(dd_frac)) * 100.0 if np.isfinite(dd_frac).any() else None
    dd_amount = float(np.min(values - peak))

    underwater = values < peak
    best_bars = 0
    best_ns = 0
    if underwater.any():
        # Runs of consecutive underwater bars: [start, end) in bar positions.
        edges = np.diff(np.concatenate(([0], underwater.astype(np.int8), [0])))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1)  # first bar back at the peak, or n
        peaks = starts - 1  # bar 0 is never underwater, so starts >= 1
        recov = np.minimum(ends, n - 1)  # unrecovered: counts to the last bar
        best_bars = int(np.max(recov - peaks))
        best_ns = int(np.max(times[recov] - times[peaks])) * ns_per_tick
    return _drawdown_figures(dd_pct, dd_amount, best_bars, best_ns)


def _max_streak(mask: np.ndarray) -> int:
    """The longest run of True in ``mask``: the widest gap between two False (one before the
    start and one after the end), less one."""
    falses = np.flatnonzero(~np.concatenate(([False], np.asarray(mask, dtype=bool), [False])))
    return int(np.diff(falses).max()) - 1


def trade_stats(trades: pd.DataFrame | TradeRows) -> dict[str, MetricValue]:
    """Trade metrics over the closed trades of a ``fills_to_trades`` frame, or of the rows it
    is built from (a backtest reads these, so no frame is built for its metrics)."""
    if isinstance(trades, TradeRows):
        return _rows_stats(trades)
    n_rows = len(trades)
    if n_rows and "is_open" in trades.columns:
        open_mask = trades["is_open"].to_numpy(dtype=bool)
    else:
        open_mask = np.zeros(n_rows, dtype=bool)
    closed = trades.loc[~open_mask]
    if len(closed) and "exit_time" in closed.columns:
        closed = closed.sort_values("exit_time", kind="stable")
    pnl = closed["pnl"].to_numpy(dtype=np.float64) if len(closed) else np.zeros(0)
    durations = None
    if len(pnl) and "duration" in closed.columns:
        durations = pd.to_timedelta(closed["duration"]).dt.total_seconds().to_numpy()
    return _trade_figures(pnl, int(open_mask.sum()), durations)


def _rows_stats(rows: TradeRows) -> dict[str, MetricValue]:
    """:func:`trade_stats` of ``rows.frame()``, from the arrays: in one compiled pass when the
    closed rows are in exit order (a backtest's are), else in numpy."""
    from simulator.nb.trade_figures import trade_figures_nb

    f64 = np.float64
    (done, n, n_open, n_win, n_loss, win_sum, loss_sum, pnl_sum, top_win, top_loss,
     win_run, loss_run, seconds) = trade_figures_nb(
        np.asarray(rows.long, dtype=np.bool_),
        np.asarray(rows.qty, dtype=f64),
        np.asarray(rows.entry_price, dtype=f64),
        np.asarray(rows.exit_price, dtype=f64),
        np.asarray(rows.entry_fees, dtype=f64),
        np.asarray(rows.exit_fees, dtype=f64),
        np.asarray(rows.is_open, dtype=np.bool_),
        np.asarray(rows.entry_time, dtype=np.int64),
        np.asarray(rows.exit_time, dtype=np.int64),
    )  # fmt: skip
    if done:
        mean_s = seconds / n if n else None
        return _figures(n, n_open, n_win, n_loss, win_sum, loss_sum, pnl_sum, top_win, top_loss,
                        int(win_run), int(loss_run), mean_s)  # fmt: skip
    closed = ~np.asarray(rows.is_open, dtype=bool)
    exit_ns = np.asarray(rows.exit_time, dtype=np.int64)[closed]
    order = np.argsort(exit_ns, kind="stable")  # closed rows are in exit order: kept as is
    pnl = rows.net_pnl()[closed][order]
    span = exit_ns - np.asarray(rows.entry_time, dtype=np.int64)[closed]
    durations = span[order] / 10**9  # what Timedelta.total_seconds gives for nanoseconds
    return _trade_figures(pnl, int((~closed).sum()), durations if len(pnl) else None)


def _trade_figures(
    pnl: np.ndarray, n_open: int, durations: np.ndarray | None
) -> dict[str, MetricValue]:
    """The trade metrics of closed trades' net PnL in exit order, and their durations in
    seconds (NaN where unknown; None without the column)."""
    n = len(pnl)
    wins = pnl[pnl > 0]
    losses = pnl[pnl < 0]
    avg_duration: float | None = None
    if n and durations is not None and np.isfinite(durations).any():
        avg_duration = float(np.nanmean(durations))
    return _figures(
        n,
        n_open,
        len(wins),
        len(losses),
        float(wins.sum()),
        float(losses.sum()),
        float(pnl.sum()),
        float(wins.max()) if len(wins) else np.nan,
        float(losses.min()) if len(losses) else np.nan,
        _max_streak(pnl > 0),
        _max_streak(pnl < 0),
        avg_duration,
    )


def _figures(
    n: int,
    n_open: int,
    n_win: int,
    n_loss: int,
    win_sum: float,
    loss_sum: float,
    pnl_sum: float,
    top_win: float,
    top_loss: float,
    win_run: int,
    loss_run: int,
    avg_duration: float | None,
) -> dict[str, MetricValue]:
    """The trade metrics from the figures both paths take: the means are the sums over the
    counts, as numpy's ``mean`` divides its own sum."""
    return {
        "n_trades": n,
        "n_open_trades": n_open,
        "win_rate_pct": n_win / n * 100.0 if n else None,
        "profit_factor": _f(win_sum / abs(loss_sum)) if n_loss else None,
        "profit_factor_infinite": not n_loss and n_win > 0,
        "expectancy": _f(pnl_sum / n) if n else None,
        "avg_win": _f(win_sum / n_win) if n_win else None,
        "avg_loss": _f(loss_sum / n_loss) if n_loss else None,
        "largest_win": _f(top_win) if n_win else None,
        "largest_loss": _f(top_loss) if n_loss else None,
        "max_consecutive_wins": win_run,
        "max_consecutive_losses": loss_run,
        "avg_trade_duration_s": _f(avg_duration),
    }


def compute_metrics(
    equity: pd.Series,
    trades: pd.DataFrame | TradeRows,
    *,
    in_position: np.ndarray | pd.Series | int,
    fees_paid: float,
    periods_per_year: int = 365,
    risk_free: float = 0.05,
    n_orders: int = 0,
    n_fills: int = 0,
    first_open: float | None = None,
    last_close: float | None = None,
    gross_exposure: np.ndarray | None = None,
    exposure_mean: float | None = None,
    curve_checked: bool = False,
) -> dict[str, MetricValue]:
    """All summary metrics of one backtest as a JSON-ready dict (see the module docstring).

    ``equity`` is the equity at each bar close indexed by UTC timestamps; ``trades`` comes from
    ``simulator.trades.fills_to_trades`` (or is the :class:`~simulator.trades.TradeRows` such a
    frame is built from); ``in_position`` is a bool per bar, or how many bars held a position;
    ``gross_exposure`` (optional) the gross position value per bar, aligned with ``equity``,
    or ``exposure_mean`` the mean of its finite ratios to the equity (None when there is
    none) when the caller has it (``simulator.result.curve_of``). ``curve_checked``: the
    caller knows that the equity holds no NaN and that its index rises strictly (a backtest
    over validated bars whose curve pass met no NaN), so the daily returns need not check
    either.
    """
    if len(equity) == 0:
        raise ValueError("equity is empty")
    values = equity.to_numpy(dtype=np.float64)
    e0 = float(values[0])
    e_t = float(values[-1])
    p = float(periods_per_year)
    rf_p = risk_free / p

    ticks = _ticks(equity)  # once, for the daily returns and the drawdown
    r = daily_return_values(equity, ticks, checked=curve_checked)
    n_r = len(r)
    mean_r = float(r.mean()) if n_r else None
    std_r = float(r.std(ddof=1)) if n_r >= 2 else None
    if std_r is not None and float(np.ptp(r)) == 0.0:
        std_r = 0.0  # identical returns: kill the ~1e-18 residue of the float mean
    sharpe = None
    volatility = None
    if mean_r is not None and std_r is not None:
        volatility = std_r * math.sqrt(p)
        if std_r > 0:
            sharpe = (mean_r - rf_p) / std_r * math.sqrt(p)
    sortino = None
    if mean_r is not None and n_r >= 2:
        downside = float(np.sqrt(np.mean(np.minimum(0.0, r - rf_p) ** 2)))
        if downside > 0:
            sortino = (mean_r - rf_p) / downside * math.sqrt(p)

    idx = _utc_index(equity.index)
    days = (idx[-1] - idx[0]).total_seconds() / _SECONDS_PER_DAY
    cagr: float | None = None
    if days > 0 and e0 > 0 and e_t >= 0:
        with np.errstate(over="ignore"):
            cagr = _f(np.float64(e_t / e0) ** (DAYS_PER_YEAR / days) - 1.0)

    dd = drawdown_stats(equity, ticks)
    dd_pct = dd["max_drawdown_pct"]
    calmar = None
    if cagr is not None and dd_pct is not None and dd_pct != 0:
        calmar = cagr / abs(float(dd_pct) / 100.0)

    total_return = e_t - e0
    return_pct = total_return / e0 * 100.0 if e0 != 0 else None

    # The share of bars in a position: a count over the bars, exactly the float the mean of
    # the flags gives (its sum of ones is exact), without converting them to floats.
    exposure_pct: float | None
    if isinstance(in_position, int | np.integer):
        exposure_pct = in_position / len(values) * 100.0
    else:
        in_pos = np.asarray(in_position, dtype=bool)
        exposure_pct = np.count_nonzero(in_pos) / len(in_pos) * 100.0 if len(in_pos) else None
    mean_ratio = exposure_mean
    if mean_ratio is None and gross_exposure is not None and len(gross_exposure):
        gross = np.ascontiguousarray(gross_exposure, dtype=np.float64)
        if len(gross) != len(values):
            raise ValueError("gross_exposure must have one value per equity bar")
        from simulator.nb.daily import finite_ratios_nb

        ratio = finite_ratios_nb(gross, np.ascontiguousarray(values))  # |gross| / equity
        mean_ratio = float(ratio.mean()) if len(ratio) else None
    avg_gross = None if mean_ratio is None else mean_ratio * 100.0

    bh_pct = None
    if first_open is not None and last_close is not None and first_open != 0:
        bh_pct = (last_close / first_open - 1.0) * 100.0
    alpha_pct = None
    if return_pct is not None and bh_pct is not None:
        alpha_pct = return_pct - bh_pct

    out: dict[str, MetricValue] = {
        "initial_equity": e0,
        "final_equity": e_t,
        "total_return": total_return,
        "return_pct": return_pct,
        "cagr_pct": None if cagr is None else cagr * 100.0,
        "annualized_return_pct": None if mean_r is None else mean_r * p * 100.0,
        "volatility_pct": None if volatility is None else volatility * 100.0,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": calmar,
        **dd,
        **trade_stats(trades),
        "exposure_pct": exposure_pct,
        "avg_gross_exposure_pct": avg_gross,
        "fees_paid": float(fees_paid),
        "n_orders": int(n_orders),
        "n_fills": int(n_fills),
        "bars": len(values),
        "n_return_days": n_r,
        "periods_per_year": int(periods_per_year),
        "risk_free": float(risk_free),
        "buy_and_hold_pct": bh_pct,
        "alpha_pct": alpha_pct,
    }
    return {k: _clean(v) for k, v in out.items()}


def _clean(v: MetricValue | np.generic) -> MetricValue:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int | np.integer):
        return int(v)
    return _f(float(v))
