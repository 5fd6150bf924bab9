"""The served dashboards: an index of saved runs and sweeps, a page per run, a comparison page
and the sweep explorer, each in a template with a dark/light switch.

Pages read their arguments from the URL: ``/result?run=NAME``, ``/compare?runs=A,B``,
``/sweep?name=NAME``, and ``theme=dark|default`` (Panel's names; the switch in the header sets it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import panel as pn

from dashboards.format import format_metric
from dashboards.store import RunStore, SweepRecord
from dashboards.theme import Theme, get_theme
from dashboards.views.compare import MAX_RESULTS, MIN_RESULTS, check_count, compare_view
from dashboards.views.result import result_view
from dashboards.views.sweep import sweep_view
from simulator.result import BacktestResult
from tradetower.errors import TradeTowerError

#: runs one combination of a saved sweep: ``opener(record, params) -> BacktestResult``
SweepOpener = Callable[[SweepRecord, dict[str, Any]], BacktestResult]
EXTENSIONS = ("tabulator",)


def _arg(name: str) -> str | None:
    """A URL query argument of the current session."""
    values = pn.state.session_args.get(name) if pn.state.session_args else None
    return values[0].decode() if values else None


def _session_theme(default: Theme) -> Theme:
    try:
        return get_theme(_arg("theme") or default.name)
    except TradeTowerError:
        return default


def _link(page: str, theme: Theme, **args: str) -> str:
    query = "&".join(f"{k}={quote(v)}" for k, v in {**args, "theme": theme.panel}.items())
    return f"{page}?{query}"


def _page(title: str, theme: Theme, *main: Any) -> pn.template.FastListTemplate:
    nav = pn.pane.HTML(
        f'<a href="{_link("/", theme)}" style="color:white;margin-right:16px">Runs &amp; sweeps</a>'
        f'<a href="{_link("compare", theme)}" style="color:white">Compare</a>',
        name="nav",
    )
    return pn.template.FastListTemplate(
        title=f"TradeTower · {title}",
        theme=theme.panel,
        theme_toggle=True,
        header=[nav],
        main=list(main),
        main_layout=None,
    )


def _error(message: str) -> pn.pane.Alert:
    return pn.pane.Alert(message, alert_type="danger", sizing_mode="stretch_width", name="error")


class Pages:
    """The page functions, each called once per browser session."""

    def __init__(
        self, store: RunStore, theme: str | Theme = "dark", opener: SweepOpener | None = None
    ) -> None:
        self.store = store
        self.theme = get_theme(theme)
        self.opener = opener

    def routes(self) -> dict[str, Callable[[], pn.template.FastListTemplate]]:
        return {
            "/": self.index,
            "result": self.result,
            "compare": self.compare,
            "sweep": self.sweep,
        }

    # ------------------------------------------------------------------ index

    def _runs_table(self, theme: Theme) -> str:
        rows = []
        for name in self.store.run_names():
            try:
                r = self.store.result(name)
            except TradeTowerError as exc:
                rows.append(
                    f"<tr><td>{escape(name)}</td><td colspan=4>{escape(str(exc))}</td></tr>"
                )
                continue
            rows.append(
                f'<tr data-run="{escape(name)}"><td><a href="{_link("result", theme, run=name)}">'
                f"{escape(name)}</a></td><td>{escape(r.strategy)}</td>"
                f"<td>{escape(', '.join(r.symbols))}</td>"
                f"<td>{format_metric('final_equity', r.metrics.get('final_equity'))}</td>"
                f"<td>{format_metric('return_pct', r.metrics.get('return_pct'))}</td></tr>"
            )
        if not rows:
            return f"<p>No saved runs in <code>{escape(str(self.store.runs_dir))}/</code> yet.</p>"
        head = "<tr><th>Run</th><th>Strategy</th><th>Symbols</th><th>Final equity</th>"
        return f"<table>{head}<th>Return</th></tr>{''.join(rows)}</table>"

    def _sweeps_list(self, theme: Theme) -> str:
        names = self.store.sweep_names()
        if not names:
            return f"<p>No sweeps in <code>{escape(str(self.store.sweeps_dir))}/</code> yet.</p>"
        items = "".join(
            f'<li><a href="{_link("sweep", theme, name=n)}">{escape(n)}</a></li>' for n in names
        )
        return f"<ul>{items}</ul>"

    def index(self) -> pn.template.FastListTemplate:
        theme = _session_theme(self.theme)
        css = (
            "table { border-collapse: collapse; } td, th { padding: 4px 12px; text-align: left; }"
            f" a {{ color: {theme.accent}; }}"
        )
        body = pn.pane.HTML(
            f"<h2>Backtests</h2>{self._runs_table(theme)}<h2>Sweeps</h2>{self._sweeps_list(theme)}",
            stylesheets=[css],
            sizing_mode="stretch_width",
            name="index",
        )
        return _page("Dashboards", theme, body)

    # ------------------------------------------------------------------ one run

    def result(self) -> pn.template.FastListTemplate:
        theme = _session_theme(self.theme)
        name = _arg("run")
        if not name:
            return _page("Backtest", theme, _error("No run given: open one from the index."))
        try:
            result = self.store.result(name)
            bars_note = None
            try:
                bars = self.store.bars(name)
            except TradeTowerError as exc:
                bars, bars_note = (
                    {},
                    f"**No candlesticks:** the recorded bars cannot be read: {exc}",
                )
            view = result_view(result, bars or None, theme=theme, title=name, bars_note=bars_note)
        except TradeTowerError as exc:
            return _page("Backtest", theme, _error(str(exc)))
        return _page(name, theme, view)

    # ------------------------------------------------------------------ comparison

    def compare(self) -> pn.template.FastListTemplate:
        theme = _session_theme(self.theme)
        names = self.store.run_names()
        wanted = [n for n in (_arg("runs") or "").split(",") if n]
        picker = pn.widgets.CheckBoxGroup(
            label="Runs", options=names, value=[n for n in wanted if n in names], inline=False
        )
        button = pn.widgets.Button(label="Compare", color="primary")
        output = pn.Column(sizing_mode="stretch_width", name="compare-output")

        def show(*_: Any) -> None:
            picked = list(picker.value)
            try:
                check_count(len(picked))
                runs = {n: self.store.result(n) for n in picked}
                output[:] = [compare_view(runs, theme=theme)]
            except TradeTowerError as exc:
                output[:] = [_error(f"Pick {MIN_RESULTS} to {MAX_RESULTS} runs to compare: {exc}")]

        button.on_click(show)
        if wanted:
            show()
        intro = pn.pane.Markdown(f"Tick {MIN_RESULTS} to {MAX_RESULTS} runs, then **Compare**.")
        return _page("Compare", theme, pn.Column(intro, picker, button), output)

    # ------------------------------------------------------------------ sweeps

    def sweep(self) -> pn.template.FastListTemplate:
        theme = _session_theme(self.theme)
        name = _arg("name")
        if not name:
            return _page("Sweep", theme, _error("No sweep given: open one from the index."))
        try:
            record = self.store.sweep(name)
            try:
                bars = self.store.sweep_bars(name)
            except TradeTowerError:
                bars = None
            opener = functools.partial(self.opener, record) if self.opener else None
            view = sweep_view(record, opener, bars=bars, theme=theme)
        except TradeTowerError as exc:
            return _page("Sweep", theme, _error(str(exc)))
        return _page(f"Sweep {name}", theme, view)


def serve(
    runs_dir: str | Path = "runs",
    sweeps_dir: str | Path = "sweeps",
    *,
    port: int = 5006,
    address: str = "127.0.0.1",
    theme: str = "dark",
    show: bool = True,
    open_backtest: SweepOpener | None = None,
    threaded: bool = False,
    verbose: bool = False,
) -> Any:
    """Serve the dashboards on ``address:port``. Blocks, unless ``threaded`` (then the returned
    thread's ``stop()`` ends the server). ``verbose`` prints the address once it is bound."""
    pn.extension(*EXTENSIONS)
    pages = Pages(RunStore(runs_dir, sweeps_dir), theme, open_backtest)
    return pn.serve(
        pages.routes(),
        port=port,
        address=address,
        websocket_origin=[f"{address}:{port}", f"localhost:{port}"],
        show=show,
        threaded=threaded,
        title="TradeTower",
        verbose=verbose,
    )
