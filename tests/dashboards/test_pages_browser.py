"""The dashboards served for real and driven in headless Chromium (Playwright).

One server (in a thread) holds six saved runs and a sweep, built from real backtests; each test
opens pages, checks what a user would read, clicks, and leaves screenshots in
``test-artifacts/screenshots/``. The last test starts ``tradetower dashboard`` itself.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dash_data import GRID_RUNS, SMA_RUN, SWEEP_GRID, write_runs, write_sweep
from playwright.sync_api import Browser, Page, expect, sync_playwright

from dashboards.app import serve
from simulator.result import BacktestResult
from tradetower.cli_dashboard import open_sweep_backtest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = ROOT / "test-artifacts" / "screenshots"
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)
# Background of Panel's FAST template in each theme.
LIGHT_BACKGROUND = "rgb(255, 255, 255)"
DARK_BACKGROUND = "rgb(24, 24, 24)"

# Page coordinates of a categorical cell of the Bokeh plot whose title starts with ``title``.
CELL_JS = """([title, fx, fy]) => {
  const seen = new Set();
  const find = (view) => {
    if (!view || seen.has(view)) return null;
    seen.add(view);
    const text = view.model && view.model.title && view.model.title.text;
    if (view.frame && typeof text === "string" && text.startsWith(title)) return view;
    for (const child of view.child_views || []) {
      const hit = find(child);
      if (hit) return hit;
    }
    return null;
  };
  for (const root of Object.values(Bokeh.index)) {
    const plot = find(root);
    if (plot) {
      const box = plot.canvas_view.el.getBoundingClientRect();
      return [box.left + plot.frame.x_scale.compute(fx), box.top + plot.frame.y_scale.compute(fy)];
    }
  }
  return null;
}"""


# Each Bokeh plot on the page: its title and, per glyph, its type and number of data points.
PLOTS_JS = """() => {
  const out = [];
  const seen = new Set();
  const walk = (view) => {
    if (!view || seen.has(view)) return;
    seen.add(view);
    if (view.frame && view.model.title) {
      out.push({
        title: view.model.title.text,
        glyphs: view.model.renderers
          .filter((r) => r.glyph)
          .map((r) => [r.glyph.type, r.data_source.get_length()]),
      });
    }
    for (const child of view.child_views || []) walk(child);
  };
  for (const root of Object.values(Bokeh.index)) walk(root);
  return out;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(
    port: int, seconds: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


@dataclass
class Site:
    url: str
    runs_dir: Path
    sweeps_dir: Path
    runs: dict[str, BacktestResult]
    sweep: pd.DataFrame
    calls: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`")
    SHOTS.mkdir(parents=True, exist_ok=True)
    return CHROMIUM


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("dashboards")
    runs = write_runs(folder / "runs")
    table = write_sweep(folder / "sweeps" / "grid-sweep")
    port = _free_port()
    state = Site(f"http://127.0.0.1:{port}", folder / "runs", folder / "sweeps", runs, table)

    def opener(record: Any, params: dict[str, Any]) -> Any:
        state.calls.append(dict(params))
        return open_sweep_backtest(record, params)

    server = serve(
        state.runs_dir, state.sweeps_dir, port=port, show=False, threaded=True, open_backtest=opener
    )
    try:
        _wait_for_port(port, 30)
        yield state
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(chromium), args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1300, "height": 2400}, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    yield context.new_page()
    context.close()


def _open(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("canvas", timeout=WAIT_MS)


def _card(page: Page, metric: str) -> Any:
    return page.locator(f'[data-metric="{metric}"] .tt-value')


def _background(page: Page) -> str:
    return str(page.evaluate("() => getComputedStyle(document.body).backgroundColor"))


def test_a_run_page_shows_cards_plots_trades_and_exports_csv(site: Site, page: Page) -> None:
    result = site.runs["grid-20"]
    m = result.metrics
    _open(page, f"{site.url}/result?run=grid-20&theme=dark")
    expect(_card(page, "final_equity")).to_have_text(f"{m['final_equity']:,.2f}")
    expect(_card(page, "return_pct")).to_have_text(f"{m['return_pct']:+.2f}%")
    expect(_card(page, "max_drawdown_pct")).to_have_text(f"{m['max_drawdown_pct']:.2f}%")
    expect(_card(page, "n_trades")).to_have_text(str(len(result.trades)))
    trades = len(result.trades)
    expect(page.get_by_text(f"Trades ({trades})")).to_be_visible()
    expect(page.locator(".tabulator-page-counter")).to_have_text(f"Showing 1-15 of {trades} rows")
    assert page.locator(".tabulator-row").count() == 15
    plots = {p["title"]: p["glyphs"] for p in page.evaluate(PLOTS_JS)}
    fills = result.fills
    buys, sells = int((fills["side"] == 1).sum()), int((fills["side"] == -1).sum())
    levels = int((result.orders["type"] == "LIMIT").sum())
    candles = "ETH-BTC: price and fills (5,760 bars drawn as 30min candles)"
    assert set(plots) == {
        "Equity",
        "Drawdown",
        candles,
        f"Bot levels over time ({levels} resting orders)",
    }
    scatter = [n for kind, n in plots[candles] if kind == "Scatter"]
    assert scatter == [buys, sells] and buys > 0 and sells > 0
    segments = [
        n
        for kind, n in plots[f"Bot levels over time ({levels} resting orders)"]
        if kind == "Segment"
    ]
    assert sum(segments) == levels
    assert page.get_by_text("No candlesticks").count() == 0
    assert _background(page) == DARK_BACKGROUND
    page.screenshot(path=SHOTS / "result-dark.png")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download trades (CSV)").click()
    assert download.value.suggested_filename == "trades.csv"
    exported = pd.read_csv(io.StringIO(Path(download.value.path()).read_text()))
    assert len(exported) == trades
    assert list(exported.columns) == list(result.trades.columns)
    assert exported["pnl"].tolist() == result.trades["pnl"].tolist()
    assert exported["qty"].tolist() == result.trades["qty"].tolist()


def test_a_run_without_recorded_bars_says_so_and_the_theme_switch_works(
    site: Site, page: Page
) -> None:
    result = site.runs[SMA_RUN]
    _open(page, f"{site.url}/result?run={SMA_RUN}&theme=default")
    expect(_card(page, "final_equity")).to_have_text(f"{result.metrics['final_equity']:,.2f}")
    expect(page.get_by_text("did not record its data source")).to_be_visible()
    titles = sorted(p["title"] for p in page.evaluate(PLOTS_JS))
    assert titles == ["Bot levels over time (0 resting orders)", "Drawdown", "Equity"]
    assert _background(page) == LIGHT_BACKGROUND
    page.screenshot(path=SHOTS / "result-light-no-bars.png")

    page.locator("#theme-switch").click()
    page.wait_for_url("**theme=dark**")
    page.wait_for_selector("canvas")
    expect(_card(page, "final_equity")).to_have_text(f"{result.metrics['final_equity']:,.2f}")
    assert _background(page) == DARK_BACKGROUND
    page.screenshot(path=SHOTS / "result-switched-to-dark.png")


def _tick(page: Page, names: list[str]) -> None:
    for name in [*GRID_RUNS, SMA_RUN]:
        box = page.get_by_label(name, exact=True)
        if box.is_checked() != (name in names):
            box.click()


def test_the_comparison_shows_two_to_five_runs_and_refuses_one_or_six(
    site: Site, page: Page
) -> None:
    page.goto(f"{site.url}/compare?theme=default")
    compare = page.get_by_role("button", name="Compare", exact=True)
    headers = page.locator("table.tt-compare thead th[data-run]")
    error = page.get_by_text("Pick 2 to 5 runs to compare")

    _tick(page, ["grid-10"])
    compare.click()
    expect(error).to_contain_text("2 to 5 runs side by side; 1 was given")
    expect(headers).to_have_count(0)

    _tick(page, [*GRID_RUNS, SMA_RUN])
    compare.click()
    expect(error).to_contain_text("2 to 5 runs side by side; 6 were given")

    _tick(page, ["grid-10", SMA_RUN])
    compare.click()
    expect(headers).to_have_count(2)
    page.wait_for_selector("canvas")
    for name in ("grid-10", SMA_RUN):
        cell = page.locator(f'tr[data-metric="final_equity"] td[data-run="{name}"]')
        expect(cell).to_have_text(f"{site.runs[name].metrics['final_equity']:,.2f}")
    expect(error).to_have_count(0)
    page.screenshot(path=SHOTS / "compare-two-light.png")

    five = list(GRID_RUNS)
    _tick(page, five)
    compare.click()
    expect(headers).to_have_count(5)
    assert headers.all_inner_texts()[0].startswith("grid-10")
    trades = page.locator('tr[data-metric="n_trades"] td')
    expect(trades).to_have_text([str(site.runs[n].metrics["n_trades"]) for n in five])


def test_clicking_a_heatmap_cell_opens_that_backtest(site: Site, page: Page) -> None:
    _open(page, f"{site.url}/sweep?name=grid-sweep&theme=dark")
    page.get_by_label("trailing_up (fixed)").select_option("False")
    page.wait_for_timeout(500)
    xy = page.evaluate(CELL_JS, ["Heatmap", "20", "0.08"])
    assert xy is not None, "no heatmap on the page"
    site.calls.clear()
    page.mouse.click(*xy)
    expect(page.get_by_text("Opened the backtest for")).to_be_visible()
    assert site.calls == [{"grid_levels": 20, "low_price": 0.08, "trailing_up": False}]
    table = site.sweep
    row = table[(table.grid_levels == 20) & (table.low_price == 0.08) & ~table.trailing_up]
    expect(_card(page, "final_equity")).to_have_text(f"{row['final_equity'].item():,.2f}")
    assert set(site.calls[0]) == set(SWEEP_GRID)
    page.screenshot(path=SHOTS / "sweep-opened-dark.png")


def test_the_cli_serves_the_index_and_its_links(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    port = _free_port()
    command = [sys.executable, "-m", "tradetower", "dashboard", "--runs", str(site.runs_dir)]
    command += ["--sweeps", str(site.sweeps_dir), "--port", str(port), "--no-show"]
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [*command, "--theme", "light"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    context = browser.new_context(viewport={"width": 1300, "height": 1400})
    try:
        _wait_for_port(port, 60, server)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"http://127.0.0.1:{port}/")
        row = page.locator('tr[data-run="grid-30"]')
        expect(row).to_contain_text(f"{site.runs['grid-30'].metrics['final_equity']:,.2f}")
        expect(page.get_by_role("link", name="grid-sweep")).to_be_visible()
        assert _background(page) == LIGHT_BACKGROUND  # --theme light
        page.screenshot(path=SHOTS / "index-light.png")
        page.get_by_role("link", name="grid-30", exact=True).click()
        page.wait_for_url("**/result?run=grid-30**")
        page.wait_for_selector("canvas")
        final = f"{site.runs['grid-30'].metrics['final_equity']:,.2f}"
        expect(_card(page, "final_equity")).to_have_text(final)
    finally:
        context.close()
        server.send_signal(signal.SIGINT)
        try:
            code = server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
            raise
        finally:
            log.close()
    assert code == 0, (tmp_path / "server.log").read_text()
