"""The simulated exchange: numba kernels, drivers, the backtest engine, metrics."""

from __future__ import annotations

from typing import Any

from tradetower.numba_cache import configure_numba_cache

configure_numba_cache()


def __getattr__(name: str) -> Any:
    if name == "backtest":
        from simulator.engine import backtest

        return backtest
    if name == "SimConfig":
        from simulator.config import SimConfig

        return SimConfig
    if name == "BacktestResult":
        from simulator.result import BacktestResult

        return BacktestResult
    raise AttributeError(name)
