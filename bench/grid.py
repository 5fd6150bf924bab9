"""Case 2: a 50-level spot grid spanning ±10% around the first close, 0.1% fees.

Five implementations of the same grid and the same fill rules (those of our simulator):

* ours, compiled path: :class:`strategies.SimpleGrid`, ``mode="compiled"`` (the kernel runs
  inside the simulator's compiled loop);
* ours, kernel from Python: the same ``SimpleGrid`` with ``mode="python"`` (the simulator
  returns to Python at each event and the kernel is called from there);
* ours, plain-Python callbacks: :class:`bench.py_grid.PyGrid` (``on_fill`` and ``ctx.place``);
* vectorbt ``Portfolio.from_order_func`` with a flexible order function;
* the floor: one hand-written ``@njit`` function that walks the bars and fills the grid.

Fill rules shared by all: the grid starts at the close of bar 0 (levels ``linspace(low, high,
N)``; the N-1 cells below the level nearest that close wait to buy at their lower level, the
cells above are bought in one market order at the open of bar 1 and then wait to sell at their
upper level). An order placed while bar t is handled acts from bar t+1. A buy limit fills when the
bar's low reaches it, at its price or at the open when the bar opens through it; a sell limit
likewise on the high. A filled buy places its sell one level up, a filled sell its buy back.
Fees are a fraction of the traded value. Our runs leave the position open at the end
(``close_at_end=False``) as the other peers do, so fill counts and final equity compare exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from bench.py_grid import PyGrid

GRID_LEVELS = 50
GRID_WIDTH = 0.10
INVESTMENT = 1_000.0
FEES = 0.001
CASH = 10_000.0


@dataclass(frozen=True)
class GridSpec:
    low: float
    high: float
    levels: int = GRID_LEVELS
    investment: float = INVESTMENT
    fees: float = FEES
    cash: float = CASH

    @classmethod
    def around(cls, first_close: float, width: float = GRID_WIDTH, **kw: Any) -> GridSpec:
        return cls(low=first_close * (1.0 - width), high=first_close * (1.0 + width), **kw)

    def level_prices(self) -> np.ndarray:
        # Exactly as SimpleGrid computes them, so ties in "nearest level" break the same way.
        return np.linspace(self.low, self.high, self.levels)

    def cell_qty(self) -> np.ndarray:
        return (self.investment / (self.levels - 1)) / self.level_prices()[:-1]


def nearest_level(levels: np.ndarray, price: float) -> int:
    """The level the start price sits on (first of equals), as the grid kernel picks it."""
    empty = 0
    for j in range(1, levels.shape[0]):
        if abs(levels[j] - price) < abs(levels[empty] - price):
            empty = j
    return empty


# --------------------------------------------------------------------------- the floor


@njit(cache=True)
def grid_loop_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    levels: np.ndarray,
    qty: np.ndarray,
    fee: float,
    cash0: float,
) -> tuple[int, float, float, int]:
    """The hand-written floor: (fills, cash, position, completed cycles)."""
    n = close.shape[0]
    m = levels.shape[0] - 1
    side = np.zeros(m, dtype=np.int64)  # +1 waits to buy at levels[k], -1 to sell at levels[k+1]
    placed = np.zeros(m, dtype=np.int64)
    price = close[0]
    empty = 0
    for j in range(1, m + 1):
        if abs(levels[j] - price) < abs(levels[empty] - price):
            empty = j
    to_buy = 0.0
    for k in range(m):
        if k < empty:
            side[k] = 1
        else:
            to_buy += qty[k]
    cash = cash0
    pos = 0.0
    fills = 0
    cycles = 0
    bid = levels[empty - 1] if empty > 0 else -np.inf
    ask = np.inf
    for t in range(1, n):
        if t == 1 and to_buy > 0.0:
            px = open_[1]
            value = to_buy * px
            cash -= value + value * fee
            pos += to_buy
            fills += 1
            for k in range(empty, m):
                side[k] = -1
                placed[k] = 1
            if empty < m:
                ask = levels[empty + 1]
        lo = low[t]
        hi = high[t]
        if lo > bid and hi < ask:
            continue
        o = open_[t]
        hit = False
        for k in range(m):
            s = side[k]
            if s == 0 or placed[k] >= t:
                continue
            if s > 0:
                lvl = levels[k]
                if lo <= lvl:
                    px = o if o <= lvl else lvl
                    value = qty[k] * px
                    cash -= value + value * fee
                    pos += qty[k]
                    side[k] = -1
                    placed[k] = t
                    fills += 1
                    hit = True
            else:
                lvl = levels[k + 1]
                if hi >= lvl:
                    px = o if o >= lvl else lvl
                    value = qty[k] * px
                    cash += value - value * fee
                    pos -= qty[k]
                    side[k] = 1
                    placed[k] = t
                    fills += 1
                    cycles += 1
                    hit = True
        if hit:
            bid = -np.inf
            ask = np.inf
            for k in range(m):
                if side[k] > 0:
                    bid = max(bid, levels[k])
                elif side[k] < 0:
                    ask = min(ask, levels[k + 1])
    return fills, cash, pos, cycles


def run_floor(bars: pd.DataFrame, spec: GridSpec) -> tuple[int, float, int]:
    """(fills, final equity marked at the last close, cycles)."""
    fills, cash, pos, cycles = grid_loop_nb(
        bars["open"].to_numpy(),
        bars["high"].to_numpy(),
        bars["low"].to_numpy(),
        bars["close"].to_numpy(),
        spec.level_prices(),
        spec.cell_qty(),
        spec.fees,
        spec.cash,
    )
    return int(fills), float(cash + pos * bars["close"].iloc[-1]), int(cycles)


# --------------------------------------------------------------------------- ours


def run_ours(bars: pd.DataFrame, spec: GridSpec, how: str) -> tuple[int, float, float, int]:
    """(fills, final equity, core seconds, cycles) for ``how`` in compiled / kernel-python /
    py-callbacks."""
    from simulator import backtest
    from strategies import SimpleGrid

    strategy: Any
    if how == "py-callbacks":
        strategy = PyGrid(spec.low, spec.high, spec.levels, spec.investment)
        mode = "python"
    else:
        strategy = SimpleGrid(
            low_price=spec.low,
            high_price=spec.high,
            grid_levels=spec.levels,
            investment=spec.investment,
        )
        mode = "compiled" if how == "compiled" else "python"
    r = backtest(strategy, bars, fees=spec.fees, cash=spec.cash, mode=mode, close_at_end=False)
    m = r.metrics
    return (
        int(m["n_fills"]),
        float(m["final_equity"]),
        float(m["elapsed_ms"]) / 1e3,
        int(m.get("grid_cycles", 0)),
    )


# --------------------------------------------------------------------------- vectorbt


def run_vectorbt(bars: pd.DataFrame, spec: GridSpec, stats: bool = False) -> tuple[int, float]:
    """(fills, final equity) through ``Portfolio.from_order_func`` (flexible). Give ``bars`` a
    tz-naive index (:func:`bench.data.naive`): vectorbt is slow with a tz-aware one.
    ``stats``: also compute vectorbt's report (``pf.stats()``), as our end-to-end call computes
    its metrics."""
    import vectorbt as vbt

    from bench.vbt_grid import grid_flex_order_nb

    levels = spec.level_prices()
    qty = spec.cell_qty()
    close = bars["close"]
    empty = nearest_level(levels, float(close.iloc[0]))
    m = levels.shape[0] - 1
    side = np.zeros(m, dtype=np.int64)
    side[:empty] = 1
    to_buy = float(qty[empty:].sum()) if empty < m else 0.0
    bid = levels[empty - 1] if empty > 0 else -np.inf
    state = np.array([bid, np.inf, float(empty), to_buy, 0.0])
    pf = vbt.Portfolio.from_order_func(
        close,
        grid_flex_order_nb,
        bars["open"].to_numpy(),
        bars["high"].to_numpy(),
        bars["low"].to_numpy(),
        levels,
        qty,
        spec.fees,
        side,
        np.zeros(m, dtype=np.int64),
        state,
        np.zeros(m + 1, dtype=np.int64),
        np.zeros(m + 1),
        flexible=True,
        init_cash=spec.cash,
        freq="1min",
    )
    if stats:
        report = pf.stats()
        return int(pf.orders.count()), float(report["End Value"])
    return int(pf.orders.count()), float(pf.final_value())
