"""HoloViews elements for one run: equity, drawdown, candlesticks with fills, order levels.

Builders return plain HoloViews objects (no Panel), so they can be checked without a browser.
Long series are thinned for drawing only: the metric cards always show the exact figures.
"""

from __future__ import annotations

import itertools
from typing import Any

import holoviews as hv  # type: ignore[import-untyped]
import holoviews.plotting.bokeh  # type: ignore[import-untyped]  # registers the Bokeh options
import numpy as np
import pandas as pd

from dashboards.theme import Theme

#: at most this many points per drawn line (min and max of each bucket are kept)
MAX_POINTS = 4000
#: at most this many candles; longer bars are resampled to a coarser step for drawing
MAX_CANDLES = 1500
_STEPS = ("1min", "5min", "15min", "30min", "1h", "2h", "4h", "6h", "12h", "1D", "7D")
TIME = hv.Dimension("time", label="Time")
PRICE = hv.Dimension("price", label="Price")
#: x0, y0, x1, y1 of segments and rectangles, named so their axes link with the other plots
SEGMENT_DIMS = [TIME, PRICE, "time1", "price1"]
#: no padding along time (the curves start and end at the plot's edges), a little on values
PAD = (0, 0.05)


def naive_utc(index: pd.Index) -> pd.DatetimeIndex:
    """Times as naive UTC, which Bokeh draws without a timezone warning."""
    times = pd.DatetimeIndex(index)
    return times.tz_convert(None) if times.tz is not None else times


def thin(series: pd.Series, max_points: int = MAX_POINTS) -> pd.Series:
    """At most about ``max_points`` points, keeping each bucket's lowest and highest value."""
    n = len(series)
    if n <= max_points:
        return series
    edges = np.linspace(0, n, max_points // 2 + 1).astype(np.int64)
    values = series.to_numpy(dtype="float64")
    keep = [0, n - 1]
    for lo, hi in itertools.pairwise(edges):
        chunk = values[lo:hi]
        if hi > lo and np.isfinite(chunk).any():
            keep += [lo + int(np.nanargmin(chunk)), lo + int(np.nanargmax(chunk))]
    return series.iloc[np.unique(keep)]


def _empty() -> Any:
    """A placeholder for a plot with nothing to draw (no fills, no resting orders)."""
    return hv.Scatter(pd.DataFrame({"time": pd.DatetimeIndex([]), "price": []}), TIME, PRICE)


def drawdown_pct(equity: pd.Series) -> pd.Series:
    """Percent below the running peak of the equity curve (0 at a new high)."""
    peak = equity.cummax()
    return (equity / peak - 1.0) * 100.0


def equity_curve(equity: pd.Series, theme: Theme, label: str = "Equity") -> Any:
    shown = thin(equity)
    frame = pd.DataFrame({"time": naive_utc(shown.index), "equity": shown.to_numpy()})
    return hv.Curve(frame, TIME, hv.Dimension("equity", label=label)).opts(
        color=theme.equity, line_width=2, tools=["hover"], responsive=True, height=280, padding=PAD
    )


def drawdown_area(equity: pd.Series, theme: Theme) -> Any:
    shown = thin(drawdown_pct(equity))
    frame = pd.DataFrame({"time": naive_utc(shown.index), "drawdown": shown.to_numpy()})
    return hv.Area(frame, TIME, hv.Dimension("drawdown", label="Drawdown (%)")).opts(
        color=theme.drawdown,
        alpha=0.5,
        line_color=theme.drawdown,
        tools=["hover"],
        responsive=True,
        height=200,
        padding=PAD,
    )


def candle_step(index: pd.DatetimeIndex, max_candles: int = MAX_CANDLES) -> str | None:
    """The coarser step to draw candles at, or ``None`` when the bars fit as they are."""
    if len(index) <= max_candles:
        return None
    span = index[-1] - index[0]
    for step in _STEPS:
        if span / pd.Timedelta(step) <= max_candles:
            return step
    return _STEPS[-1]


def resample_bars(bars: pd.DataFrame, step: str) -> pd.DataFrame:
    ohlc = bars.resample(step).agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    return ohlc.dropna(subset=["open", "close"])


def fill_markers(fills: pd.DataFrame, theme: Theme) -> Any:
    """Buys as upward triangles, sells as downward ones, at their fill price."""
    marks = []
    for side, label, marker, color in (
        (1, "Buy", "triangle", theme.buy),
        (-1, "Sell", "inverted_triangle", theme.sell),
    ):
        rows = fills[fills["side"] == side]
        if rows.empty:
            continue
        frame = pd.DataFrame(
            {
                "time": naive_utc(pd.DatetimeIndex(rows["timestamp"])),
                "price": rows["price"].to_numpy(dtype="float64"),
                "qty": rows["qty"].to_numpy(dtype="float64"),
            }
        )
        marks.append(
            hv.Scatter(frame, TIME, [PRICE, "qty"], label=label).opts(
                marker=marker,
                color=color,
                size=9,
                line_color=theme.text,
                line_width=0.5,
                tools=["hover"],
                padding=PAD,
            )
        )
    return hv.Overlay(marks or [_empty()])


def candlesticks(bars: pd.DataFrame, theme: Theme) -> tuple[Any, str | None]:
    """Wicks and bodies, up bars and down bars in their colours; and the drawn step if coarser."""
    step = candle_step(pd.DatetimeIndex(bars.index))
    shown = resample_bars(bars, step) if step else bars
    times = naive_utc(shown.index)
    if len(times) > 1:
        width = pd.Series(times).diff().median() * 0.7
    else:
        width = pd.Timedelta(step or "1min") * 0.7
    up = (shown["close"] >= shown["open"]).to_numpy()
    parts = []
    for mask, color in ((up, theme.up), (~up, theme.down)):
        t = times[mask]
        o = shown["open"].to_numpy()[mask]
        c = shown["close"].to_numpy()[mask]
        wicks = pd.DataFrame(
            {
                "time": t,
                "price": shown["low"].to_numpy()[mask],
                "time1": t,
                "price1": shown["high"].to_numpy()[mask],
            }
        )
        bodies = pd.DataFrame(
            {
                "time": t - width / 2,
                "price": np.minimum(o, c),
                "time1": t + width / 2,
                "price1": np.maximum(o, c),
            }
        )
        parts.append(hv.Segments(wicks, SEGMENT_DIMS).opts(color=color, padding=PAD))
        parts.append(
            hv.Rectangles(bodies, SEGMENT_DIMS).opts(color=color, line_color=color, padding=PAD)
        )
    overlay = hv.Overlay(parts)
    return overlay, step


def level_segments(levels: pd.DataFrame, theme: Theme) -> Any:
    """Each resting order as a horizontal segment at its price: buys and sells in their colours."""
    parts = []
    for side, label, color in ((1, "Buy orders", theme.buy), (-1, "Sell orders", theme.sell)):
        rows = levels[levels["side"] == side]
        if rows.empty:
            continue
        frame = pd.DataFrame(
            {
                "time": naive_utc(pd.DatetimeIndex(rows["start"])),
                "price": rows["price"].to_numpy(dtype="float64"),
                "time1": naive_utc(pd.DatetimeIndex(rows["end"])),
                "price1": rows["price"].to_numpy(dtype="float64"),
            }
        )
        parts.append(
            hv.Segments(frame, SEGMENT_DIMS, label=label).opts(
                color=color, line_width=2, alpha=0.8, padding=PAD
            )
        )
    return hv.Overlay(parts or [_empty()])
