"""The grid as a vectorbt flexible order function (imports vectorbt: import this lazily).

vectorbt has no resting orders, so the function keeps the grid's cells itself: on the first call
of each bar it works out which cells the bar fills, in the order the intrabar path touches them,
and hands them to vectorbt one call at a time; vectorbt books them at the given price with its
own cash, position and fee accounting.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit
from vectorbt.portfolio.enums import Direction  # type: ignore[import-untyped]
from vectorbt.portfolio.nb import order_nb, order_nothing_nb  # type: ignore[import-untyped]

LONG_ONLY = int(Direction.LongOnly)
S_BID, S_ASK, S_EMPTY, S_TO_BUY, S_NBUF = range(5)


@njit(cache=True)
def grid_flex_order_nb(  # type: ignore[no-untyped-def]
    c: Any,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    levels: np.ndarray,
    qty: np.ndarray,
    fee: float,
    side: np.ndarray,
    placed: np.ndarray,
    state: np.ndarray,
    buf_k: np.ndarray,
    buf_px: np.ndarray,
):
    """``side[k]``: +1 cell k waits to buy at ``levels[k]``, -1 to sell at ``levels[k+1]``.
    ``state``: [bid, ask, nearest level at start, opening market quantity, orders this bar];
    ``buf_k`` of -1 is the opening market buy."""
    i = c.i
    m = levels.shape[0] - 1
    if c.call_idx == 0:
        nbuf = 0
        if i == 1 and state[S_TO_BUY] > 0.0:
            buf_k[0] = -1
            buf_px[0] = open_[1]
            nbuf = 1
            for k in range(int(state[S_EMPTY]), m):
                side[k] = -1
                placed[k] = 1
        lo = low[i]
        hi = high[i]
        if i >= 1 and (lo <= state[S_BID] or hi >= state[S_ASK] or nbuf > 0):
            o = open_[i]
            low_first = (o - lo) <= (hi - o)
            # Path order: the nearer extreme's side first, each side's levels as touched.
            for phase in range(2):
                buys = (phase == 0) == low_first
                for r in range(m):
                    k = m - 1 - r if buys else r
                    s = side[k]
                    if s == 0 or placed[k] >= i:
                        continue
                    if buys and s > 0 and lo <= levels[k]:
                        buf_k[nbuf] = k
                        buf_px[nbuf] = o if o <= levels[k] else levels[k]
                        side[k] = -1
                        placed[k] = i
                        nbuf += 1
                    elif not buys and s < 0 and hi >= levels[k + 1]:
                        buf_k[nbuf] = k
                        buf_px[nbuf] = o if o >= levels[k + 1] else levels[k + 1]
                        side[k] = 1
                        placed[k] = i
                        nbuf += 1
            if nbuf > 0:
                bid = -np.inf
                ask = np.inf
                for k in range(m):
                    if side[k] > 0:
                        bid = max(bid, levels[k])
                    elif side[k] < 0:
                        ask = min(ask, levels[k + 1])
                state[S_BID] = bid
                state[S_ASK] = ask
        state[S_NBUF] = nbuf
    j = c.call_idx
    if j >= state[S_NBUF]:
        return -1, order_nothing_nb()
    k = buf_k[j]
    size = state[S_TO_BUY]
    if k >= 0:
        # A cell fills once a bar, so its side now tells which way it just traded.
        size = qty[k] if side[k] < 0 else -qty[k]
    return 0, order_nb(size=size, price=buf_px[j], fees=fee, direction=LONG_ONLY)
