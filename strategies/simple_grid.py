"""A minimal spot grid: the engine's reference resting-order strategy.

Arithmetic levels from ``low`` to ``high``; each of the N-1 cells holds one order. At start the
cells below the level nearest the price wait to buy at their lower level; the cells above are
bought at market and wait to sell at their upper level. A filled buy places its sell one level
up, a filled sell places its buy back: each round trip earns the step less fees. The full bot,
with trailing, stops and sizing rules, is :mod:`strategies.grid`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numba import njit
from pydantic import Field, model_validator

from tradetower import kernel_abi as K
from tradetower.config import FrozenConfig
from tradetower.domain.bars import MarketData
from tradetower.jit_options import NO_NRT
from tradetower.kernel_signature import KERNEL_SIGNATURE
from tradetower.kernel_tools import place_nb
from tradetower.strategy import KernelStrategy

MARKET_TAG = -1.0
# state layout: [cycles, started, levels (N), qty per cell (N-1)]
S_CYCLES = 0
S_HEAD = 2


class SimpleGridConfig(FrozenConfig):
    low_price: float = Field(gt=0)
    high_price: float = Field(gt=0)
    grid_levels: int = Field(default=10, ge=3, le=200)
    investment: float = Field(default=1_000.0, gt=0)
    """Quote spread evenly over the cells."""

    @model_validator(mode="after")
    def _range(self) -> SimpleGridConfig:
        if self.low_price >= self.high_price:
            raise ValueError(
                f"low_price ({self.low_price}) must be below high_price ({self.high_price})"
            )
        return self


@njit(KERNEL_SIGNATURE, cache=True, **NO_NRT)
def simple_grid_on_event_nb(params, state, event, actions):  # type: ignore[no-untyped-def]
    n_levels = int(params[2])
    levels = state[S_HEAD : S_HEAD + n_levels]
    qty = state[S_HEAD + n_levels : S_HEAD + 2 * n_levels - 1]
    et = event[K.E_TYPE]
    inst = 0
    n = 0
    if et == K.EV_START:
        price = event[K.E_PRICE]
        empty = 0
        for j in range(1, n_levels):
            if abs(levels[j] - price) < abs(levels[empty] - price):
                empty = j
        to_buy = 0.0
        for k in range(n_levels - 1):
            if k < empty:
                n = place_nb(actions, n, inst, 1.0, K.LIMIT, levels[k], qty[k], k, False, False)
            else:
                to_buy += qty[k]
        if to_buy > 0:
            n = place_nb(actions, n, inst, 1.0, K.MARKET, np.nan, to_buy, MARKET_TAG, False, False)
        state[1] = empty
        return n
    if et != K.EV_FILL or event[K.E_REMAINING] > 0:
        return 0
    tag = event[K.E_TAG]
    if tag == MARKET_TAG:
        for k in range(int(state[1]), n_levels - 1):
            n = place_nb(actions, n, inst, -1.0, K.LIMIT, levels[k + 1], qty[k], k, False, False)
        return n
    k = int(tag)
    if event[K.E_SIDE] > 0:
        return place_nb(actions, 0, inst, -1.0, K.LIMIT, levels[k + 1], qty[k], k, False, False)
    state[S_CYCLES] += 1.0
    return place_nb(actions, 0, inst, 1.0, K.LIMIT, levels[k], qty[k], k, False, False)


class SimpleGrid(KernelStrategy):
    """Minimal spot grid (see module docstring)."""

    name = "simple_grid"
    Config: ClassVar[type[SimpleGridConfig]] = SimpleGridConfig
    kernel = simple_grid_on_event_nb
    SWEEP_EXTRAS: ClassVar[dict[str, int]] = {"grid_cycles": S_CYCLES}

    def __init__(self, config: SimpleGridConfig | None = None, **fields: Any) -> None:
        super().__init__()
        self.config = config if config is not None else SimpleGridConfig.parse(fields)

    @property
    def params(self) -> np.ndarray:
        c = self.config
        return np.array([c.low_price, c.high_price, float(c.grid_levels), c.investment])

    def levels(self) -> np.ndarray:
        c = self.config
        return np.linspace(c.low_price, c.high_price, c.grid_levels)

    def initial_state(self, data: MarketData) -> np.ndarray:
        levels = self.levels()
        per_cell = self.config.investment / (self.config.grid_levels - 1)
        qty = per_cell / levels[:-1]
        return np.concatenate([np.zeros(S_HEAD), levels, qty])

    def metrics(self) -> dict[str, Any]:
        return {"grid_cycles": int(self.state[S_CYCLES]) if self.state.size else 0}
