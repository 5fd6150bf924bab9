"""The reference grid written as a plain-Python strategy: callbacks and ``ctx.place``.

The same decisions as :mod:`strategies.simple_grid` (whose kernel the compiled path runs), so
that the plain-Python driver path can be timed doing the same work: at start, buy limits wait in
the cells below the level nearest the price and the cells above are bought at market; a filled
buy places its sell one level up, a filled sell places its buy back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tradetower import kernel_abi as K
from tradetower.strategy import Event, Strategy, StrategyContext

MARKET_TAG = -1


class PyGrid(Strategy):
    name = "py_grid"

    def __init__(self, low_price: float, high_price: float, grid_levels: int, investment: float):
        levels = np.linspace(low_price, high_price, grid_levels)
        self.levels: list[float] = [float(x) for x in levels]
        self.qty: list[float] = [float(q) for q in (investment / (grid_levels - 1)) / levels[:-1]]
        self.empty = 0
        self.cycles = 0

    def on_start(self, ctx: StrategyContext) -> None:
        price = ctx.price()
        levels, qty = self.levels, self.qty
        empty = 0
        for j in range(1, len(levels)):
            if abs(levels[j] - price) < abs(levels[empty] - price):
                empty = j
        self.empty = empty
        to_buy = 0.0
        for k in range(len(levels) - 1):
            if k < empty:
                ctx.place(K.BUY, qty[k], type=K.LIMIT, price=levels[k], tag=k)
            else:
                to_buy += qty[k]
        if to_buy > 0:
            ctx.place(K.BUY, to_buy, type=K.MARKET, tag=MARKET_TAG)

    def on_fill(self, ctx: StrategyContext, event: Event) -> None:
        if event.remaining > 0:
            return
        levels, qty = self.levels, self.qty
        k = event.tag
        if k == MARKET_TAG:
            for j in range(self.empty, len(levels) - 1):
                ctx.place(K.SELL, qty[j], type=K.LIMIT, price=levels[j + 1], tag=j)
        elif event.side > 0:
            ctx.place(K.SELL, qty[k], type=K.LIMIT, price=levels[k + 1], tag=k)
        else:
            self.cycles += 1
            ctx.place(K.BUY, qty[k], type=K.LIMIT, price=levels[k], tag=k)

    def metrics(self) -> dict[str, Any]:
        return {"grid_cycles": self.cycles}
