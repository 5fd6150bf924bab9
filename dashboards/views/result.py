"""One backtest: metric cards, equity and drawdown, candlesticks with fills, order levels over
time, and the trades table with a CSV download."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import holoviews as hv  # type: ignore[import-untyped]
import pandas as pd
import panel as pn
from panel.viewable import Viewer

from dashboards import plots
from dashboards.format import describe_params
from dashboards.levels import order_levels
from dashboards.theme import Theme, get_theme
from dashboards.views.cards import metric_cards
from simulator.result import BacktestResult
from tradetower.domain import validate_bars
from tradetower.errors import ConfigError

NO_BARS = (
    "**No candlesticks:** this run did not record its data source (`config.data` in "
    "`result.json`), so only the equity view is shown. In Python, pass the bars: "
    "`result_view(result, bars=...)`."
)
TRADES_PAGE_SIZE = 15


def normalise_bars(
    bars: pd.DataFrame | Mapping[str, pd.DataFrame] | None, symbols: tuple[str, ...]
) -> dict[str, pd.DataFrame]:
    """Bars by symbol, validated; one frame stands for the run's first symbol."""
    if bars is None:
        return {}
    if isinstance(bars, pd.DataFrame):
        if not symbols:
            raise ConfigError("bars", "the result names no symbol to draw these bars for")
        return {symbols[0]: validate_bars(bars)}
    unknown = [s for s in bars if s not in symbols]
    if unknown:
        raise ConfigError(
            "bars",
            f"bars for {', '.join(map(repr, unknown))}, which the run did not trade "
            f"(its symbols: {', '.join(symbols)})",
        )
    return {s: validate_bars(frame) for s, frame in bars.items()}


def trades_csv(trades: pd.DataFrame) -> str:
    """The trades exactly as the result holds them, as CSV (durations in pandas' notation)."""
    return trades.to_csv(index=False)


def trades_display(trades: pd.DataFrame) -> pd.DataFrame:
    """The trades as the table shows them: times without timezone, durations as text."""
    shown = trades.copy()
    for column in ("entry_time", "exit_time"):
        if column in shown and isinstance(shown[column].dtype, pd.DatetimeTZDtype):
            shown[column] = shown[column].dt.tz_convert(None)
    if "duration" in shown:
        shown["duration"] = shown["duration"].astype(str)
    return shown


class ResultView(Viewer):
    """The page of one run. ``bars`` (a frame, or frames by symbol) enables the candlesticks."""

    def __init__(
        self,
        result: BacktestResult,
        bars: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
        *,
        theme: str | Theme = "dark",
        title: str | None = None,
        bars_note: str | None = None,
    ) -> None:
        super().__init__()
        self.result = result
        self.theme = get_theme(theme)
        self.bars = normalise_bars(bars, result.symbols)
        self.title = title or f"{result.strategy} on {', '.join(result.symbols)}"
        self.bars_note = bars_note
        self.levels = order_levels(result.orders, pd.DatetimeIndex(result.equity.index))
        symbols = list(result.symbols) or [""]
        self.symbol = pn.widgets.Select(label="Symbol", options=symbols, value=symbols[0])
        self.symbol.visible = len(symbols) > 1
        self._layout = self._build()

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def _header(self) -> pn.pane.Markdown:
        params = describe_params(self.result.params) if self.result.params else "no parameters"
        return pn.pane.Markdown(
            f"## {self.title}\n\n{params}", sizing_mode="stretch_width", name="result-title"
        )

    def _fills(self, symbol: str) -> pd.DataFrame:
        fills = self.result.fills
        return fills[fills["instrument"] == symbol] if len(fills) else fills

    def _price_plot(self, symbol: str) -> pn.viewable.Viewable:
        bars = self.bars.get(symbol)
        if bars is None:
            note = self.bars_note or NO_BARS
            return pn.pane.Alert(note, alert_type="warning", sizing_mode="stretch_width")
        candles, step = plots.candlesticks(bars, self.theme)
        title = f"{symbol}: price and fills"
        if step:
            title += f" ({len(bars):,} bars drawn as {step} candles)"
        overlay = (candles * plots.fill_markers(self._fills(symbol), self.theme)).opts(
            title=title, responsive=True, height=380, legend_position="top_left"
        )
        return pn.pane.HoloViews(overlay, sizing_mode="stretch_width", name="candles")

    def _levels_plot(self, symbol: str) -> pn.viewable.Viewable:
        levels = self.levels[self.levels["instrument"] == symbol]
        layers = [plots.level_segments(levels, self.theme)]
        bars = self.bars.get(symbol)
        if bars is not None:
            close = plots.thin(bars["close"])
            frame = pd.DataFrame({"time": plots.naive_utc(close.index), "price": close})
            layers.append(
                hv.Curve(frame, plots.TIME, plots.PRICE, label="Close").opts(
                    color=self.theme.muted, line_width=1, padding=plots.PAD
                )
            )
        layers.append(plots.fill_markers(self._fills(symbol), self.theme))
        overlay = hv.Overlay(layers).opts(
            title=f"Bot levels over time ({len(levels):,} resting orders)",
            responsive=True,
            height=320,
            legend_position="top_left",
        )
        return pn.pane.HoloViews(overlay, sizing_mode="stretch_width", name="levels")

    def _trades(self) -> pn.Column:
        trades = self.result.trades
        download = pn.widgets.FileDownload(
            callback=lambda: io.StringIO(trades_csv(trades)),
            filename="trades.csv",
            label="Download trades (CSV)",
            color="primary",
        )
        table = pn.widgets.Tabulator(
            trades_display(trades),
            pagination="local",
            page_size=TRADES_PAGE_SIZE,
            disabled=True,
            show_index=False,
            configuration={"paginationCounter": "rows"},
            sizing_mode="stretch_width",
        )
        heading = pn.pane.Markdown(f"### Trades ({len(trades):,})")
        return pn.Column(pn.Row(heading, download), table, sizing_mode="stretch_width")

    def _build(self) -> pn.Column:
        equity = plots.equity_curve(self.result.equity, self.theme).opts(title="Equity")
        drawdown = plots.drawdown_area(self.result.equity, self.theme).opts(title="Drawdown")
        return pn.Column(
            self._header(),
            metric_cards(self.result.metrics, self.theme),
            pn.pane.HoloViews(equity, sizing_mode="stretch_width", name="equity"),
            pn.pane.HoloViews(drawdown, sizing_mode="stretch_width", name="drawdown"),
            self.symbol,
            pn.bind(self._price_plot, self.symbol),
            pn.bind(self._levels_plot, self.symbol),
            self._trades(),
            sizing_mode="stretch_width",
        )


def result_view(
    result: BacktestResult,
    bars: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    *,
    theme: str | Theme = "dark",
    title: str | None = None,
    **options: Any,
) -> ResultView:
    """A backtest's dashboard as a Panel object: serve it, or show it inline in Jupyter."""
    return ResultView(result, bars, theme=theme, title=title, **options)
