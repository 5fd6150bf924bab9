"""A run's per-bar positions, cash and equity rebuilt from its fill log in one compiled pass.

The same floats as the numpy formulation it replaced (``np.add.at`` into per-bar deltas, then
``np.cumsum``; closes forward-filled, 0 before the first): sums run in the same order.
"""

import numpy as np
from numba import njit

from simulator import state as S


@njit(cache=True)
def positions_equity_nb(
    fills: np.ndarray,
    n_fills: int,
    cflow: np.ndarray,
    ohlcv: np.ndarray,
    cash0: float,
    initial_pos: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(positions [n, k], cash [n], equity [n], closes carried forward [n, k])."""
    n = ohlcv.shape[0]
    k = ohlcv.shape[1]
    cash_delta = np.zeros(n)
    if cflow.shape[0] == n:
        cash_delta[:] = cflow
    pos_delta = np.zeros((n, k))
    for j in range(n_fills):
        t = int(fills[j, S.F_BAR])
        signed = fills[j, S.F_SIDE] * fills[j, S.F_QTY]
        cash_delta[t] += -signed * fills[j, S.F_PRICE] - fills[j, S.F_FEE]
        pos_delta[t, int(fills[j, S.F_INST])] += signed
    for i in range(k):
        if n > 0:
            pos_delta[0, i] += initial_pos[i]
    pos = np.empty((n, k))
    cash = np.empty(n)
    equity = np.empty(n)
    closes = np.empty((n, k))
    running = np.zeros(k)
    last = np.full(k, np.nan)
    total = 0.0
    for t in range(n):
        total += cash_delta[t]
        cash[t] = cash0 + total
        held = 0.0
        for i in range(k):
            running[i] += pos_delta[t, i]
            q = running[i]
            pos[t, i] = 0.0 if abs(q) < 1e-12 else q
            c = ohlcv[t, i, 3]
            if c == c:
                last[i] = c
            close = last[i] if last[i] == last[i] else 0.0
            closes[t, i] = close
            held += pos[t, i] * close
        equity[t] = cash[t] + held
    return pos, cash, equity, closes
