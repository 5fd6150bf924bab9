"""The view builders, without a browser: what each page is made of."""

from __future__ import annotations

import io
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import pytest
from dash_data import SWEEP_GRID, SWEEP_METRICS, SYMBOL, bars, grid_run, sma_run, sweep_table

from dashboards import compare_view, plots, result_view, sweep_view
from dashboards.theme import DARK, LIGHT, get_theme
from dashboards.views.compare import distinguishing_params, metrics_table
from dashboards.views.result import trades_csv
from tradetower.errors import ConfigError


def _html(view: Any) -> str:
    layout = view.__panel__() if hasattr(view, "__panel__") else view
    return "".join(p.object for p in layout.select(pn.pane.HTML))


def test_the_result_view_shows_the_cards_candles_levels_and_trades() -> None:
    result = grid_run(20)
    view = result_view(result, bars(), theme="light")
    html = _html(view)
    m = result.metrics
    assert f'<div class="tt-value">{m["final_equity"]:,.2f}</div>' in html
    assert f'<div class="tt-value">{m["return_pct"]:+.2f}%</div>' in html
    assert f'<div class="tt-value">{len(result.trades)}</div>' in html
    table = view.__panel__().select(pn.widgets.Tabulator)[0]
    assert len(table.value) == len(result.trades) == m["n_trades"]
    candles = view._price_plot(SYMBOL)
    assert isinstance(candles, pn.pane.HoloViews)
    assert "5,760 bars drawn as 30min candles" in candles.object.opts.get().kwargs["title"]
    levels = view._levels_plot(SYMBOL).object
    assert "Bot levels over time" in levels.opts.get().kwargs["title"]
    assert len(view.levels) == (result.orders["type"] == "LIMIT").sum()


def test_without_bars_the_page_says_why_there_are_no_candles() -> None:
    view = result_view(sma_run())
    alert = view._price_plot(SYMBOL)
    assert isinstance(alert, pn.pane.Alert)
    assert "did not record its data source" in alert.object
    assert isinstance(view._levels_plot(SYMBOL), pn.pane.HoloViews)  # levels need no bars


def test_bars_for_a_symbol_the_run_did_not_trade_are_refused() -> None:
    with pytest.raises(ConfigError, match="bars for 'BTC-USD', which the run did not trade"):
        result_view(grid_run(20), {"BTC-USD": bars()})


def test_the_csv_download_holds_the_trades() -> None:
    result = grid_run(20)
    view = result_view(result)
    download = view.__panel__().select(pn.widgets.FileDownload)[0]
    text = download.callback().getvalue()
    assert text == trades_csv(result.trades)
    back = pd.read_csv(io.StringIO(text))
    assert len(back) == len(result.trades)
    assert list(back.columns) == list(result.trades.columns)
    assert back["pnl"].tolist() == result.trades["pnl"].tolist()


def test_a_comparison_takes_two_to_five_results() -> None:
    for count in (0, 1, 6):
        with pytest.raises(ConfigError, match=f"2 to 5 runs side by side; {count} w"):
            compare_view([grid_run(20)] * count)
    with pytest.raises(ConfigError, match="give 2 distinct labels"):
        compare_view([grid_run(10), grid_run(20)], labels=["a", "a"])


def test_the_comparison_table_lists_each_run() -> None:
    runs = {"ten": grid_run(10), "twenty": grid_run(20), "sma": sma_run()}
    table = metrics_table(runs)
    assert list(table.columns) == ["ten", "twenty", "sma"]
    assert table.loc["Final equity", "twenty"] == f"{grid_run(20).metrics['final_equity']:,.2f}"
    assert table.loc["Trades", "sma"] == str(sma_run().metrics["n_trades"])
    same = distinguishing_params({"ten": grid_run(10), "twenty": grid_run(20)})
    assert same == {"ten": {"grid_levels": 10}, "twenty": {"grid_levels": 20}}
    view = compare_view(runs, theme="dark")
    html = _html(view)
    assert html.count('<td data-run="sma">') == len(table)


