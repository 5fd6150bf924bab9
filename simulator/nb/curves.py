"""A run's per-bar positions and equity rebuilt from its fill log in one compiled pass.

The same floats as the numpy formulation it replaced (``np.add.at`` into per-bar deltas, then
``np.cumsum``; closes forward-filled, 0 before the first; gross exposure ``np.abs(pos *
closes).sum(axis=1)``): sums run in the same order. The fill log is in bar order, so each bar's
deltas are summed as the pass reaches it, without per-bar delta arrays.
"""

import numpy as np
from numba import njit

from simulator import state as S

GROSS_IN_PASS = 8  # below this many instruments numpy's row sum is a plain left-to-right sum


@njit(cache=True)
def positions_equity_nb(
    fills: np.ndarray,
    n_fills: int,
    cflow: np.ndarray,
    ohlcv: np.ndarray,
    cash0: float,
    initial_pos: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(positions [n, k], equity [n], gross exposure [n], in a position [n] (bool), closes
    carried forward [n, k]). One instrument has its own pass (:func:`one_instrument_nb`,
    which ``simulator.result.positions_and_equity`` calls); this one is right for it too.
    With ``GROSS_IN_PASS`` instruments or more the gross exposure is left to the caller
    (numpy sums long rows pairwise) and the closes are returned for it; otherwise the closes
    come back empty ([0, k])."""
    n = ohlcv.shape[0]
    k = ohlcv.shape[1]
    gross_here = k < GROSS_IN_PASS
    pos = np.empty((n, k))
    equity = np.empty(n)
    gross = np.zeros(n)
    in_pos = np.zeros(n, dtype=np.bool_)
    closes = np.empty((0 if gross_here else n, k))
    running = np.zeros(k)
    bar_pos = np.zeros(k)
    last = np.full(k, np.nan)
    has_flow = cflow.shape[0] == n
    total = 0.0
    j = 0
    for t in range(n):
        bar_cash = cflow[t] if has_flow else 0.0
        for i in range(k):
            bar_pos[i] = 0.0
        while j < n_fills and int(fills[j, S.F_BAR]) == t:
            signed = fills[j, S.F_SIDE] * fills[j, S.F_QTY]
            bar_cash += -signed * fills[j, S.F_PRICE] - fills[j, S.F_FEE]
            bar_pos[int(fills[j, S.F_INST])] += signed
            j += 1
        total += bar_cash
        held = 0.0
        exposure = 0.0
        holding = False
        for i in range(k):
            delta = bar_pos[i] + initial_pos[i] if t == 0 else bar_pos[i]
            running[i] += delta
            q = running[i]
            p = 0.0 if abs(q) < 1e-12 else q
            pos[t, i] = p
            c = ohlcv[t, i, 3]
            if c == c:
                last[i] = c
            close = last[i] if last[i] == last[i] else 0.0
            if not gross_here:
                closes[t, i] = close
            held += p * close
            exposure += abs(p * close)
            holding = holding or abs(p) > 0
        equity[t] = (cash0 + total) + held
        gross[t] = exposure
        in_pos[t] = holding
    return pos, equity, gross, in_pos, closes


@njit(cache=True, error_model="numpy")
def one_instrument_nb(
    fills: np.ndarray,
    n_fills: int,
    cflow: np.ndarray,
    closes: np.ndarray,
    cash0: float,
    start: float,
    equity: np.ndarray,
    gross: np.ndarray,
    pos: np.ndarray,
) -> int:
    """:func:`positions_equity_nb` for one instrument, into the arrays given, with the running
    figures in registers; returns how many bars held a position. ``closes``: contiguous
    (``MarketData.closes[0]``). ``pos`` [n, 1] is written when it has a row per bar (a caller
    that wants only the positions passes one array for both ``equity`` and ``gross``). A
    backtest takes :func:`equity_exposure_nb` instead, which keeps neither.

    Between two fills the position and cash hold, so each such stretch of bars is one loop
    without a branch, which vectorises; a stretch with a missing close is walked again,
    carrying the last close forward."""
    n = closes.shape[0]
    keep_pos = pos.shape[0] == n
    total = 0.0
    running = 0.0
    last = np.nan
    j = 0
    holding = 0
    t = 0
    while t < n:
        j, total, running, p, end = _stretch(fills, n_fills, cflow, n, start, t, j, total, running)
        cash = cash0 + total
        missing = 0
        for u in range(t, end):  # no branch: vectorises
            c = closes[u]
            held = 0.0 + p * c  # as the general pass sums it
            equity[u] = cash + held
            gross[u] = abs(held)
            missing += c != c
        if missing == 0:
            last = closes[end - 1]
        else:  # a missing close takes the last one before it (0 before the first)
            for u in range(t, end):
                close, last = _carried(closes[u], last)
                held = 0.0 + p * close
                equity[u] = cash + held
                gross[u] = abs(held)
        if keep_pos:
            pos[t:end, 0] = p
        holding += (end - t) * (abs(p) > 0)
        t = end
    return holding


@njit(cache=True)
def fills_in_bar_order_nb(fills: np.ndarray, n_fills: int) -> bool:
    for j in range(1, n_fills):  # noqa: SIM110 (numba compiles no generator for all())
        if fills[j, S.F_BAR] < fills[j - 1, S.F_BAR]:
            return False
    return True


@njit(cache=True, error_model="numpy")
def equity_exposure_nb(
    fills: np.ndarray,
    n_fills: int,
    cflow: np.ndarray,
    closes: np.ndarray,
    cash0: float,
    start: float,
    equity: np.ndarray,
) -> tuple[int, float, int]:
    """One instrument's equity into ``equity``, and what a backtest's metrics read of the
    rest: (bars in a position, the sum of the finite ratios of gross exposure to equity, how
    many there are). The equity is :func:`one_instrument_nb`'s floats.

    Each ratio, ``|held| / equity``, is only added up, not written:
    for a year of minutes that is 4 MB fewer written and read again (about 0.4 ms). The sum
    runs in bar order, each stretch of bars between two fills summed first (numpy's mean
    of the ratios sums pairwise: the two agree to about 1e-14). The pass first assumes every
    ratio finite; a sum that is not finite (a zero or missing equity) has it taken again,
    leaving those out."""
    holding, ratio_sum, n_finite = _equity_pass(
        fills, n_fills, cflow, closes, cash0, start, equity, False
    )
    if not np.isfinite(ratio_sum):
        holding, ratio_sum, n_finite = _equity_pass(
            fills, n_fills, cflow, closes, cash0, start, equity, True
        )
    return holding, ratio_sum, n_finite


@njit(cache=True, error_model="numpy", inline="always")
def _equity_pass(
    fills: np.ndarray,
    n_fills: int,
    cflow: np.ndarray,
    closes: np.ndarray,
    cash0: float,
    start: float,
    equity: np.ndarray,
    finite_only: bool,
) -> tuple[int, float, int]:
    """:func:`equity_exposure_nb`'s pass; ``finite_only`` leaves ratios that are not finite
    out of the sum (else all count: the sum is then not finite if one is not)."""
    n = closes.shape[0]
    total = 0.0
    running = 0.0
    last = np.nan
    j = 0
    holding = 0
    ratio_sum = 0.0
    n_finite = 0
    t = 0
    while t < n:
        j, total, running, p, end = _stretch(fills, n_fills, cflow, n, start, t, j, total, running)
        cash = cash0 + total
        missing = 0
        part = 0.0
        kept = 0
        if not finite_only:
            for u in range(t, end):
                c = closes[u]
                held = 0.0 + p * c
                value = cash + held
                equity[u] = value
                part += abs(held) / value
                missing += c != c
            kept = end - t
        if finite_only or missing > 0:  # a missing close takes the last one (0 before the first)
            part = 0.0
            kept = 0
            for u in range(t, end):
                close, last = _carried(closes[u], last)
                held = 0.0 + p * close
                value = cash + held
                x = abs(held) / value
                equity[u] = value
                if not finite_only or (x - x) == 0.0:  # inf - inf and NaN - NaN are NaN
                    part += x
                    kept += 1
        else:
            last = closes[end - 1]
        ratio_sum += part
        n_finite += kept
        holding += (end - t) * (abs(p) > 0)
        t = end
    return holding, ratio_sum, n_finite


@njit(cache=True, inline="always")
def _stretch(
    fills: np.ndarray,
    n_fills: int,
    cflow: np.ndarray,
    n: int,
    start: float,
    t: int,
    j: int,
    total: float,
    running: float,
) -> tuple[int, float, float, float, int]:
    """Bar t's fills (log rows from ``j``) and cash flow (``cflow``: one per bar of ``n``, or
    none) taken in: (the next row, the cash moved so far, the position, the position as held
    (0 below 1e-12), the bar after the stretch from t that shares them). The stretch ends at
    the next fill, or after one bar where cash flows every bar (funding)."""
    has_flow = cflow.shape[0] == n
    bar_cash = cflow[t] if has_flow else 0.0
    bar_pos = 0.0
    while j < n_fills and int(fills[j, S.F_BAR]) == t:
        signed = fills[j, S.F_SIDE] * fills[j, S.F_QTY]
        bar_cash += -signed * fills[j, S.F_PRICE] - fills[j, S.F_FEE]
        bar_pos += signed
        j += 1
    total += bar_cash
    running += bar_pos + start if t == 0 else bar_pos
    p = 0.0 if abs(running) < 1e-12 else running
    end = t + 1 if has_flow or j >= n_fills else int(fills[j, S.F_BAR])
    return j, total, running, p, min(max(end, t + 1), n)


@njit(cache=True, inline="always")
def _carried(c: float, last: float) -> tuple[float, float]:
    """(the close a bar is valued at, the last close so far): its own, else the last one
    before it, else 0 before the first (a numpy 0: a zero equity then divides as in numpy when
    uncompiled too)."""
    if c == c:
        last = c
    return (last if last == last else np.float64(0.0)), last
