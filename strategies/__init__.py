"""Built-in strategies. Looked up by name without importing them (kernels compile on import)."""

from __future__ import annotations

import importlib
from typing import Any

REGISTRY: dict[str, tuple[str, str, str]] = {
    "sma_cross": (
        "strategies.sma_cross",
        "SmaCross",
        "Moving-average crossover, long-only or long/short",
    ),
    "simple_grid": (
        "strategies.simple_grid",
        "SimpleGrid",
        "Minimal spot grid of resting limit orders",
    ),
    "grid": ("strategies.grid", "Grid", "Spot grid: trailing up/down, pump protection, SL/TP"),
    "dca": ("strategies.dca", "Dca", "Dollar-cost averaging with a safety-order ladder (spot)"),
    "dca_futures": (
        "strategies.dca_futures",
        "DcaFutures",
        "DCA on futures with leverage and liquidation buffer",
    ),
    "combo": ("strategies.combo", "Combo", "Futures: DCA entries below, grid exits above"),
    "futures_grid": (
        "strategies.futures_grid",
        "FuturesGrid",
        "Futures grid: LONG, SHORT or NEUTRAL, with liquidation buffer",
    ),
    "twap": ("strategies.twap", "Twap", "Time-weighted execution of a base quantity in slices"),
    "btd": ("strategies.btd", "Btd", "Buy the dip: spot grid with investment and profit in base"),
    "loop": ("strategies.loop", "Loop", "Spot grid around a fixed entry, no stop loss"),
}
"""name → (module, class, one-line summary); `tradetower strategies` lists it."""


def strategy_class(name: str) -> Any:
    """The class registered under ``name``; a clear error lists the known names."""
    from tradetower.errors import ConfigError

    try:
        module, cls, _ = REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError("strategy", f"unknown strategy {name!r}; known: {known}") from None
    return getattr(importlib.import_module(module), cls)


def __getattr__(name: str) -> Any:
    for module, cls, _ in REGISTRY.values():
        if cls == name:
            return getattr(importlib.import_module(module), cls)
    raise AttributeError(name)
