"""SMA crossover: the engine's reference signal strategy.

The fast and slow moving averages are computed vectorised up front; each crossing reaches the
kernel as a signal at the close of its bar (+1 fast crosses above slow, -1 below), and the
resulting market orders fill at the next bar's open. Long-only by default; ``reverse`` goes
long or short on every crossing (needs a margin instrument).

``style="backtesting.py"`` reproduces backtesting.py's own ``SmaCross`` example bar for bar (run
it with ``compat="backtesting.py"``): its SMA is pandas' rolling mean, whose rounding decides
crossings where the two averages are exactly equal, and it answers *every* crossing with
``position.close(); buy()`` (or ``sell()``), so a crossing in the direction already held (the
averages touched without crossing in between) closes the position and enters again at the
current equity. The default style keeps such a position and uses a cumulative-sum SMA.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from numba import njit
from pydantic import Field, model_validator

from tradetower import kernel_abi as K
from tradetower.config import FrozenConfig
from tradetower.domain.bars import MarketData
from tradetower.domain.instrument import Instrument
from tradetower.errors import ConfigError
from tradetower.jit_options import NO_NRT
from tradetower.kernel_signature import KERNEL_SIGNATURE
from tradetower.kernel_tools import place_nb
from tradetower.strategy import KernelStrategy


class SmaCrossConfig(FrozenConfig):
    fast: int = Field(default=10, ge=1, le=10_000)
    """Bars in the fast moving average."""
    slow: int = Field(default=50, ge=2, le=100_000)
    """Bars in the slow moving average."""
    reverse: bool = False
    """False: long-only (buy on a golden cross, sell on a death cross). True: long/short."""
    size: float = Field(default=1.0, gt=0, le=1)
    """Fraction of what the account can afford that each entry uses."""
    style: Literal["tradetower", "backtesting.py"] = "tradetower"
    """backtesting.py: its SMA arithmetic, and close-and-re-enter on a repeated crossing."""

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SmaCrossConfig:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be below slow ({self.slow})")
        return self


def sma(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average; NaN until ``window`` values are in. The reference that
    :func:`sma_crossings_nb` (what ``signals`` runs) is tested against."""
    out = np.full(values.shape[0], np.nan)
    if window > values.shape[0]:
        return out
    csum = np.cumsum(np.r_[0.0, values])
    out[window - 1 :] = (csum[window:] - csum[:-window]) / window
    return out


