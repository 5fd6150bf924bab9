"""The sweep explorer: a heatmap over two parameters, parallel coordinates over all of them,
the best rows; clicking a heatmap cell runs that combination's backtest and shows its page.

The backtest comes from an injected ``open_backtest(params) -> BacktestResult``: dashboards may
not import the strategies, so the caller (the CLI, or a notebook) wires it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import holoviews as hv  # type: ignore[import-untyped]
import numpy as np
import pandas as pd
import panel as pn
from panel.viewable import Viewer

from dashboards import sweep_grid as grid
from dashboards.format import describe_params, format_metric, format_param, metric_label
from dashboards.store import SweepRecord
from dashboards.theme import Theme, get_theme
from dashboards.views.result import result_view
from simulator.result import BacktestResult
from tradetower.errors import ConfigError, TradeTowerError

OpenBacktest = Callable[[dict[str, Any]], BacktestResult]
#: the parallel-coordinates plot draws at most this many rows (the best by the metric)
MAX_LINES = 1000
#: cells are labelled with their value up to this many cells
MAX_LABELLED_CELLS = 150
BEST_ROWS = 10
HEATMAP_TITLE = "Heatmap"


def parallel_coordinates(
    frame: pd.DataFrame, columns: Sequence[str], color: str, theme: Theme
) -> hv.Overlay:
    """One line per row across the columns' axes (each scaled to its own range), coloured by
    ``color``; each axis is labelled with its lowest and highest value."""
    shown = frame.sort_values(color, ascending=False, na_position="last").head(MAX_LINES)
    scaled = grid.normalised(shown, columns)
    xs = np.arange(len(columns), dtype="float64")
    ys = scaled.to_numpy(dtype="float64")
    colours = shown[color].to_numpy(dtype="float64")
    paths = [  # best drawn last, on top
        {"x": xs, "y": ys[j], color: colours[j]} for j in range(len(shown) - 1, -1, -1)
    ]
    lines = hv.Path(paths, vdims=[color]).opts(
        color=color,
        cmap=theme.heatmap_cmap,
        colorbar=True,
        line_width=1.5,
        alpha=0.7,
        tools=["hover"],
    )
    axes = hv.Overlay([hv.VLine(x).opts(color=theme.muted, line_width=1) for x in xs])
    ends = []
    for x, column in zip(xs, columns, strict=True):
        values = shown[column]
        lo, hi = (values.min(), values.max()) if len(values) else (None, None)
        show = format_param if column != color else (lambda v: format_metric(color, v))
        ends.append((x, -0.06, show(lo)))
        ends.append((x, 1.06, show(hi)))
    labels = hv.Labels(ends, ["x", "y"], "text").opts(text_color=theme.text, text_font_size="9pt")
    ticks = [(float(x), c) for x, c in zip(xs, columns, strict=True)]
    return (lines * axes * labels).opts(
        title=f"Parallel coordinates (colour: {metric_label(color)})",
        xticks=ticks,
        yaxis=None,
        xlabel="",
        ylim=(-0.12, 1.12),
        responsive=True,
        height=360,
    )


def _undimmed(plot: Any, element: Any) -> None:
    """Keep every cell's text readable when a click selects one cell (Bokeh dims the rest)."""
    renderer = plot.handles["glyph_renderer"]
    renderer.nonselection_glyph = renderer.glyph


