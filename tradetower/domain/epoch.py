"""Timestamps as epoch integers without pandas' unit conversion.

pandas 3 often keeps a year of minutes in microseconds; ``as_unit("ms")`` or ``as_unit("ns")``
on it costs 2-6 ms. Going to a coarser unit is a floor division (what pandas does too), and
day numbers and spans can be taken in the index's own unit."""

from __future__ import annotations

import numpy as np
import pandas as pd

NS_PER_UNIT = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


def epoch_ms(index: pd.DatetimeIndex) -> np.ndarray:
    """``index.as_unit("ms").asi8`` as int64: a floor division when the index is in a finer
    unit; pandas converts anything else (seconds, NaT) with its own overflow checks."""
    per = NS_PER_UNIT["ms"] // NS_PER_UNIT[index.unit]  # ticks per millisecond; 0 for seconds
    if per >= 1 and not index.hasnans:
        raw = np.asarray(index.asi8, dtype=np.int64)
        return raw.copy() if per == 1 else raw // per
    return np.asarray(index.as_unit("ms").asi8, dtype=np.int64)