def sma_rolling(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average as pandas' ``rolling(window).mean()`` computes it (backtesting.py's
    ``SMA``): the same floats, so exact ties between two averages come out the same way."""
    arr = np.asarray(values, dtype=np.float64)
    if window > arr.shape[0]:
        return np.full(arr.shape[0], np.nan)
    out: np.ndarray = pd.Series(arr).rolling(window).mean().to_numpy(dtype=np.float64)
    return out


BLOCK = 1024
"""Bars :func:`sma_crossings_nb` takes at a time: its buffers (16 kB) stay in L1."""


@njit(cache=True)
def sma_crossings_nb(close: np.ndarray, fast: int, slow: int, out: np.ndarray) -> None:
    """``crossings(sma(close, fast), sma(close, slow))`` into ``out``: the same floats (one
    running sum, as ``np.cumsum``; each average its difference over the window) without the
    two averages or the running sums as full arrays.

    A block of bars at a time, in three passes over buffers that stay in L1:
    1. the running sums, one after another (a chain of additions, 3 cycles a bar);
    2. the side of slow that fast is on (+1 above, -1 below, 0 equal or undefined), from
       products with the windows' reciprocals, each within 2 ulp of its quotient. Without a
       chain this pass vectorises. Where the two come within 1e-14 of each other (ties, NaN)
       the side is left 0 and counted; those few are then taken from the exact quotients;
    3. the crossings: a side that is the opposite of the bar before's.

    The one-pass loop this replaced did all three per bar, 1.3 ms for a year of minutes; this
    takes 0.9 when ``close`` is contiguous (``MarketData.closes``, a view of the bars). A
    strided column (every field of every bar streamed) is memory-bound at about 1.4 ms."""
    n = close.shape[0]
    both = max(fast, slow)  # bars until both averages are defined
    # buf[both + j]: the running sum through bar base + j; the both before it, the block's past.
    buf = np.zeros(both + BLOCK)
    sides = np.zeros(BLOCK + 1, dtype=np.int64)  # sides[1 + j]: bar base + j's; [0] the bar before
    inv_f = 1.0 / fast
    inv_s = 1.0 / slow
    running = 0.0
    base = 0
    while base < n:
        m = min(BLOCK, n - base)
        for j in range(m):
            running = running + close[base + j]
            buf[both + j] = running
        # Views, so that every index below is a plain offset: the loop then vectorises.
        now = buf[both : both + m]
        back_f = buf[both - fast : both - fast + m]
        back_s = buf[both - slow : both - slow + m]
        side = sides[1 : 1 + m]
        unsure = 0
        for j in range(m):
            f = (now[j] - back_f[j]) * inv_f
            s = (now[j] - back_s[j]) * inv_s
            gap = f - s
            tol = 1e-14 * (abs(f) + abs(s))
            up = gap > tol
            down = gap < -tol
            side[j] = np.int64(up) - np.int64(down)
            unsure += np.int64(not (up or down))
        defined = min(max(0, both - 1 - base), m)  # the block's first bar with both averages
        side[:defined] = 0
        if unsure > 0:  # a tie, too close to call from the products, or NaN
            for j in range(defined, m):
                if side[j] == 0:
                    f = (now[j] - back_f[j]) / fast
                    s = (now[j] - back_s[j]) / slow
                    side[j] = 1 if f > s else (-1 if f < s else 0)
        for j in range(m):
            after = sides[1 + j]
            out[base + j] = after if sides[j] + after == 0 else 0
        sides[0] = sides[m]
        for j in range(both):  # forwards: safe when the two overlap (a window over BLOCK)
            buf[j] = buf[m + j]
        base += m


def crossings(fast: np.ndarray, slow: np.ndarray) -> np.ndarray:
    """+1 where ``fast`` crosses above ``slow``, -1 where below, else 0 (strict both sides)."""
    codes = np.zeros(fast.shape[0], dtype=np.int64)
    prev_below = fast[:-1] < slow[:-1]
    prev_above = fast[:-1] > slow[:-1]
    codes[1:][prev_below & (fast[1:] > slow[1:])] = 1
    codes[1:][prev_above & (fast[1:] < slow[1:])] = -1
    return codes


@njit(KERNEL_SIGNATURE, cache=True, **NO_NRT)
def sma_cross_on_event_nb(params, state, event, actions):  # type: ignore[no-untyped-def]
    if event[K.E_TYPE] != K.EV_SIGNAL:
        return 0
    reverse = params[2] > 0
    size = params[3]
    # backtesting.py style: a crossing in the direction already held closes and re-enters.
    reenter = params[4] > 0
    inst = int(event[K.E_INST])
    pos = event[K.E_POS_QTY]
    code = event[K.E_CODE]
    n = 0
    if code > 0:
        if pos < 0 or (reenter and pos > 0):
            n = place_nb(
                actions, n, inst, -np.sign(pos), K.MARKET, np.nan, abs(pos), 0.0, False, False
            )
        if pos <= 0 or reenter:
            n = place_nb(actions, n, inst, 1.0, K.MARKET, np.nan, size, 1.0, True, False)
    elif code < 0:
        if pos > 0 or (reenter and reverse and pos < 0):
            n = place_nb(
                actions, n, inst, -np.sign(pos), K.MARKET, np.nan, abs(pos), 0.0, False, False
            )
        if reverse and (pos >= 0 or reenter):
            n = place_nb(actions, n, inst, -1.0, K.MARKET, np.nan, size, -1.0, True, False)
    state[0] += 1.0
    return n


class SmaCross(KernelStrategy):
    """Moving-average crossover (see module docstring)."""

    name = "sma_cross"
    Config: ClassVar[type[SmaCrossConfig]] = SmaCrossConfig
    kernel = sma_cross_on_event_nb
    kernel_events = (K.EV_SIGNAL,)  # fills, the start and the stop need no decision

    def __init__(self, config: SmaCrossConfig | None = None, **fields: Any) -> None:
        super().__init__()
        self.config = config if config is not None else SmaCrossConfig.parse(fields)

    @property
    def params(self) -> np.ndarray:
        c = self.config
        peer = 1.0 if c.style == "backtesting.py" else 0.0
        return np.array([c.fast, c.slow, 1.0 if c.reverse else 0.0, c.size, peer])

    def initial_state(self, data: MarketData) -> np.ndarray:
        return np.zeros(1)

    def signals(self, data: MarketData) -> np.ndarray:
        c = self.config
        # Every code is written below: no zeroing first (4 MB a year of minutes).
        out = np.empty((data.n_bars, len(data.symbols)), dtype=np.int64)
        for i in range(len(data.symbols)):
            close = data.closes[i]
            if c.style == "backtesting.py":
                out[:, i] = crossings(sma_rolling(close, c.fast), sma_rolling(close, c.slow))
            else:
                sma_crossings_nb(close, c.fast, c.slow, out[:, i])
        return out

    def adopt_compat(self, mode: str) -> None:
        """Under ``--compat backtesting.py`` behave as backtesting.py's SmaCross example."""
        if mode == "backtesting.py" and "style" not in self.config.model_fields_set:
            self.config = self.config.replace(style="backtesting.py")

    def check(self, instruments: dict[str, Instrument]) -> None:
        if self.config.reverse:
            spot = [s for s, i in instruments.items() if not i.is_margin]
            if spot:
                raise ConfigError(
                    "reverse",
                    f"reverse=true sells short, which spot instrument(s) {', '.join(spot)} "
                    "cannot do: use a margin instrument (CLI: --margin)",
                )

    def metrics(self) -> dict[str, Any]:
        return {"signals_seen": int(self.state[0]) if self.state.size else 0}