class SweepView(Viewer):
    """Explore a sweep table. ``open_backtest(params)`` runs one combination for display."""

    def __init__(
        self,
        frame: pd.DataFrame | SweepRecord,
        *,
        open_backtest: OpenBacktest | None = None,
        params: Sequence[str] | None = None,
        metrics: Sequence[str] | None = None,
        bars: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
        theme: str | Theme = "dark",
        title: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(frame, SweepRecord):
            params = params or frame.params
            metrics = metrics or frame.metrics
            title = title or f"Sweep {frame.name}: {frame.strategy}"
            frame = frame.frame
        if frame.empty:
            raise ConfigError("frame", "the sweep table has no rows")
        self.frame = frame.reset_index(drop=True)
        self.params, self.metrics = grid.split_columns(self.frame, params, metrics)
        self.open_backtest = open_backtest
        self.bars = bars
        self.theme = get_theme(theme)
        self.title = title or "Sweep"
        self.opened_params: dict[str, Any] | None = None
        self.opened_result: BacktestResult | None = None
        self._cells = pd.DataFrame()
        self._build_widgets()
        inputs = {"metric": self.metric, "x": self.x, "y": self.y, **self._fixed_kwargs()}
        draw: Callable[..., hv.HeatMap] = self._heatmap
        write: Callable[..., hv.Labels] = self._cell_labels
        self.heatmap = hv.DynamicMap(pn.bind(draw, **inputs))
        self.cell_labels = hv.DynamicMap(pn.bind(write, **inputs))
        self.tap = hv.streams.Tap(source=self.heatmap, x=None, y=None)
        self.tap.add_subscriber(self._on_tap)
        self._layout = self._build()

    # ------------------------------------------------------------------ widgets and layout

    def _build_widgets(self) -> None:
        first = self.frame[self.metrics[0]].astype("float64")
        best = first.idxmax() if first.notna().any() else self.frame.index[0]
        self.metric = pn.widgets.Select(label="Metric", options=self.metrics, value=self.metrics[0])
        second = self.params[1] if len(self.params) > 1 else self.params[0]
        self.x = pn.widgets.Select(label="X axis", options=self.params, value=self.params[0])
        self.y = pn.widgets.Select(label="Y axis", options=self.params, value=second)
        self.fixed: dict[str, pn.widgets.Select] = {}
        for p in self.params:
            values = pd.unique(self.frame[p].dropna())
            if len(values) > grid.MAX_CATEGORIES:
                options: dict[str, Any] = {grid.ANY: grid.ANY}
                value: Any = grid.ANY
            else:
                ordered = sorted(values, key=lambda v: (isinstance(v, str), v))
                options = {grid.ANY: grid.ANY} | {
                    format_param(v): (v.item() if hasattr(v, "item") else v) for v in ordered
                }
                value = grid.params_of(self.frame, best, [p])[p]
            self.fixed[p] = pn.widgets.Select(label=f"{p} (fixed)", options=options, value=value)
        self.x.param.watch(self._show_fixed, "value")
        self.y.param.watch(self._show_fixed, "value")
        self._show_fixed()
        self.message = pn.pane.Markdown(
            "Click a heatmap cell to run and open that combination's backtest.",
            name="sweep-message",
        )
        self.opened = pn.Column(sizing_mode="stretch_width", name="opened-backtest")

    def _fixed_kwargs(self) -> dict[str, Any]:
        return {f"fixed_{i}": w for i, w in enumerate(self.fixed.values())}

    def _show_fixed(self, *_: Any) -> None:
        for p, widget in self.fixed.items():
            widget.visible = p not in (self.x.value, self.y.value)

    def _build(self) -> pn.Column:
        controls = pn.Row(self.metric, self.x, self.y, *self.fixed.values())
        heatmap = pn.pane.HoloViews(
            self.heatmap * self.cell_labels, sizing_mode="stretch_width", name="heatmap"
        )
        parallel = pn.bind(self._parallel, metric=self.metric)
        return pn.Column(
            pn.pane.Markdown(f"## {self.title}\n\n{len(self.frame):,} combinations"),
            controls,
            heatmap,
            self.message,
            self.opened,
            parallel,
            pn.bind(self._best_rows, metric=self.metric),
            sizing_mode="stretch_width",
        )

    # ------------------------------------------------------------------ plots

    def _fixed_values(self, x: str, y: str) -> dict[str, Any]:
        return {p: w.value for p, w in self.fixed.items() if p not in (x, y)}

    def _cell_table(
        self, metric: str, x: str, y: str
    ) -> tuple[pd.DataFrame, hv.Dimension, hv.Dimension]:
        """The heatmap's cells (object columns: pandas' Arrow strings do not reshape into
        HoloViews' grid) and its two axes."""
        frame, yname = self.frame, y
        if x == y:  # one parameter (or the same twice): a single row of cells
            yname = " "
            frame = frame.assign(**{yname: "all"})
        cells, x_order, y_order = grid.heatmap_cells(
            frame, x, yname, metric, self._fixed_values(x, y)
        )
        cells = cells.astype({x: object, yname: object})
        return cells, hv.Dimension(x, values=x_order), hv.Dimension(yname, values=y_order)

    def _heatmap(self, metric: str, x: str, y: str, **_: Any) -> hv.HeatMap:
        cells, x_dim, y_dim = self._cell_table(metric, x, y)
        self._cells = cells
        title = f"{HEATMAP_TITLE}: {metric_label(metric)} by {x} and {y} (click a cell)"
        return hv.HeatMap(cells, [x_dim, y_dim], [metric, "count", "row"]).opts(
            cmap=self.theme.heatmap_cmap,
            colorbar=True,
            tools=["tap", "hover"],
            hover_tooltips=[x_dim.name, y_dim.name, metric, ("rows in cell", "@count")],
            responsive=True,
            height=420,
            title=title,
            nonselection_alpha=0.8,
        )

    def _cell_labels(self, metric: str, x: str, y: str, **_: Any) -> hv.Labels:
        """Each cell's value written on it (a separate layer: a Tap stream on an overlay that
        holds labels receives no taps)."""
        cells, x_dim, y_dim = self._cell_table(metric, x, y)
        if len(cells) > MAX_LABELLED_CELLS:
            cells = cells.iloc[:0]
        values = cells[metric].astype("float64")
        lo, hi = values.min(), values.max()
        bright = (values - lo) / (hi - lo) > 0.6 if hi > lo else values * 0 > 1
        cells = cells.assign(
            text=pd.Series([format_metric(metric, v) for v in values], dtype=object),
            # viridis turns light at the top of its range: dark text there, light text below
            text_color=pd.Series(np.where(bright, "#111111", "#ffffff"), dtype=object),
        )
        return hv.Labels(cells, [x_dim, y_dim], ["text", "text_color"]).opts(
            text_color="text_color", text_font_size="9pt", hooks=[_undimmed]
        )

    def _parallel(self, metric: str) -> pn.pane.HoloViews:
        plot = parallel_coordinates(self.frame, [*self.params, metric], metric, self.theme)
        return pn.pane.HoloViews(plot, sizing_mode="stretch_width", name="parallel")

    def _best_rows(self, metric: str) -> pn.Column:
        best = self.frame.sort_values(metric, ascending=False, na_position="last")
        table = pn.widgets.Tabulator(
            best.head(BEST_ROWS)[[*self.params, *self.metrics]],
            disabled=True,
            show_index=False,
            sizing_mode="stretch_width",
        )
        return pn.Column(pn.pane.Markdown(f"### Best {BEST_ROWS} by {metric}"), table)

    # ------------------------------------------------------------------ opening a backtest

    def cell_params(self, x_label: str, y_label: str) -> dict[str, Any] | None:
        """The parameters of the row a heatmap cell shows, by the cell's axis labels."""
        cells = self._cells
        if cells.empty:
            return None
        xcol, ycol = cells.columns[0], cells.columns[1]
        hit = cells[(cells[xcol] == str(x_label)) & (cells[ycol] == str(y_label))]
        if hit.empty:
            return None
        return grid.params_of(self.frame, hit["row"].iloc[0], self.params)

    def _on_tap(self, x: Any = None, y: Any = None) -> None:
        if x is None or y is None:
            return
        params = self.cell_params(str(x), str(y))
        if params is not None:
            self.open_params(params)

    def open_params(self, params: Mapping[str, Any]) -> BacktestResult | None:
        """Run ``open_backtest`` for ``params`` and show the result below the heatmap."""
        described = describe_params(dict(params))
        if self.open_backtest is None:
            self.message.object = (
                f"**{described}**: opening a backtest needs an `open_backtest` callback."
            )
            return None
        self.message.object = f"Running the backtest for **{described}**…"
        self.opened.loading = True
        try:
            result = self.open_backtest(dict(params))
        except TradeTowerError as exc:
            self.message.object = f"**The backtest for {described} failed:** {exc}"
            return None
        except Exception as exc:  # a user's callback: report it on the page, not in a log
            self.message.object = (
                f"**The backtest for {described} failed:** {type(exc).__name__}: {exc}"
            )
            return None
        finally:
            self.opened.loading = False
        self.opened_params, self.opened_result = dict(params), result
        self.message.object = f"Opened the backtest for **{described}**."
        self.opened[:] = [
            result_view(result, self.bars, theme=self.theme, title=f"Backtest: {described}")
        ]
        return result

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout


def sweep_view(
    frame: pd.DataFrame | SweepRecord,
    open_backtest: OpenBacktest | None = None,
    **options: Any,
) -> SweepView:
    """The sweep explorer as a Panel object. ``frame`` is what ``simulator.sweep.sweep``
    returns (or a loaded ``SweepRecord``); ``open_backtest(params)`` backs the cell clicks."""
    return SweepView(frame, open_backtest=open_backtest, **options)
