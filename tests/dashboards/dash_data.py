"""Real backtests on the shipped ETH-BTC sample, saved the way the engine and the sweep runner
save them, for the dashboard tests (computed once per test session)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
from conftest import real_file

from simulator import backtest
from simulator.result import BacktestResult
from strategies import Grid, SmaCross
from tradetower.domain import read_bars

SYMBOL = "ETH-BTC"
BASE = {"high_price": 0.11, "investment": 1000.0}
SIM = {"fees": 0.001}
SWEEP_GRID = {"grid_levels": [10, 20, 30], "low_price": [0.07, 0.08], "trailing_up": [True, False]}
SWEEP_METRICS = [
    "final_equity",
    "return_pct",
    "max_drawdown_pct",
    "n_fills",
    "n_orders",
    "fees_paid",
    "exposure_pct",
]
#: saved runs: five grids that record their bars file, one SMA cross that records nothing
GRID_RUNS = {f"grid-{n}": n for n in (10, 20, 30, 40, 50)}
SMA_RUN = "sma-cross"


def bars_file() -> Path:
    return real_file("binance_ETH-BTC_5m_2018-01.parquet")


@cache
def bars() -> pd.DataFrame:
    return read_bars(bars_file())


@cache
def grid_run(levels: int, low_price: float = 0.07, trailing_up: bool = True) -> BacktestResult:
    bot = Grid(grid_levels=levels, low_price=low_price, trailing_up=trailing_up, **BASE)
    return backtest(bot, {SYMBOL: bars()}, **SIM)


@cache
def sma_run() -> BacktestResult:
    return backtest(SmaCross(fast=10, slow=50), {SYMBOL: bars()}, **SIM)


def with_recorded_data(result: BacktestResult) -> BacktestResult:
    """A copy whose config records its bars file (the field asked of the engine)."""
    config = {**result.config, "data": {SYMBOL: {"path": str(bars_file())}}}
    return BacktestResult(
        strategy=result.strategy,
        params=result.params,
        symbols=result.symbols,
        metrics=result.metrics,
        orders=result.orders,
        fills=result.fills,
        trades=result.trades,
        equity=result.equity,
        positions=result.positions,
        config=config,
    )


def write_runs(folder: Path) -> dict[str, BacktestResult]:
    runs = {name: with_recorded_data(grid_run(n)) for name, n in GRID_RUNS.items()}
    runs[SMA_RUN] = sma_run()
    for name, result in runs.items():
        result.save(folder / name)
    return runs


def sweep_table() -> pd.DataFrame:
    """One row per combination (``combo``, parameters, metrics), each a backtest's figures."""
    rows = []
    combo = 0
    for levels in SWEEP_GRID["grid_levels"]:
        for low in SWEEP_GRID["low_price"]:
            for trailing in SWEEP_GRID["trailing_up"]:
                m = grid_run(int(levels), float(low), bool(trailing)).metrics
                params = {"grid_levels": levels, "low_price": low, "trailing_up": trailing}
                rows.append({"combo": combo, **params, **{k: float(m[k]) for k in SWEEP_METRICS}})
                combo += 1
    return pd.DataFrame(rows)


def write_sweep(folder: Path) -> pd.DataFrame:
    """A sweep folder as the sweep runner writes it: results.parquet and sweep.json."""
    folder.mkdir(parents=True, exist_ok=True)
    table = sweep_table()
    table.to_parquet(folder / "results.parquet", index=False)
    meta: dict[str, Any] = {
        "strategy": "grid",
        "params": list(SWEEP_GRID),
        "metrics": SWEEP_METRICS,
        "base": BASE,
        "space": {k: list(v) for k, v in SWEEP_GRID.items()},
        "data": {"path": str(bars_file()), "symbols": [SYMBOL], "bars": len(bars())},
        "method": "grid",
        "seed": 0,
        "objective": "final_equity",
        "sim": {**SIM, "symbol": SYMBOL, "instrument": None},
    }
    (folder / "sweep.json").write_text(json.dumps(meta, indent=2))
    return table
