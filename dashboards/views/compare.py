"""Two to five runs side by side: a metrics table, returns and drawdowns overlaid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import holoviews as hv  # type: ignore[import-untyped]
import pandas as pd
import panel as pn
from panel.viewable import Viewer

from dashboards import plots
from dashboards.format import COMPARE_METRICS, describe_params, format_metric
from dashboards.theme import Theme, get_theme
from simulator.result import BacktestResult
from tradetower.errors import ConfigError

MIN_RESULTS = 2
MAX_RESULTS = 5


def check_count(n: int) -> None:
    """Refuse a comparison of fewer than 2 or more than 5 runs, saying how many were given."""
    if not MIN_RESULTS <= n <= MAX_RESULTS:
        raise ConfigError(
            "results",
            f"a comparison shows {MIN_RESULTS} to {MAX_RESULTS} runs side by side; "
            f"{n} {'was' if n == 1 else 'were'} given",
        )


def labelled(
    results: Sequence[BacktestResult] | Mapping[str, BacktestResult],
    labels: Sequence[str] | None = None,
) -> dict[str, BacktestResult]:
    """Results keyed by a unique label (the mapping's keys, ``labels``, or ``1. grid``...)."""
    if isinstance(results, Mapping):
        return {str(k): v for k, v in results.items()}
    items = list(results)
    if labels is None:
        labels = [f"{i + 1}. {r.strategy}" for i, r in enumerate(items)]
    if len(labels) != len(items) or len(set(labels)) != len(labels):
        raise ConfigError("labels", f"give {len(items)} distinct labels, one per result")
    return dict(zip(labels, items, strict=True))


def metrics_table(runs: Mapping[str, BacktestResult]) -> pd.DataFrame:
    """Formatted metrics: one row per metric any run has, one column per run."""
    rows = {}
    for spec in COMPARE_METRICS:
        if any(spec.key in r.metrics for r in runs.values()):
            rows[spec.label] = {
                label: format_metric(spec.key, r.metrics.get(spec.key)) for label, r in runs.items()
            }
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(runs))


def distinguishing_params(runs: Mapping[str, BacktestResult]) -> dict[str, dict[str, Any]]:
    """Each run's parameters worth reading side by side: those that differ between runs of one
    strategy (all set ones when the strategies differ); unset (``None``) ones are left out."""
    sets = {
        label: {k: v for k, v in r.params.items() if v is not None} for label, r in runs.items()
    }
    if len({r.strategy for r in runs.values()}) > 1:
        return sets
    keys = {k for p in sets.values() for k in p}
    differ = {k for k in keys if len({repr(p.get(k)) for p in sets.values()}) > 1}
    return {label: {k: v for k, v in p.items() if k in differ} for label, p in sets.items()}


def _table_html(runs: Mapping[str, BacktestResult], theme: Theme) -> pn.pane.HTML:
    keys = {spec.label: spec.key for spec in COMPARE_METRICS}
    table = metrics_table(runs)
    params = distinguishing_params(runs)
    head = "".join(
        f'<th data-run="{escape(label)}">{escape(label)}'
        f'<div class="tt-sub">{escape(r.strategy)}: '
        f"{escape(describe_params(params[label]) or 'same parameters')}</div></th>"
        for label, r in runs.items()
    )
    body = "".join(
        f'<tr data-metric="{escape(keys[str(metric)])}"><th>{escape(str(metric))}</th>'
        + "".join(
            f'<td data-run="{escape(str(label))}">{escape(str(value))}</td>'
            for label, value in row.items()
        )
        + "</tr>"
        for metric, row in table.iterrows()
    )
    css = f"""
table.tt-compare {{ border-collapse: collapse; color: {theme.text}; width: 100%; }}
.tt-compare th, .tt-compare td {{ padding: 4px 10px; border-bottom: 1px solid {theme.muted}44;
  text-align: right; font-variant-numeric: tabular-nums; vertical-align: top; }}
.tt-compare tbody th {{ text-align: left; color: {theme.muted}; font-weight: 500; }}
.tt-sub {{ color: {theme.muted}; font-size: 11px; font-weight: 400; max-width: 260px; }}
"""
    return pn.pane.HTML(
        f'<table class="tt-compare"><thead><tr><th></th>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>",
        stylesheets=[css],
        sizing_mode="stretch_width",
        name="compare-table",
    )


def _overlay(runs: Mapping[str, BacktestResult], theme: Theme, drawdown: bool) -> hv.Overlay:
    curves = []
    for (label, r), color in zip(runs.items(), theme.series, strict=False):
        equity = r.equity
        values = plots.drawdown_pct(equity) if drawdown else (equity / equity.iloc[0] - 1) * 100
        shown = plots.thin(values)
        frame = pd.DataFrame({"time": plots.naive_utc(shown.index), "pct": shown.to_numpy()})
        dim = hv.Dimension("pct", label="Drawdown (%)" if drawdown else "Return (%)")
        curves.append(
            hv.Curve(frame, plots.TIME, dim, label=label).opts(
                color=color, line_width=2, tools=["hover"], padding=plots.PAD
            )
        )
    title = "Drawdown" if drawdown else "Return since start"
    return hv.Overlay(curves).opts(
        title=title, responsive=True, height=300, legend_position="top_left"
    )


class CompareView(Viewer):
    def __init__(
        self,
        results: Sequence[BacktestResult] | Mapping[str, BacktestResult],
        labels: Sequence[str] | None = None,
        *,
        theme: str | Theme = "dark",
    ) -> None:
        super().__init__()
        check_count(len(results))
        self.runs = labelled(results, labels)
        self.theme = get_theme(theme)
        self._layout = pn.Column(
            pn.pane.Markdown(f"## Comparing {len(self.runs)} runs"),
            _table_html(self.runs, self.theme),
            pn.pane.HoloViews(
                _overlay(self.runs, self.theme, drawdown=False), sizing_mode="stretch_width"
            ),
            pn.pane.HoloViews(
                _overlay(self.runs, self.theme, drawdown=True), sizing_mode="stretch_width"
            ),
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout


def compare_view(
    results: Sequence[BacktestResult] | Mapping[str, BacktestResult],
    labels: Sequence[str] | None = None,
    *,
    theme: str | Theme = "dark",
) -> CompareView:
    """2 to 5 results side by side, as a Panel object (a mapping's keys label the columns)."""
    return CompareView(results, labels, theme=theme)
