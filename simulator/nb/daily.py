"""Compiled passes behind two metrics (see ``simulator.metrics``): where each UTC day's bars
end, and the finite ratios of gross exposure to equity. Each replaces four or five numpy
temporaries the size of the curve; the figures stay numpy's (the callers take the mean)."""

import numpy as np
from numba import njit


@njit(cache=True)
def day_ends_nb(values: np.ndarray, times: np.ndarray, per_day: int, checked: bool) -> np.ndarray:
    """The positions of the last bar of every UTC day but the last (``times // per_day``
    changes after them), or an array holding -1 when ``values`` has NaN or ``times`` does not
    rise strictly (the caller then resamples). ``checked``: the caller knows both already (a
    backtest's curve over validated bars), and the two passes over the curve are skipped.

    Both checks count without a branch, which vectorises; on the rising timeline they assure,
    each day's end is then found by a binary search for the next day's first tick: a few
    hundred searches for a year of minutes instead of a test per bar."""
    n = values.shape[0]
    bad = 0
    if not checked:
        for t in range(n):
            bad += values[t] != values[t]
        for t in range(1, n):
            bad += times[t] <= times[t - 1]
    if bad:
        return np.full(1, -1, dtype=np.int64)
    # A rising timeline changes day at most once per day it spans (and once per bar): sized
    # so, a year of minutes asks for 365 slots, not a curve's length (4 MB that malloc would
    # take from the system and give back on every run).
    days = times[n - 1] // per_day - times[0] // per_day if n > 0 else 0
    ends = np.empty(max(min(n - 1, days), 0), dtype=np.int64)
    count = 0
    t = 0
    while t < n:
        next_day = (times[t] // per_day + 1) * per_day  # the first tick of the next day
        t += np.searchsorted(times[t:], next_day)
        if t < n:
            if count == ends.shape[0]:  # more day changes than days: not rising after all
                return np.full(1, -1, dtype=np.int64)
            ends[count] = t - 1
            count += 1
    return ends[:count]


@njit(cache=True, error_model="numpy")
def finite_ratios_nb(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``r[np.isfinite(r)]`` for ``r = num / den`` (``num`` made absolute), in order.

    A backtest's equity is rarely zero or missing, so the quotients are first taken for every
    bar in a loop without branches, which vectorises (numpy's error model: a zero divisor
    gives inf or NaN, as in numpy, instead of raising); only when some quotient is not finite
    are the finite ones moved up over it."""
    return finite_ratios_into_nb(num, den, np.empty(num.shape[0]))


@njit(cache=True, error_model="numpy")
def finite_ratios_into_nb(num: np.ndarray, den: np.ndarray, out: np.ndarray) -> np.ndarray:
    """:func:`finite_ratios_nb` into ``out``, which may be ``num`` itself (each value is read
    before its place is written)."""
    n = num.shape[0]
    bad = 0
    for t in range(n):
        r = abs(num[t]) / den[t]
        out[t] = r
        bad += (r - r) != 0.0  # inf - inf and NaN - NaN are NaN; any finite r gives 0
    if bad == 0:
        return out
    count = 0
    for t in range(n):
        r = out[t]
        if np.isfinite(r):
            out[count] = r
            count += 1
    return out[:count]
