"""Timestamps as epoch integers without pandas' unit conversion.

pandas 3 often keeps a year of minutes in microseconds; ``as_unit("ms")`` or ``as_unit("ns")``
on it costs 2-6 ms. Going to a coarser unit is a floor division (what pandas does too), and
day numbers and spans can be taken in the index's own unit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import config, njit

NS_PER_UNIT = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


EXACT_SPAN = 2.0**50
"""Quotients up to this size are exact from a float estimate (:func:`floor_divide_nb`)."""

NAT = np.iinfo(np.int64).min
"""NaT as pandas stores it, in every unit."""


@njit(cache=True)
def floor_divide_nb(values: np.ndarray, per: int, out: np.ndarray) -> bool:
    """``out[:] = values // per`` for ``per`` ≥ 1; False (``out`` then unusable) when some
    value is too large for the method, which no timestamp in ms, µs or ns is.

    No SIMD unit divides 64-bit integers, so numpy's ``//`` takes a scalar division (1 ns) per
    element. Here the quotient is estimated in floating point, which vectorises. The estimate
    is off by at most three roundings of 2**-53 of the quotient: under 3/8 while the quotient
    is below 2**50. Its floor is then the quotient or one off it, and the exact integer
    remainder says which: a year of minutes in 0.13 ms instead of 0.33."""
    inv = 1.0 / per
    span = EXACT_SPAN * per
    too_big = 0  # a count, not a max or a flag: that form vectorises
    for i in range(values.shape[0]):
        v = values[i]
        f = np.float64(v)
        too_big += int(abs(f) >= span)
        q = np.int64(np.floor(f * inv))
        r = v - q * per  # exact even where q * per wraps: the remainder fits
        if r < 0:
            q -= 1
        elif r >= per:
            q += 1
        out[i] = q
    return bool(too_big == 0)


def floor_divide(values: np.ndarray, per: int) -> np.ndarray:
    """``values // per`` (int64, ``per`` ≥ 1) by :func:`floor_divide_nb`; by numpy where that
    cannot be exact, and where numba is off (``NUMBA_DISABLE_JIT=1``: a Python loop)."""
    if not getattr(config, "DISABLE_JIT", False):
        out = np.empty(values.shape[0], dtype=np.int64)
        if floor_divide_nb(values, int(per), out):
            return out
    exact: np.ndarray = values // per
    return exact


def epoch_ms(index: pd.DatetimeIndex) -> np.ndarray:
    """``index.as_unit("ms").asi8`` as int64: a floor division when the index is in a finer
    unit; pandas converts anything else (seconds, NaT) with its own overflow checks."""
    per = NS_PER_UNIT["ms"] // NS_PER_UNIT[index.unit]  # ticks per millisecond; 0 for seconds
    if per >= 1 and not index.hasnans:
        raw = np.asarray(index.asi8, dtype=np.int64)
        return raw.copy() if per == 1 else floor_divide(raw, per)
    return np.asarray(index.as_unit("ms").asi8, dtype=np.int64)