class Recorder:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    def __call__(self, params: dict[str, Any]) -> Any:
        self.calls.append(params)
        if self.fail:
            raise self.fail
        return grid_run(params["grid_levels"], params["low_price"], params["trailing_up"])


def test_clicking_a_cell_opens_the_backtest_of_that_cell() -> None:
    opener = Recorder()
    table = sweep_table()
    view = sweep_view(table, opener, params=list(SWEEP_GRID), metrics=SWEEP_METRICS)
    assert view.x.value == "grid_levels" and view.y.value == "low_price"
    view.fixed["trailing_up"].value = False
    view.heatmap[()]  # draw the heatmap as the page would
    view._on_tap(x="20", y="0.08")
    assert opener.calls == [{"grid_levels": 20, "low_price": 0.08, "trailing_up": False}]
    shown = view.opened_result
    assert shown is grid_run(20, 0.08, False)
    row = table[(table.grid_levels == 20) & (table.low_price == 0.08) & ~table.trailing_up]
    assert shown.metrics["final_equity"] == row["final_equity"].item()
    assert f"{row['final_equity'].item():,.2f}" in _html(view.opened[0])
    assert "Opened the backtest for **grid_levels=20, low_price=0.08, trailing_up=False**" in (
        view.message.object
    )
    view._on_tap(x="99", y="0.08")  # outside the cells: nothing opens
    assert len(opener.calls) == 1


def test_a_failing_backtest_is_reported_on_the_page() -> None:
    opener = Recorder(fail=ConfigError("grid_levels", "grid_levels: must be at least 2"))
    view = sweep_view(sweep_table(), opener, params=list(SWEEP_GRID), metrics=SWEEP_METRICS)
    view.heatmap[()]
    view._on_tap(x="10", y="0.07")
    assert "failed:** grid_levels: must be at least 2" in view.message.object
    assert len(view.opened) == 0
    no_callback = sweep_view(sweep_table(), params=list(SWEEP_GRID), metrics=SWEEP_METRICS)
    no_callback.heatmap[()]
    no_callback._on_tap(x="10", y="0.07")
    assert "needs an `open_backtest` callback" in no_callback.message.object


def test_one_parameter_sweeps_draw_a_single_row() -> None:
    table = sweep_table()
    table = table[(table.low_price == 0.07) & table.trailing_up][["grid_levels", *SWEEP_METRICS]]
    view = sweep_view(table, Recorder(), params=["grid_levels"], metrics=SWEEP_METRICS)
    heat = view.heatmap[()]
    assert len(heat) == 3 and heat.dimension_values(1, expanded=False).tolist() == ["all"]


def test_plot_helpers() -> None:
    series = pd.Series(np.sin(np.linspace(0, 60, 50_000)), index=pd.RangeIndex(50_000))
    thinned = plots.thin(series, 1000)
    assert len(thinned) <= 1002 and thinned.max() == series.max() and thinned.min() == series.min()
    assert thinned.index[0] == 0 and thinned.index[-1] == 49_999
    equity = pd.Series([100.0, 110.0, 99.0, 121.0])
    assert plots.drawdown_pct(equity).round(6).tolist() == [0.0, 0.0, -10.0, 0.0]
    index = pd.DatetimeIndex(bars().index)
    assert plots.candle_step(index) == "30min" and plots.candle_step(index[:1000]) is None
    coarse = plots.resample_bars(bars(), "1D")
    assert coarse["high"].max() == bars()["high"].max() and coarse["volume"].sum() == pytest.approx(
        bars()["volume"].sum()
    )
    fills = grid_run(20).fills
    marks = plots.fill_markers(fills, DARK)
    assert [len(m) for m in marks] == [(fills.side == 1).sum(), (fills.side == -1).sum()]
    assert isinstance(plots.fill_markers(fills.iloc[:0], LIGHT).get(0), hv.Scatter)


def test_themes() -> None:
    assert get_theme("light") is LIGHT and get_theme("default") is LIGHT and get_theme(DARK) is DARK
    with pytest.raises(ConfigError, match="unknown theme 'blue'; use dark or light"):
        get_theme("blue")
